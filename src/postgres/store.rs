//! `PgStore`: the [`Store`] core on PostgreSQL, with the statement runner (`run`) and, one file
//! each, its three capabilities (`management`, `tokens`, `counters`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Timestamptz, Varchar};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tracing::instrument;

use super::error::check_text;
use super::fixed::{GetSession, GetUserByEmail, RefreshSession, ReplayedSession};
use super::models::{NewSessionRow, NewUserRow, ReplayedRow, SessionUserRow, UserRecord};
use super::observe;
use super::pool::PgPool;
use super::prepared::Prepared;
use super::schema::{one_time_tokens, sessions, users};
use crate::model::{RefreshOutcome, Session, SessionRotation, SessionWithUser, TokenPurpose, User};
use crate::store::{
    AbuseCounters, CleanupPace, OneTimeTokens, SecondFactors, SessionManagement, Store, StoreError,
};
use crate::telemetry::STORE_SPAN;
use crate::token::{RotationSecret, TokenDigest};

/// Rows per statement of the sweeps that have no pace of their own (one-time tokens, rotation
/// secrets, abuse counters), as the specification's sessions.
const BATCH_SIZE: u64 = 1000;

/// How long one statement may run before the store gives up on it, by default.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store, on a bb8 pool of diesel-async connections. Cheap to clone.
///
/// Every operation answers within the pool's checkout timeout
/// ([`PoolConfig::connection_timeout`](super::PoolConfig::connection_timeout)) plus the statement
/// timeout ([`statement_timeout`](Self::statement_timeout)) per statement, whatever the database
/// does: a statement that outlives its bound is cancelled on the server, its connection is
/// discarded, and the caller gets [`StoreError::Unavailable`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    statement_timeout: Duration,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.state())
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

impl PgStore {
    /// A store on `pool` (see [`connect`](super::connect)), with statements bounded by
    /// [`DEFAULT_STATEMENT_TIMEOUT`] (5 s). The tables must exist: see
    /// [`run_migrations`](super::run_migrations).
    pub fn new(pool: impl Into<PgPool>) -> Self {
        Self {
            pool: pool.into(),
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        }
    }

    /// Sets how long one statement may run (default [`DEFAULT_STATEMENT_TIMEOUT`], 5 s). A zero
    /// duration is raised to one millisecond.
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The pool the store runs on, for your own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[macro_use]
mod run;

use run::Retry;

mod counters;
mod management;
mod second_factors;
mod tokens;

/// A duration as the seconds PostgreSQL multiplies an `INTERVAL '1 second'` by; a negative one
/// as zero.
fn seconds(duration: impl Into<Seconds>) -> f64 {
    duration.into().0
}

/// Seconds, from either kind of duration the store is given.
struct Seconds(f64);

impl From<TimeDelta> for Seconds {
    fn from(duration: TimeDelta) -> Self {
        Self(duration.to_std().unwrap_or_default().as_secs_f64())
    }
}

impl From<Duration> for Seconds {
    fn from(duration: Duration) -> Self {
        Self(duration.as_secs_f64())
    }
}

fn check_user(user: &User) -> Result<(), StoreError> {
    check_text("id", &user.id)?;
    check_text("email", &user.email)?;
    check_text("name", &user.name)?;
    check_text("password_hash", &user.password_hash)
}

fn check_session(session: &Session) -> Result<(), StoreError> {
    check_text("id", &session.id)?;
    check_text("user_id", &session.user_id)?;
    check_text("token", session.token.as_str())?;
    check_text("refresh_token", session.refresh_token.as_str())?;
    if let Some(user_agent) = &session.user_agent {
        check_text("user_agent", user_agent)?;
    }
    if let Some(ip_address) = &session.ip_address {
        check_text("ip_address", ip_address)?;
    }
    Ok(())
}

async fn insert_user(conn: &mut AsyncPgConnection, user: &User) -> QueryResult<()> {
    Prepared(diesel::insert_into(users::table).values(NewUserRow::from(user)))
        .execute(conn)
        .await
        .map(drop)
}

async fn insert_session(conn: &mut AsyncPgConnection, session: &Session) -> QueryResult<()> {
    Prepared(diesel::insert_into(sessions::table).values(NewSessionRow::from(session)))
        .execute(conn)
        .await
        .map(drop)
}

/// Locks the row of `user_id` against every other write of it until the transaction ends; says
/// whether it exists.
///
/// Every transaction that writes a user's tokens or sessions with more than one statement takes
/// this lock first (a change of password's `UPDATE users` takes it too): one order for all, so
/// that a reset, a change of email, a new link and a sign-out everywhere of one user wait for
/// each other instead of deadlocking. `NO KEY UPDATE` leaves alone the key-share locks that the
/// foreign keys of a concurrent insert take.
async fn lock_user(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<bool> {
    users::table
        .find(user_id)
        .select(users::id)
        .for_no_key_update()
        .first::<String>(conn)
        .await
        .optional()
        .map(|found| found.is_some())
}

/// Deletes every one-time token of `user_id`: the links mailed before an event that should end
/// them (a new password, every session ended, a new address).
async fn delete_tokens_of(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<usize> {
    // The sign-ins waiting for a second factor end with them. The link that removes a factor
    // just added stays: a thief who added it must not be able to void it by ending sessions.
    second_factors::delete_challenges_of(conn, user_id).await?;
    diesel::delete(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user_id))
            .filter(one_time_tokens::purpose.ne(TokenPurpose::RemoveTwoFactor.as_str())),
    )
    .execute(conn)
    .await
}

/// Deletes the sessions of `user_id`, but `keep`.
async fn delete_sessions_of(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    keep: Option<&str>,
) -> QueryResult<usize> {
    let of_user = sessions::table.filter(sessions::user_id.eq(user_id));
    // Sessions ended by their user (or a reset): the browsers trusted to skip the second factor
    // end with them, so that revoking a phisher's session also ends the trust it asked for.
    second_factors::delete_trusted_devices_of(conn, user_id).await?;
    match keep {
        Some(keep) => {
            diesel::delete(of_user.filter(sessions::id.ne(keep)))
                .execute(conn)
                .await
        }
        None => diesel::delete(of_user).execute(conn).await,
    }
}

use crate::store::storable;

#[async_trait]
impl Store for PgStore {
    #[instrument(name = STORE_SPAN, skip_all, fields(op = "create_user"))]
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let _timed = observe::timed("create_user");
        check_user(user)?;
        run!(self, Retry::Never, |conn| insert_user(conn, user))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "get_user_by_email"))]
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let _timed = observe::timed("get_user_by_email");
        if !storable(email) {
            return Ok(None);
        }
        // A fixed statement, as get_session's: the query builder would render its text anew on
        // every call.
        let row = run!(self, Retry::Idempotent, |conn| async move {
            GetUserByEmail { email }
                .get_result::<UserRecord>(conn)
                .await
                .optional()
        })?;
        Ok(row.map(User::from))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "create_session"))]
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let _timed = observe::timed("create_session");
        check_session(session)?;
        run!(self, Retry::Never, |conn| insert_session(conn, session))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "create_session_verified"))]
    async fn create_session_verified(
        &self,
        session: &Session,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("create_session_verified");
        check_session(session)?;
        if !storable(verified_hash) {
            return Ok(false);
        }
        let created_at = session.created_at.unwrap_or_else(Utc::now);
        let inserted = run!(self, Retry::Never, |conn| async move {
            Prepared(
                diesel::sql_query(include_str!("create_session_verified.sql"))
                    .bind::<Varchar, _>(&session.id)
                    .bind::<Varchar, _>(&session.user_id)
                    .bind::<Varchar, _>(session.token.as_str())
                    .bind::<Varchar, _>(session.refresh_token.as_str())
                    .bind::<Timestamptz, _>(session.expires_at)
                    .bind::<Timestamptz, _>(session.refresh_expires_at)
                    .bind::<Timestamptz, _>(created_at)
                    .bind::<Nullable<Timestamptz>, _>(session.absolute_expires_at)
                    .bind::<Bool, _>(session.persistent)
                    .bind::<Nullable<Varchar>, _>(session.user_agent.as_deref())
                    .bind::<Nullable<Varchar>, _>(session.ip_address.as_deref())
                    .bind::<Varchar, _>(verified_hash),
            )
            .execute(conn)
            .await
        })?;
        Ok(inserted == 1)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "create_user_with_session"))]
    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError> {
        let _timed = observe::timed("create_user_with_session");
        check_user(user)?;
        check_session(session)?;
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                insert_user(conn, user).await?;
                insert_session(conn, session).await
            })
            .await
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "get_session"))]
    async fn get_session(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<SessionWithUser>, StoreError> {
        let _timed = observe::timed("get_session");
        // Hand-written rather than built: the query builder renders its SQL text anew on every
        // call, a cost the hottest statement should not carry.
        let token = token.as_str();
        let row = run!(self, Retry::Idempotent, |conn| async move {
            GetSession { token }
                .get_result::<SessionUserRow>(conn)
                .await
                .optional()
        })?;
        Ok(row.map(SessionWithUser::from))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "delete_session"))]
    async fn delete_session(&self, token: &TokenDigest) -> Result<bool, StoreError> {
        let _timed = observe::timed("delete_session");
        let digest = token.as_str();
        // Not repeated: a repeat after a first run that deleted the row would report `false`.
        let deleted = run!(self, Retry::Never, |conn| async move {
            diesel::delete(
                sessions::table.filter(
                    sessions::token
                        .eq(digest)
                        .or(sessions::refresh_token.eq(digest))
                        .or(sessions::previous_refresh_token.eq(digest)),
                ),
            )
            .execute(conn)
            .await
        })?;
        Ok(deleted > 0)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "delete_rotated_session"))]
    async fn delete_rotated_session(
        &self,
        token: &TokenDigest,
        grace: TimeDelta,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("delete_rotated_session");
        if grace <= TimeDelta::zero() {
            return Ok(false);
        }
        let digest = token.as_str();
        let grace = seconds(grace);
        // Not repeated, as delete_session.
        let deleted = run!(self, Retry::Never, |conn| async move {
            Prepared(
                diesel::sql_query(include_str!("delete_rotated_session.sql"))
                    .bind::<Varchar, _>(digest)
                    .bind::<Double, _>(grace),
            )
            .execute(conn)
            .await
        })?;
        Ok(deleted > 0)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "clear_rotation_secrets"))]
    async fn clear_rotation_secrets(&self, grace: TimeDelta) -> Result<u64, StoreError> {
        let _timed = observe::timed("clear_rotation_secrets");
        let grace = seconds(grace.max(TimeDelta::zero()));
        let mut total = 0;
        loop {
            // Bounded batches, as the sweeps; clearing a spent secret twice is harmless.
            let cleared = run!(self, Retry::Idempotent, |conn| async move {
                Prepared(
                    diesel::sql_query(include_str!("clear_rotation_secrets.sql"))
                        .bind::<Double, _>(grace)
                        .bind::<BigInt, _>(BATCH_SIZE as i64),
                )
                .execute(conn)
                .await
            })? as u64;
            total += cleared;
            if cleared < BATCH_SIZE {
                return Ok(total);
            }
        }
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "refresh_session"))]
    async fn refresh_session(
        &self,
        refresh_token: &TokenDigest,
        rotation: &SessionRotation,
    ) -> Result<RefreshOutcome, StoreError> {
        let _timed = observe::timed("refresh_session");
        check_text("token", rotation.token.as_str())?;
        check_text("refresh_token", rotation.refresh_token.as_str())?;
        let secret = rotation.secret.to_stored();
        let secret = secret.as_str();
        let max_lifetime = rotation.max_lifetime.map(seconds);
        let rotated = run!(self, Retry::Never, |conn| async move {
            RefreshSession {
                refresh_token: refresh_token.as_str(),
                token: rotation.token.as_str(),
                new_refresh_token: rotation.refresh_token.as_str(),
                expires_at: rotation.expires_at,
                refresh_expires_at: rotation.refresh_expires_at,
                secret,
                max_lifetime,
                family: rotation.family.as_str(),
            }
            .get_result::<SessionUserRow>(conn)
            .await
            .optional()
        })?;
        if let Some(row) = rotated {
            return Ok(RefreshOutcome::Rotated(row.into()));
        }
        // Not the current token: perhaps the one replaced last, replayed by a racing tab or a
        // retry after a lost response, or an earlier one of the session's, presented by a
        // thief or by the client a thief raced. A statement of its own, so that it sees a
        // rotation that committed while the UPDATE above waited for the row.
        let grace = seconds(rotation.reuse_grace.max(TimeDelta::zero()));
        let replayed = run!(self, Retry::Idempotent, |conn| async move {
            ReplayedSession {
                refresh_token: refresh_token.as_str(),
                grace,
                family: rotation.family.as_str(),
            }
            .get_result::<ReplayedRow>(conn)
            .await
            .optional()
        })?;
        let Some(replayed) = replayed else {
            return Ok(RefreshOutcome::Invalid);
        };
        if replayed.replaced_last && rotation.reuse_grace <= TimeDelta::zero() {
            // Without a window, the loser of a race is told no, as upstream, and nothing ends.
            return Ok(RefreshOutcome::Invalid);
        }
        if replayed.within_grace {
            return Ok(
                match replayed
                    .rotation_secret
                    .as_deref()
                    .and_then(RotationSecret::from_stored)
                {
                    Some(secret) => RefreshOutcome::Replayed {
                        found: replayed.found.into(),
                        secret,
                    },
                    None => RefreshOutcome::Invalid,
                },
            );
        }
        // A token the session issued before, after the window or more than one rotation ago:
        // whoever holds it is not the client the rotations answered.
        let SessionWithUser { session, user } = replayed.found.into();
        let (session_id, user_id) = (session.id, user.id);
        let deleted = run!(self, Retry::Never, |conn| async {
            diesel::delete(sessions::table.filter(sessions::id.eq(&session_id)))
                .execute(conn)
                .await
        })?;
        Ok(if deleted > 0 {
            RefreshOutcome::Reused {
                session_id,
                user_id,
            }
        } else {
            RefreshOutcome::Invalid
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "replace_password_hash"))]
    async fn replace_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let _timed = observe::timed("replace_password_hash");
        check_text("password_hash", password_hash)?;
        if !storable(user_id) || !storable(expected) {
            return Ok(false);
        }
        // One statement: the condition and the write are atomic without a transaction.
        let updated = run!(self, Retry::Never, |conn| async move {
            diesel::update(
                users::table.filter(users::id.eq(user_id).and(users::password_hash.eq(expected))),
            )
            .set((
                users::password_hash.eq(password_hash),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
        })?;
        Ok(updated == 1)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "get_user"))]
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let _timed = observe::timed("get_user");
        if !storable(user_id) {
            return Ok(None);
        }
        let row = run!(self, Retry::Idempotent, |conn| async move {
            users::table
                .find(user_id)
                .select(UserRecord::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        Ok(row.map(User::from))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "cleanup_expired_sessions_paced"))]
    async fn cleanup_expired_sessions_paced(&self, pace: CleanupPace) -> Result<u64, StoreError> {
        let _timed = observe::timed("cleanup_expired_sessions_paced");
        let batch_size = u64::from(pace.batch_size.max(1));
        let limit = batch_size as i64;
        let mut total = 0;
        loop {
            let started = std::time::Instant::now();
            // Each batch is its own short statement, so live traffic never waits behind one
            // huge DELETE. A batch deletes only dead rows: repeating one is harmless.
            let deleted = run!(self, Retry::Idempotent, |conn| async move {
                Prepared(
                    diesel::sql_query(include_str!("cleanup_expired_sessions.sql"))
                        .bind::<BigInt, _>(limit),
                )
                .execute(conn)
                .await
            })? as u64;
            tracing::debug!(deleted, "cleanup batch");
            total += deleted;
            if deleted < batch_size {
                return Ok(total);
            }
            // Leave the database to live traffic for a while, in proportion to what the batch
            // took: on a busy or slow server the sweep slows down with it.
            let pause = started.elapsed().mul_f64(pace.pause_ratio);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    fn session_management(self: Arc<Self>) -> Option<Arc<dyn SessionManagement>> {
        Some(self)
    }

    fn one_time_tokens(self: Arc<Self>) -> Option<Arc<dyn OneTimeTokens>> {
        Some(self)
    }

    fn abuse_counters(self: Arc<Self>) -> Option<Arc<dyn AbuseCounters>> {
        Some(self)
    }

    fn second_factors(self: Arc<Self>) -> Option<Arc<dyn SecondFactors>> {
        Some(self)
    }
}
