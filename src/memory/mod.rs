//! [`MemoryStore`]: the [`Store`] contract and all four capabilities in memory, for tests (an
//! application's own and the crate's).
//!
//! It answers every method as [`PgStore`](crate::postgres::PgStore) does, by the same rules:
//! expiries, the absolute lifetime, refresh with its replays, families and reuse detection, the
//! compare-and-set writes, one-time tokens, fixed-window counters and the sign-in throttle, second
//! factors (TOTP steps accepted once, recovery codes, challenges, trusted devices), and the values
//! PostgreSQL refuses (a NUL byte, more than 255 characters:
//! [`StoreError::InvalidInput`]). The crate's contract tests run the same tests against both.
//! Every call takes one lock for its whole work, so each is atomic: of concurrent refreshes with
//! one token exactly one rotates.
//!
//! What it adds for tests: [`MemoryStore::pass_time`] moves every stored time into the past (what
//! a PostgreSQL test does with `UPDATE … SET expires_at = expires_at - INTERVAL …`), so that
//! expiries, grace windows and back-offs are reached without sleeping;
//! [`MemoryStore::fail_call`] makes a chosen call fail as the database would
//! ([`Fault`]); [`MemoryStore::clear`] forgets everything.
//!
//! Where it differs from `PgStore`, each because nothing is there to need it: nothing is
//! durable or shared between processes; a sweep deletes everything due at once (no batches, no
//! pause, whatever the [`CleanupPace`]); every lookup scans, which suits the few rows of a test,
//! not a load; `Debug` shows counts, never a row.
//!
//! ```
//! use std::sync::Arc;
//!
//! use authingo::memory::MemoryStore;
//! use authingo::password::Argon2Params;
//! use authingo::{Auth, Options, RequestContext};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! // Cheap hashing: the test is about the flow, not about argon2's cost.
//! let cheap = Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
//! let auth = Auth::new(Options::with_shared_store(store.clone()).argon2(cheap))?;
//!
//! let client = RequestContext::default();
//! let signed_up = auth
//!     .sign_up("ada@example.com", "correct horse battery", "Ada", &client)
//!     .await?
//!     .signed_in()?;
//! let signed_in = auth
//!     .sign_in("ada@example.com", "correct horse battery", &client)
//!     .await?
//!     .signed_in()?;
//! assert_eq!(signed_in.user.id, signed_up.user.id);
//! let found = auth.get_session(signed_in.tokens.access_token.expose()).await?;
//! assert_eq!(found.map(|found| found.session.id), Some(signed_in.session.id));
//!
//! // Sixteen minutes later the access token has expired; the refresh token has not.
//! store.pass_time(chrono::TimeDelta::minutes(16));
//! assert!(auth.get_session(signed_in.tokens.access_token.expose()).await?.is_none());
//! auth.refresh(signed_in.tokens.refresh_token.expose(), &client).await?;
//! # Ok(()) }
//! ```

mod counters;
mod management;
mod second_factors;
mod store;
mod tokens;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};

use crate::limits::{DeviceDigest, EmailDigest};
use crate::model::{
    OneTimeToken, Session, SignInChallenge, TokenPurpose, TotpSecret, TrustedDevice, User,
};
use crate::store::StoreError;
use crate::store::{check_text, storable};
use crate::token::{RotationSecret, TokenDigest};

#[cfg(doc)]
use crate::store::{CleanupPace, Store};

/// How an injected fault fails a call (see [`MemoryStore::fail_call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// [`StoreError::Unavailable`], what a lost connection, a full pool or a statement timeout
    /// gives (the routes answer 503).
    Unavailable,
    /// [`StoreError::Database`], any other failure of the database (the routes answer 500).
    Database,
}

/// The [`Store`] contract, with every capability, in memory. See the [module docs](self).
///
/// Cheap to make: one per test (`Arc::new(MemoryStore::new())`, handed to
/// [`Options::with_shared_store`](crate::Options::with_shared_store) so that the test keeps a
/// handle for [`pass_time`](Self::pass_time) and [`fail_call`](Self::fail_call)).
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

/// Everything the store holds, behind its one lock.
#[derive(Default)]
struct State {
    /// Users by id.
    users: BTreeMap<String, User>,
    /// Sessions by id.
    sessions: BTreeMap<String, SessionRow>,
    /// One-time tokens by digest.
    tokens: HashMap<TokenDigest, OneTimeToken>,
    /// Rate-limit windows by key.
    counters: HashMap<String, Counter>,
    /// Consecutive failed sign-ins of untrusted clients by email digest.
    failures: HashMap<EmailDigest, Failures>,
    /// Consecutive failed sign-ins of trusted devices by device digest.
    device_failures: HashMap<DeviceDigest, Failures>,
    /// TOTP secrets, confirmed or pending, by user id.
    totp_secrets: HashMap<String, TotpRow>,
    /// Unused recovery codes: the user's id and the code's digest.
    recovery_codes: HashSet<(String, TokenDigest)>,
    /// Sign-in challenges waiting for a second factor, by digest.
    challenges: HashMap<TokenDigest, SignInChallenge>,
    /// Browsers trusted to skip the second factor, by digest.
    trusted_devices: HashMap<TokenDigest, TrustedDevice>,
    /// The armed fault, and the calls counted since it was armed.
    fault: Armed,
}

/// A session with what its rotations remember, as the columns of `sessions` hold it.
struct SessionRow {
    session: Session,
    /// The refresh token the last rotation replaced.
    previous_refresh_token: Option<TokenDigest>,
    /// The access token the last rotation replaced.
    previous_token: Option<TokenDigest>,
    /// The family every refresh token of the session shares, from its first rotation on.
    refresh_family: Option<TokenDigest>,
    /// The last rotation's secret, until the grace window has passed and a sweep forgets it.
    rotation_secret: Option<RotationSecret>,
}

/// A TOTP secret with the time its enrolment began, by which a pending one is swept.
struct TotpRow {
    secret: TotpSecret,
    created_at: DateTime<Utc>,
}

/// A rate-limit window.
struct Counter {
    hits: u32,
    window_ends_at: DateTime<Utc>,
}

/// The consecutive failed sign-ins of one email's untrusted clients, or of one trusted device.
struct Failures {
    failures: i64,
    last_failed_at: DateTime<Utc>,
    /// When the count is forgotten: a day after its last failure, or the end of its lock.
    forget_at: DateTime<Utc>,
}

/// The fault to inject, counted in calls.
#[derive(Default)]
struct Armed {
    calls: usize,
    at: Option<(usize, Fault)>,
    fired: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves every time the store holds `by` into the past, as if that much time had passed:
    /// the expiries and creation of sessions, users and one-time tokens, the times of rotations
    /// (and so their grace windows), the rate-limit windows, the sign-in failures, and the
    /// creation and confirmation of TOTP secrets and the expiries of challenges and trusted
    /// devices. A negative `by` moves them into the future.
    ///
    /// This is what a test on PostgreSQL does by writing its rows' times into the past: it
    /// reaches an expiry, the end of a window or a back-off without sleeping.
    pub fn pass_time(&self, by: TimeDelta) {
        let back = |at: DateTime<Utc>| later(at, -by);
        let mut state = self.lock();
        for user in state.users.values_mut() {
            user.created_at = user.created_at.map(back);
            user.updated_at = user.updated_at.map(back);
        }
        for row in state.sessions.values_mut() {
            let session = &mut row.session;
            session.expires_at = back(session.expires_at);
            session.refresh_expires_at = back(session.refresh_expires_at);
            session.created_at = session.created_at.map(back);
            session.rotated_at = session.rotated_at.map(back);
            session.absolute_expires_at = session.absolute_expires_at.map(back);
        }
        for token in state.tokens.values_mut() {
            token.expires_at = back(token.expires_at);
        }
        for counter in state.counters.values_mut() {
            counter.window_ends_at = back(counter.window_ends_at);
        }
        let State {
            failures,
            device_failures,
            ..
        } = &mut *state;
        for count in failures.values_mut().chain(device_failures.values_mut()) {
            count.last_failed_at = back(count.last_failed_at);
            count.forget_at = back(count.forget_at);
        }
        for row in state.totp_secrets.values_mut() {
            row.created_at = back(row.created_at);
            row.secret.confirmed_at = row.secret.confirmed_at.map(back);
        }
        for challenge in state.challenges.values_mut() {
            challenge.expires_at = back(challenge.expires_at);
        }
        for device in state.trusted_devices.values_mut() {
            device.expires_at = back(device.expires_at);
        }
    }

    /// Makes the call `n` calls from now (0: the next one) fail with `fault`, replacing any
    /// fault armed before. A call is one of a method of the store's traits that reaches the
    /// data: one refused for its input ([`StoreError::InvalidInput`]), or answered without the
    /// database by `PgStore` (a lookup of a value with a NUL byte, a zero grace window), is not
    /// counted. The failing call changes nothing; the calls after it work again.
    pub fn fail_call(&self, n: usize, fault: Fault) {
        self.lock().fault = Armed {
            calls: 0,
            at: Some((n, fault)),
            fired: false,
        };
    }

    /// Disarms the fault [`fail_call`](Self::fail_call) armed, if it has not fired yet.
    pub fn clear_fault(&self) {
        self.lock().fault = Armed::default();
    }

    /// Whether the fault [`fail_call`](Self::fail_call) armed has made a call fail.
    pub fn fault_fired(&self) -> bool {
        self.lock().fault.fired
    }

    /// Forgets everything: users, sessions, one-time tokens, counters, second factors, and an
    /// armed fault.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// The state, for work that no fault touches.
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot have left a half-made change behind: every
        // change is checked before the first write. So a poisoned lock still holds good data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state for one call of the store's traits: counted, and failed if it is the call the
    /// armed fault chose.
    fn enter(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut state = self.lock();
        let armed = &mut state.fault;
        let call = armed.calls;
        armed.calls = armed.calls.saturating_add(1);
        match armed.at {
            Some((at, fault)) if at == call => {
                armed.fired = true;
                let source = "a fault injected by MemoryStore::fail_call".into();
                Err(match fault {
                    Fault::Unavailable => StoreError::Unavailable(source),
                    Fault::Database => StoreError::Database(source),
                })
            }
            _ => Ok(state),
        }
    }
}

impl fmt::Debug for MemoryStore {
    /// Counts only: no email, hash or digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("users", &state.users.len())
            .field("sessions", &state.sessions.len())
            .field("one_time_tokens", &state.tokens.len())
            .field("rate_limits", &state.counters.len())
            .field("sign_in_failures", &state.failures.len())
            .field("sign_in_device_failures", &state.device_failures.len())
            .field("totp_secrets", &state.totp_secrets.len())
            .field("recovery_codes", &state.recovery_codes.len())
            .field("two_factor_challenges", &state.challenges.len())
            .field("trusted_devices", &state.trusted_devices.len())
            .field("fault_armed", &state.fault.at.map(|(_, fault)| fault))
            .finish()
    }
}

/// The current time as PostgreSQL keeps it: whole microseconds.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A time as a `TIMESTAMPTZ` column stores it: whole microseconds.
fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// `at + by`, or the last (first) representable time where that overflows.
fn later(at: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(by)
        .unwrap_or(if by > TimeDelta::zero() {
            DateTime::<Utc>::MAX_UTC
        } else {
            DateTime::<Utc>::MIN_UTC
        })
}

/// A duration as a time span; one too long for it as the longest.
fn span(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// A failure of a constraint the tables declare (a key taken, a user that does not exist).
fn violation(what: &'static str) -> StoreError {
    StoreError::Database(what.into())
}

impl State {
    /// Deletes the sessions of `user_id` but `keep`; returns how many went. With none kept, the
    /// user's trusted devices end with them: a browser is trusted as long as its owner's sessions
    /// are not all ended.
    fn delete_sessions_of(&mut self, user_id: &str, keep: Option<&str>) -> u64 {
        let before = self.sessions.len();
        self.sessions.retain(|id, row| {
            row.session.user_id != user_id || keep.is_some_and(|keep| keep == id.as_str())
        });
        // Sessions ended by their user (or a reset): the trusted browsers end with them.
        self.delete_trusted_devices_of(user_id);
        (before - self.sessions.len()) as u64
    }

    /// Deletes every one-time token of `user_id`, and its sign-ins waiting for a second factor:
    /// what voids the user's links voids the password a challenge stands for.
    /// The link that removes a factor just added stays: a thief who added it must not void it.
    fn delete_tokens_of(&mut self, user_id: &str) {
        self.tokens.retain(|_, token| {
            token.user_id != user_id || token.purpose == TokenPurpose::RemoveTwoFactor
        });
        self.delete_challenges_of(user_id);
    }
}
