//! `PgStore`: the [`Store`] contract on PostgreSQL.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Timestamptz, Varchar};
use diesel_async::pooled_connection::PoolableConnection as _;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::error::check_text;
use super::fixed::{GetSession, GetUserByEmail, RefreshSession, ReplayedSession};
use super::models::{NewSessionRow, NewUserRow, SessionRow, UserRecord};
use super::pool::PgPool;
use super::prepared::Prepared;
use super::schema::{one_time_tokens, sessions, users};
use crate::limits::{EmailDigest, RateLimit, SignInAttempt, SignInThrottle, WindowCount};
use crate::model::{
    EndSessions, OneTimeToken, RefreshOutcome, Session, SessionRotation, SessionWithUser,
    TokenPurpose, TokenUse, UsedToken, User,
};
use crate::store::{CleanupPace, Store, StoreError};
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

use run::{Retry, abandon, after_failure};

mod counters;

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

/// Consumes the token (one `DELETE … RETURNING`, after its user's lock) and applies `use_`;
/// `None`, and the transaction rolled back, when there is nothing to apply it to.
async fn use_token_in(
    conn: &mut AsyncPgConnection,
    digest: &str,
    purpose: &str,
    use_: TokenUse<'_>,
) -> QueryResult<Option<UsedToken>> {
    let live = one_time_tokens::table
        .filter(one_time_tokens::token.eq(digest))
        .filter(one_time_tokens::purpose.eq(purpose))
        .filter(one_time_tokens::expires_at.gt(diesel::dsl::now));
    // Whose it is, to lock the user first; the DELETE below still decides who consumes it.
    let Some(owner) = live
        .select(one_time_tokens::user_id)
        .first::<String>(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let Some(before) = users::table
        .find(&owner)
        .select(UserRecord::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let consumed: Option<(String, Option<String>)> = diesel::delete(live)
        .returning((one_time_tokens::user_id, one_time_tokens::email))
        .get_result(conn)
        .await
        .optional()?;
    let Some((user_id, email)) = consumed else {
        return Ok(None);
    };
    let previous_email = before.email.clone();
    // Links mailed to an address work only while it is the user's.
    let for_current_address = email.as_deref() == Some(previous_email.as_str());
    let target = users::table.filter(users::id.eq(&user_id));
    let updated = match use_ {
        TokenUse::VerifyEmail => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::update(target)
                .set((
                    users::email_verified.eq(true),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(UserRecord::as_returning())
                .get_result(conn)
                .await?
        }
        TokenUse::ResetPassword { password_hash } => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            // The link reached the address: it is verified too.
            let user = diesel::update(target)
                .set((
                    users::password_hash.eq(password_hash),
                    users::email_verified.eq(true),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(UserRecord::as_returning())
                .get_result(conn)
                .await?;
            delete_sessions_of(conn, &user_id, None).await?;
            delete_tokens_of(conn, &user_id).await?;
            user
        }
        TokenUse::ChangeEmail => {
            let Some(new_email) = email else {
                return Err(diesel::result::Error::RollbackTransaction);
            };
            let user = diesel::update(target)
                .set((
                    users::email.eq(new_email),
                    users::email_verified.eq(true),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(UserRecord::as_returning())
                .get_result(conn)
                .await?;
            delete_tokens_of(conn, &user_id).await?;
            user
        }
        TokenUse::CancelEmailChange => {
            if !for_current_address {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::delete(
                one_time_tokens::table
                    .filter(one_time_tokens::user_id.eq(&user_id))
                    .filter(one_time_tokens::purpose.eq_any([
                        TokenPurpose::ChangeEmail.as_str(),
                        TokenPurpose::CancelEmailChange.as_str(),
                    ])),
            )
            .execute(conn)
            .await?;
            before
        }
    };
    Ok(Some(UsedToken {
        user: updated.into(),
        previous_email,
    }))
}

/// Stores `token`, voiding the user's earlier tokens of its purpose; in a transaction that holds
/// the user's lock.
async fn insert_token(conn: &mut AsyncPgConnection, token: &OneTimeToken) -> QueryResult<()> {
    diesel::delete(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(&token.user_id))
            .filter(one_time_tokens::purpose.eq(token.purpose.as_str())),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(one_time_tokens::table)
        .values((
            one_time_tokens::token.eq(token.token.as_str()),
            one_time_tokens::user_id.eq(&token.user_id),
            one_time_tokens::purpose.eq(token.purpose.as_str()),
            one_time_tokens::email.eq(token.email.as_deref()),
            one_time_tokens::expires_at.eq(token.expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Deletes every one-time token of `user_id`: the links mailed before an event that should end
/// them (a new password, every session ended, a new address).
async fn delete_tokens_of(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(one_time_tokens::table.filter(one_time_tokens::user_id.eq(user_id)))
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
    match keep {
        Some(keep) => {
            diesel::delete(of_user.filter(sessions::id.ne(keep)))
                .execute(conn)
                .await
        }
        None => diesel::delete(of_user).execute(conn).await,
    }
}

/// Text that PostgreSQL cannot hold (a NUL byte) cannot be a stored value either, so a lookup by
/// it finds nothing without asking the database.
fn storable(value: &str) -> bool {
    !value.contains('\0')
}

#[async_trait]
impl Store for PgStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        run!(self, Retry::Never, |conn| insert_user(conn, user))
    }

    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
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

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        check_session(session)?;
        run!(self, Retry::Never, |conn| insert_session(conn, session))
    }

    async fn create_session_verified(
        &self,
        session: &Session,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
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

    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError> {
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

    async fn get_session(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<SessionWithUser>, StoreError> {
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

    async fn delete_session(&self, token: &TokenDigest) -> Result<bool, StoreError> {
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

    async fn delete_rotated_session(
        &self,
        token: &TokenDigest,
        grace: TimeDelta,
    ) -> Result<bool, StoreError> {
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

    async fn clear_rotation_secrets(&self, grace: TimeDelta) -> Result<u64, StoreError> {
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

    async fn refresh_session(
        &self,
        refresh_token: &TokenDigest,
        rotation: &SessionRotation,
    ) -> Result<RefreshOutcome, StoreError> {
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

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        if !storable(user_id) {
            return Ok(Vec::new());
        }
        let rows = run!(self, Retry::Idempotent, |conn| async move {
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::refresh_expires_at.gt(diesel::dsl::now))
                .filter(
                    sessions::absolute_expires_at
                        .is_null()
                        .or(sessions::absolute_expires_at.gt(diesel::dsl::now)),
                )
                .order((
                    diesel::dsl::sql::<Nullable<Timestamptz>>(
                        "COALESCE(sessions.rotated_at, sessions.created_at)",
                    )
                    .desc()
                    .nulls_last(),
                    sessions::id,
                ))
                .select(SessionRow::as_select())
                .load(conn)
                .await
        })?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        if !storable(user_id) || !storable(session_id) {
            return Ok(false);
        }
        let deleted = run!(self, Retry::Never, |conn| async move {
            diesel::delete(
                sessions::table
                    .filter(sessions::id.eq(session_id))
                    .filter(sessions::user_id.eq(user_id)),
            )
            .execute(conn)
            .await
        })?;
        Ok(deleted > 0)
    }

    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        if !storable(user_id) {
            return Ok(0);
        }
        let deleted = run!(self, Retry::Never, |conn| async move {
            match keep {
                Some(_) => delete_sessions_of(conn, user_id, keep).await,
                // Every session ends: the links mailed before end with them.
                None => {
                    conn.transaction(async |conn| {
                        lock_user(conn, user_id).await?;
                        let deleted = delete_sessions_of(conn, user_id, None).await?;
                        delete_tokens_of(conn, user_id).await?;
                        Ok(deleted)
                    })
                    .await
                }
            }
        })?;
        Ok(deleted as u64)
    }

    async fn evict_sessions(&self, user_id: &str, keep: u32) -> Result<u64, StoreError> {
        if !storable(user_id) {
            return Ok(0);
        }
        let keep = i64::from(keep);
        // Oldest use first out: everything past the `keep` most recently used.
        let deleted = run!(self, Retry::Never, |conn| async move {
            Prepared(
                diesel::sql_query(include_str!("evict_sessions.sql"))
                    .bind::<Varchar, _>(user_id)
                    .bind::<BigInt, _>(keep),
            )
            .execute(conn)
            .await
        })?;
        Ok(deleted as u64)
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
        end: EndSessions<'_>,
    ) -> Result<bool, StoreError> {
        check_text("password_hash", password_hash)?;
        if !storable(user_id) || !storable(expected) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                // Only over the hash that was verified: a reset committed meanwhile stands.
                let updated = diesel::update(
                    users::table
                        .filter(users::id.eq(user_id))
                        .filter(users::password_hash.eq(expected)),
                )
                .set((
                    users::password_hash.eq(password_hash),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
                if updated == 0 {
                    return Ok(false);
                }
                match end {
                    EndSessions::None => {}
                    EndSessions::AllBut(keep) => {
                        delete_sessions_of(conn, user_id, Some(keep)).await?;
                    }
                    EndSessions::All => {
                        delete_sessions_of(conn, user_id, None).await?;
                    }
                }
                delete_tokens_of(conn, user_id).await?;
                Ok(true)
            })
            .await
        })
    }

    async fn replace_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
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

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
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

    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), StoreError> {
        check_text("user_id", &token.user_id)?;
        if let Some(email) = &token.email {
            check_text("email", email)?;
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                lock_user(conn, &token.user_id).await?;
                insert_token(conn, token).await
            })
            .await
        })
    }

    async fn issue_token_for_session(
        &self,
        token: &OneTimeToken,
        session_id: &str,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        check_text("user_id", &token.user_id)?;
        if let Some(email) = &token.email {
            check_text("email", email)?;
        }
        if !storable(session_id) || !storable(verified_hash) {
            return Ok(false);
        }
        run!(self, Retry::Never, |conn| async move {
            conn.transaction(async |conn| {
                // The user's lock, as every writer of its links and sessions takes it first, and
                // only over the hash that was verified: a reset or change of password committed
                // since finds nothing.
                let verified = users::table
                    .filter(users::id.eq(&token.user_id))
                    .filter(users::password_hash.eq(verified_hash))
                    .select(users::id)
                    .for_no_key_update()
                    .first::<String>(conn)
                    .await
                    .optional()?;
                if verified.is_none() {
                    return Ok(false);
                }
                // The session still live under that lock: a sign-out everywhere committed since
                // took it with the user's links.
                let live = diesel::select(diesel::dsl::exists(
                    sessions::table
                        .filter(sessions::id.eq(session_id))
                        .filter(sessions::user_id.eq(&token.user_id)),
                ))
                .get_result::<bool>(conn)
                .await?;
                if !live {
                    return Ok(false);
                }
                insert_token(conn, token).await.map(|()| true)
            })
            .await
        })
    }

    async fn use_token(
        &self,
        token: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError> {
        if let TokenUse::ResetPassword { password_hash } = use_ {
            check_text("password_hash", password_hash)?;
        }
        let digest = token.as_str();
        let purpose = use_.purpose().as_str();
        run!(self, Retry::Never, |conn| async move {
            match conn
                .transaction(async |conn| use_token_in(conn, digest, purpose, use_).await)
                .await
            {
                // Rolled back on purpose: nothing to apply the token to.
                Err(diesel::result::Error::RollbackTransaction) => Ok(None),
                other => other,
            }
        })
    }

    async fn cleanup_expired_tokens(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            // Bounded batches, as the sessions' sweep; deleting expired rows twice is harmless.
            let deleted = run!(self, Retry::Idempotent, |conn| async move {
                Prepared(
                    diesel::sql_query(include_str!("cleanup_expired_tokens.sql"))
                        .bind::<BigInt, _>(BATCH_SIZE as i64),
                )
                .execute(conn)
                .await
            })? as u64;
            total += deleted;
            if deleted < BATCH_SIZE {
                return Ok(total);
            }
        }
    }

    async fn cleanup_expired_sessions_paced(&self, pace: CleanupPace) -> Result<u64, StoreError> {
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

    async fn count_request(&self, key: &str, limit: &RateLimit) -> Result<WindowCount, StoreError> {
        counters::count_request(self, key, limit).await
    }

    async fn begin_sign_in_attempt(
        &self,
        email: &EmailDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError> {
        counters::begin_sign_in_attempt(self, email, throttle).await
    }

    async fn clear_sign_in_failures(&self, email: &EmailDigest) -> Result<bool, StoreError> {
        counters::clear_sign_in_failures(self, email).await
    }

    async fn cleanup_rate_limits(&self) -> Result<u64, StoreError> {
        counters::cleanup_rate_limits(self).await
    }
}

/// One row of `get_session.sql` or `refresh_session.sql`: a session and its user, read by
/// position (`(SessionSql, UserSql)` in `fixed.rs`).
#[derive(Queryable)]
struct SessionUserRow {
    session: SessionColumns,
    user: UserRecord,
}

/// A row of `replayed_session.sql`: the session and its user, with the last rotation's secret,
/// whether the token is the one that rotation replaced, and whether it is within the window.
#[derive(Queryable)]
struct ReplayedRow {
    found: SessionUserRow,
    rotation_secret: Option<String>,
    replaced_last: bool,
    within_grace: bool,
}

/// The session's columns in those rows, in the order the `.sql` files select them.
#[derive(Queryable)]
struct SessionColumns {
    session_id: String,
    token: String,
    refresh_token: String,
    expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    session_created_at: Option<DateTime<Utc>>,
    rotated_at: Option<DateTime<Utc>>,
    absolute_expires_at: Option<DateTime<Utc>>,
    persistent: bool,
    user_agent: Option<String>,
    ip_address: Option<String>,
}

impl From<SessionUserRow> for SessionWithUser {
    fn from(row: SessionUserRow) -> Self {
        let user = User::from(row.user);
        let session = row.session;
        Self {
            session: Session {
                id: session.session_id,
                user_id: user.id.clone(),
                token: TokenDigest::from_stored(session.token),
                refresh_token: TokenDigest::from_stored(session.refresh_token),
                expires_at: session.expires_at,
                refresh_expires_at: session.refresh_expires_at,
                created_at: session.session_created_at,
                rotated_at: session.rotated_at,
                absolute_expires_at: session.absolute_expires_at,
                persistent: session.persistent,
                user_agent: session.user_agent,
                ip_address: session.ip_address,
            },
            user,
        }
    }
}
