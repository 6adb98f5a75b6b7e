//! The storage contract, written once against `Arc<dyn Store>` and its capabilities, and run
//! against every backend: `contract::<concern>::pg::<test>` on a PostgreSQL database of the
//! test's own, `contract::<concern>::memory::<test>` on a `MemoryStore` (with the `test-util`
//! feature). A test reaches an expiry, a grace window or a back-off by letting time pass
//! ([`Backend::pass_time`]: the rows' times moved into the past), never by sleeping.
//!
//! What only PostgreSQL has (pools, PgBouncer, lost connections, prepared statements, locks
//! held by another transaction) stays in `store.rs` and its neighbours.

mod counters;
mod management;
mod refresh;
mod second_factors;
mod sessions;
mod tokens;
mod users;

use std::sync::Arc;

#[cfg(feature = "test-util")]
use authingo::memory::MemoryStore;
use authingo::token::{RotationSecret, Token, TokenKind};
use authingo::{
    AbuseCounters, OneTimeTokens, SecondFactors, SessionManagement, SessionRotation, Store, User,
};
use chrono::{DurationRound as _, TimeDelta, Utc};

use crate::support::{TestDb, exec};
use crate::support::{Tokens, live_session, user};

/// A store under test, with the one thing a test needs of its backend beyond the contract: time
/// passing.
pub(crate) struct Backend {
    /// Declared first: dropped before the database under it.
    pub(crate) store: Arc<dyn Store>,
    clock: Clock,
}

/// How time passes for the backend's rows.
enum Clock {
    Pg(TestDb),
    #[cfg(feature = "test-util")]
    Memory(Arc<MemoryStore>),
}

impl Backend {
    /// `PgStore` on a fresh database.
    pub(crate) async fn pg() -> Self {
        let db = TestDb::new().await;
        Self {
            store: Arc::new(db.store().await),
            clock: Clock::Pg(db),
        }
    }

    /// A new `MemoryStore`.
    #[cfg(feature = "test-util")]
    pub(crate) fn memory() -> Self {
        Self::memory_over(Arc::new(MemoryStore::new()))
    }

    /// `store`, for a test that also needs what only `MemoryStore` has (faults, `clear`).
    #[cfg(feature = "test-util")]
    pub(crate) fn memory_over(store: Arc<MemoryStore>) -> Self {
        Self {
            store: store.clone(),
            clock: Clock::Memory(store),
        }
    }

    pub(crate) fn management(&self) -> Arc<dyn SessionManagement> {
        self.store.clone().session_management().unwrap()
    }

    pub(crate) fn tokens(&self) -> Arc<dyn OneTimeTokens> {
        self.store.clone().one_time_tokens().unwrap()
    }

    pub(crate) fn counters(&self) -> Arc<dyn AbuseCounters> {
        self.store.clone().abuse_counters().unwrap()
    }

    pub(crate) fn second_factors(&self) -> Arc<dyn SecondFactors> {
        self.store
            .clone()
            .second_factors()
            .expect("the backend offers SecondFactors")
    }

    /// Moves every time the backend holds `by` into the past, as if that much time had passed.
    pub(crate) async fn pass_time(&self, by: TimeDelta) {
        match &self.clock {
            Clock::Pg(db) => {
                // Every `TIMESTAMPTZ` column of every table the migrations made, found in the
                // catalogue, so that a new table's times move without a list to keep up to date
                // (Diesel's own `run_on` is a plain `TIMESTAMP` and stays).
                let sql = format!(
                    "DO $$ DECLARE t record; BEGIN \
                       FOR t IN SELECT table_name, string_agg(format( \
                           '%1$I = %1$I - INTERVAL ''{} microseconds''', column_name), ', ') AS sets \
                         FROM information_schema.columns \
                         WHERE table_schema = current_schema() \
                           AND data_type = 'timestamp with time zone' \
                         GROUP BY table_name \
                       LOOP EXECUTE format('UPDATE %I SET %s', t.table_name, t.sets); END LOOP; \
                     END $$",
                    by.num_microseconds().unwrap()
                );
                exec(&mut db.conn().await, &sql).await;
            }
            #[cfg(feature = "test-util")]
            Clock::Memory(store) => store.pass_time(by),
        }
    }
}

/// The grace window of the engine's default.
pub(crate) const GRACE: TimeDelta = TimeDelta::seconds(10);

/// A rotation of the session whose refresh token is `presented`, made as the engine makes it:
/// the new pair derived from `presented` with a fresh secret (so the new refresh token keeps its
/// family), expiries in 20 minutes and 40 days (whole microseconds, as PostgreSQL keeps them), no
/// lifetime bound, and a window of `grace`. With the new access and refresh tokens.
pub(crate) fn rotation(presented: &Token, grace: TimeDelta) -> (SessionRotation, Token, Token) {
    let secret = RotationSecret::generate().unwrap();
    let access = Token::derive(TokenKind::Access, &secret, presented);
    let refresh = Token::derive(TokenKind::Refresh, &secret, presented);
    let now = Utc::now()
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap();
    let rotation = SessionRotation {
        token: access.digest(),
        refresh_token: refresh.digest(),
        expires_at: now + TimeDelta::minutes(20),
        refresh_expires_at: now + TimeDelta::days(40),
        secret,
        max_lifetime: None,
        reuse_grace: grace,
        family: presented.family(),
    };
    (rotation, access, refresh)
}

/// A stored user, `email`, with one live session (access 15 minutes, refresh 30 days).
pub(crate) async fn user_with_session(
    backend: &Backend,
    email: &str,
) -> (User, authingo::Session, Tokens) {
    let owner = user(email);
    backend.store.create_user(&owner).await.unwrap();
    let (session, tokens) = live_session(&owner);
    backend.store.create_session(&session).await.unwrap();
    (owner, session, tokens)
}

/// Runs each listed test `name(backend: &Backend)` as `pg::name` on `PgStore` over a database of
/// its own and as `memory::name` on a `MemoryStore`; an optional parenthesised argument list is
/// `#[tokio::test]`'s.
macro_rules! contract {
    ($($name:ident $(($($flavor:tt)*))?),* $(,)?) => {
        mod pg {
            $(
                #[tokio::test $(($($flavor)*))?]
                async fn $name() {
                    super::$name(&crate::contract::Backend::pg().await).await;
                }
            )*
        }

        #[cfg(feature = "test-util")]
        mod memory {
            $(
                #[tokio::test $(($($flavor)*))?]
                async fn $name() {
                    super::$name(&crate::contract::Backend::memory()).await;
                }
            )*
        }
    };
}
pub(crate) use contract;
