//! The storage contract: [`Store`], the users and sessions every backend keeps, and the
//! capabilities a backend may add (session management, one-time tokens, abuse counters, second
//! factors), each a trait of its own; and their error.

mod abuse_counters;
mod management;
mod one_time_tokens;
mod second_factors;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;

pub use abuse_counters::AbuseCounters;
pub use management::SessionManagement;
pub use one_time_tokens::OneTimeTokens;
pub use second_factors::SecondFactors;

use crate::error::{BoxError, InputReason};
use crate::model::{RefreshOutcome, Session, SessionRotation, SessionWithUser, User};
use crate::token::TokenDigest;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A user with this email already exists.
    #[error("a user with this email already exists")]
    DuplicateEmail,
    /// A value cannot be stored as given; nothing was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field, e.g. `"email"`.
        field: &'static str,
        /// What is wrong with it: [`InputReason::NulByte`] or [`InputReason::TooLong`].
        reason: InputReason,
    },
    /// The database could not serve in time (pool timeout, refused or lost connection, a
    /// statement cancelled by a timeout). Retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] BoxError),
}

/// How hard a cleanup sweep may work: how many rows each of its statements deletes, and how
/// long it leaves the database alone after each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanupPace {
    /// Rows deleted per statement (at least 1). Smaller batches keep each burst of work, and
    /// the wait of any read that meets one, short.
    pub batch_size: u32,
    /// After each full batch, a pause this many times as long as the batch took (0: none, the
    /// sweep runs flat out). The sweep then works `1 / (1 + ratio)` of its time.
    pub pause_ratio: f64,
}

impl CleanupPace {
    /// No pause, batches of 1,000 (the specification's): the sweep runs flat out.
    pub const UNTHROTTLED: Self = Self {
        batch_size: 1000,
        pause_ratio: 0.0,
    };
}

impl Default for CleanupPace {
    /// Batches of 1,000 rows, each followed by a pause 99 times as long as it took: the sweep
    /// works 1% of its time, which is what keeps live reads' p99 within 1.3 times its idle value
    /// on a small server (440 to 1,200 rows a second on the bench's 2-core hosts, 500,000 rows
    /// in 7 to 19 minutes; see BENCHMARKS.md).
    fn default() -> Self {
        Self {
            batch_size: 1000,
            pause_ratio: 99.0,
        }
    }
}

/// Persistence for the engine's core: users, and sessions through their whole life (the seven
/// operations of the AuthInGo adapter, the atomic sign-up write, refresh with replays and reuse
/// detection, the compare-and-set re-hash at sign-in, the sweep). Every method is required but
/// [`cleanup_expired_sessions`](Self::cleanup_expired_sessions), which sweeps at the default pace.
///
/// What the crate's other capabilities need of a store is a trait of its own, which a store
/// offers through the matching method here: [`SessionManagement`], [`OneTimeTokens`] and
/// [`AbuseCounters`]. Those methods default to `None` (the store lacks the capability);
/// [`Auth::new`](crate::Auth::new) then refuses an option that needs it, and a method that needs
/// it answers [`AuthError::Unsupported`](crate::AuthError::Unsupported). Nothing falls back to
/// "allow everything".
///
/// Token arguments are [`TokenDigest`]s: a store never sees a raw token. Implementations are
/// `Send + Sync` and usable as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts `user`.
    ///
    /// # Errors
    /// [`StoreError::DuplicateEmail`] when a user with the same email exists.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;

    /// Finds the user with exactly this (already normalised) email; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// On database failure.
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    /// Inserts `session`, whose user must exist.
    ///
    /// # Errors
    /// On database failure, including an unknown user.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// Inserts `session` only if its user's password hash is still `verified_hash`, the one the
    /// sign-in checked the password against; says whether it did. The check and the insert are
    /// one atomic step: a reset or change of password that commits before it leaves no session
    /// behind, and one that commits after it ends the session with the others. So a sign-in
    /// that verified the old password cannot open a session after the password changed.
    ///
    /// # Errors
    /// On database failure; then nothing was inserted.
    async fn create_session_verified(
        &self,
        session: &Session,
        verified_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Inserts `user` and its first `session` atomically: either both are stored or neither is.
    ///
    /// # Errors
    /// [`StoreError::DuplicateEmail`] when a user with the same email exists (then nothing was
    /// stored); otherwise on database failure.
    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError>;

    /// Loads the session whose access-token digest is `token`, with its user, if that access
    /// token has not expired; `Ok(None)` for an unknown or expired token.
    ///
    /// # Errors
    /// On database failure.
    async fn get_session(&self, token: &TokenDigest)
    -> Result<Option<SessionWithUser>, StoreError>;

    /// Deletes the session whose access-token digest, refresh-token digest or previous
    /// refresh-token digest is `token`; says whether this call deleted one. (The previous refresh
    /// token counts so that a sign-out racing a refresh of the same session still ends it.)
    ///
    /// # Errors
    /// On database failure.
    async fn delete_session(&self, token: &TokenDigest) -> Result<bool, StoreError>;

    /// Refreshes the session whose refresh token is `refresh_token`:
    ///
    /// - the session's current, unexpired refresh token: atomically replaces both token digests
    ///   and both expiries with `rotation`'s (capped by the session's absolute lifetime), records
    ///   the presented token as the previous one with the rotation's secret and time, the
    ///   replaced access token as the previous one, and `rotation.family` as the session's
    ///   refresh family, and returns [`RefreshOutcome::Rotated`]. Of concurrent calls with one
    ///   token, exactly one rotates;
    /// - the session's previous refresh token (the session still live), within
    ///   `rotation.reuse_grace` of the rotation that replaced it: [`RefreshOutcome::Replayed`],
    ///   writing nothing (with a zero grace: [`RefreshOutcome::Invalid`]);
    /// - any other token of a live session's family but its current one (its previous one
    ///   after the window, or one replaced more than one rotation ago, however recently):
    ///   deletes the session and returns [`RefreshOutcome::Reused`];
    /// - anything else: [`RefreshOutcome::Invalid`].
    ///
    /// # Errors
    /// On database failure.
    async fn refresh_session(
        &self,
        refresh_token: &TokenDigest,
        rotation: &SessionRotation,
    ) -> Result<RefreshOutcome, StoreError>;

    /// Deletes the session whose last rotation, less than `grace` ago, replaced the access token
    /// whose digest is `token`; says whether this call deleted one. A sign-out sent with the
    /// access token a concurrent refresh has just replaced still ends the session; after the
    /// window (or with a zero `grace`) the replaced token finds nothing. Nothing else accepts a
    /// replaced access token.
    ///
    /// # Errors
    /// On database failure.
    async fn delete_rotated_session(
        &self,
        token: &TokenDigest,
        grace: TimeDelta,
    ) -> Result<bool, StoreError>;

    /// Forgets, in bounded batches, the secret of every rotation older than `grace`, and returns
    /// how many went. A secret only answers a replay within the grace window; kept longer, a
    /// database read and an old leaked refresh token would re-derive the session's current
    /// tokens. The cleanup loop runs it every grace window (at least every second).
    ///
    /// # Errors
    /// On database failure; batches already cleared stay cleared.
    async fn clear_rotation_secrets(&self, grace: TimeDelta) -> Result<u64, StoreError>;

    /// Replaces the password hash of `user_id` with `password_hash` only while it is still
    /// `expected` (a compare-and-set), keeping its sessions; says whether it did. A re-hash at
    /// sign-in goes through it, so that it never undoes a password change or reset made since
    /// the user was read.
    ///
    /// # Errors
    /// On database failure; then nothing changed.
    async fn replace_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Finds the user with this id; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// On database failure.
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Deletes, in bounded batches, every session none of whose tokens can still be used (both
    /// expiries past), and returns how many went; paced by [`CleanupPace::default`].
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_expired_sessions(&self) -> Result<u64, StoreError> {
        self.cleanup_expired_sessions_paced(CleanupPace::default())
            .await
    }

    /// [`cleanup_expired_sessions`](Self::cleanup_expired_sessions) at `pace`: after each full
    /// batch, a pause that many times as long as the batch took, so that a large sweep leaves
    /// the database to live traffic most of the time.
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_expired_sessions_paced(&self, pace: CleanupPace) -> Result<u64, StoreError>;

    /// This store's [`SessionManagement`], if it has that capability (`Some(self)` for a store
    /// that implements the trait). The default: `None`.
    fn session_management(self: Arc<Self>) -> Option<Arc<dyn SessionManagement>> {
        None
    }

    /// This store's [`OneTimeTokens`], if it has that capability. The default: `None`.
    fn one_time_tokens(self: Arc<Self>) -> Option<Arc<dyn OneTimeTokens>> {
        None
    }

    /// This store's [`AbuseCounters`], if it has that capability. The default: `None`.
    fn abuse_counters(self: Arc<Self>) -> Option<Arc<dyn AbuseCounters>> {
        None
    }

    /// This store's [`SecondFactors`], if it has that capability. The default: `None`.
    fn second_factors(self: Arc<Self>) -> Option<Arc<dyn SecondFactors>> {
        None
    }
}

/// A capability a [`Store`] may lack, as [`Auth::new`](crate::Auth::new) and
/// [`AuthError::Unsupported`](crate::AuthError::Unsupported) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// [`SessionManagement`].
    SessionManagement,
    /// [`OneTimeTokens`].
    OneTimeTokens,
    /// [`AbuseCounters`].
    AbuseCounters,
    /// [`SecondFactors`].
    SecondFactors,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SessionManagement => "session management",
            Self::OneTimeTokens => "one-time tokens",
            Self::AbuseCounters => "abuse counters",
            Self::SecondFactors => "second factors",
        })
    }
}

/// The length limit of every text the stores keep (the schema's `VARCHAR(255)`).
const MAX_TEXT_CHARS: usize = 255;

/// Refuses, before anything is sent, a value a store cannot keep as given: a NUL byte (which
/// PostgreSQL's text cannot hold) or more than [`MAX_TEXT_CHARS`] characters (which its columns
/// would refuse). Every store in this crate makes the same check, so that they answer alike.
pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.contains('\0') {
        InputReason::NulByte
    } else if value.chars().count() > MAX_TEXT_CHARS {
        InputReason::TooLong {
            max: MAX_TEXT_CHARS,
            unit: "characters",
        }
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidInput { field, reason })
}

/// Whether `value` can be a stored value: text with a NUL byte cannot, so a lookup by it finds
/// nothing without asking the store.
pub(crate) fn storable(value: &str) -> bool {
    !value.contains('\0')
}
