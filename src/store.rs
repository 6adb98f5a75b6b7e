//! The storage contract every backend implements, and its error.

use async_trait::async_trait;
use chrono::TimeDelta;

use crate::error::{BoxError, InputReason};
use crate::limits::{EmailDigest, RateLimit, SignInAttempt, SignInThrottle, WindowCount};
use crate::model::{
    EndSessions, OneTimeToken, RefreshOutcome, Session, SessionRotation, SessionWithUser, TokenUse,
    UsedToken, User,
};
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

/// Persistence for the engine: the seven operations of the AuthInGo adapter and the atomic
/// sign-up write, then what the crate's capabilities need of a store (refresh replays and reuse
/// detection, session management, compare-and-set password writes, one-time tokens, abuse
/// counters, the sweeps). Defaults: `create_user_with_session` calls the two inserts in turn
/// (not atomic), `cleanup_expired_sessions` sweeps at the default pace, and the four counter
/// methods keep no count (no limit applies); every other method is required.
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

    /// Inserts `user` and its first `session` so that either both are stored or neither is.
    ///
    /// The default calls [`create_user`](Self::create_user) then
    /// [`create_session`](Self::create_session), which is atomic only if the store makes it so;
    /// a transactional store overrides it.
    ///
    /// # Errors
    /// As for the two methods it stands for.
    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError> {
        self.create_user(user).await?;
        self.create_session(session).await
    }

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

    /// The user's sessions that can still be used (refresh token unexpired, within the absolute
    /// lifetime), most recently used first ([`Session::last_used_at`]).
    ///
    /// # Errors
    /// On database failure.
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError>;

    /// Deletes the session `session_id` if it belongs to `user_id`; says whether this call deleted
    /// one. Another user's session id is treated as unknown: `false`, nothing deleted.
    ///
    /// # Errors
    /// On database failure.
    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes every session of `user_id` but `keep`; returns how many went. With `keep` `None`
    /// (every session ends) the user's one-time tokens go too, in the same transaction: a link
    /// mailed before a "sign out everywhere" no longer works after it.
    ///
    /// # Errors
    /// On database failure; then nothing was deleted.
    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// Deletes the sessions of `user_id` beyond its `keep` most recently used ones; returns how
    /// many went.
    ///
    /// # Errors
    /// On database failure.
    async fn evict_sessions(&self, user_id: &str, keep: u32) -> Result<u64, StoreError>;

    /// Replaces the password hash of `user_id` (and its `updated_at`) with `password_hash` only
    /// while it is still `expected`, the hash the current password was verified against (a
    /// compare-and-set), and in the same transaction deletes its sessions as `end` says and every
    /// one-time token of the user; says whether it did (`false`: no such user, or its password
    /// changed since `expected` was read, e.g. by a reset, which then stands).
    ///
    /// # Errors
    /// On database failure; then nothing changed.
    async fn set_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
        end: EndSessions<'_>,
    ) -> Result<bool, StoreError>;

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

    /// Stores `token`, replacing the user's earlier tokens of the same purpose, in one
    /// transaction.
    ///
    /// # Errors
    /// On database failure, including an unknown user.
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), StoreError>;

    /// Stores `token` as [`issue_token`](Self::issue_token) does, only while the session
    /// `session_id` of its user exists and the user's password hash is still `verified_hash`
    /// (the one the request's password was checked against), all in one transaction; says
    /// whether it did. So a link asked by a session that a reset, a change of password or the
    /// end of every session ended meanwhile is never issued after the links were deleted.
    ///
    /// # Errors
    /// On database failure, including an unknown user; then nothing was stored.
    async fn issue_token_for_session(
        &self,
        token: &OneTimeToken,
        session_id: &str,
        verified_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Consumes the unexpired token `token` of the purpose `use_` needs and applies `use_`, in
    /// one transaction: the token is deleted by the statement that reads it, so of concurrent
    /// calls with one token at most one gets `Some`. `Ok(None)` for an unknown, expired, used or
    /// other-purpose token (an other-purpose one is left as it is), and for a verification, a
    /// reset or a cancel link of an address the user no longer has (a token without an address
    /// included).
    ///
    /// A reset (it also marks the address verified, since the link reached it) and a change of
    /// email delete every other one-time token of the user in the same transaction; a cancel of a
    /// change of email deletes the user's change-of-email and cancel tokens.
    ///
    /// # Errors
    /// [`StoreError::DuplicateEmail`] when a change of email meets an address taken meanwhile
    /// (then nothing changed and the token stays); otherwise on database failure.
    async fn use_token(
        &self,
        token: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError>;

    /// Deletes, in bounded batches, every one-time token past its expiry; returns how many went.
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_expired_tokens(&self) -> Result<u64, StoreError>;

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

    /// Counts one request against the rate-limit counter `key` in fixed windows of
    /// `limit.window`, atomically (concurrent calls from any instance each see the count their own
    /// request made), and returns the count with it and when the window ends. The caller refuses
    /// the request when the count is above `limit.max`.
    ///
    /// The default keeps no counter: it answers a count of 0, so no rate limit applies.
    ///
    /// # Errors
    /// On database failure.
    async fn count_request(&self, key: &str, limit: &RateLimit) -> Result<WindowCount, StoreError> {
        let _ = (key, limit);
        Ok(WindowCount {
            hits: 0,
            resets_in: std::time::Duration::ZERO,
        })
    }

    /// Begins a sign-in attempt for the email `email`: atomically, either refuses it
    /// ([`SignInAttempt::Throttled`], [`SignInAttempt::Locked`]) as `throttle` says of the
    /// email's consecutive failures, or counts it as one more failure and allows it, so that of
    /// concurrent attempts past the free ones only one goes ahead. A correct password then calls
    /// [`clear_sign_in_failures`](Self::clear_sign_in_failures).
    ///
    /// The default keeps no count and allows every attempt.
    ///
    /// # Errors
    /// On database failure.
    async fn begin_sign_in_attempt(
        &self,
        email: &EmailDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError> {
        let _ = (email, throttle);
        Ok(SignInAttempt::Allowed)
    }

    /// Clears the failed sign-ins of `email`, a lock included; says whether there were any.
    /// Called after a correct password, by `Auth::unlock_account`, and by a completed password
    /// reset.
    ///
    /// The default has nothing to clear.
    ///
    /// # Errors
    /// On database failure.
    async fn clear_sign_in_failures(&self, email: &EmailDigest) -> Result<bool, StoreError> {
        let _ = email;
        Ok(false)
    }

    /// Deletes, in bounded batches, the rate-limit counters whose window has ended and the
    /// failure counts past their [`SignInThrottle::forget_after`] (never a lock); returns how
    /// many went. The cleanup loop runs it after
    /// [`cleanup_expired_sessions`](Self::cleanup_expired_sessions).
    ///
    /// The default has nothing to delete.
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_rate_limits(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
