//! The baseline: the SQL `PgStore` sends, as tokio-postgres statements prepared once per
//! connection, on a bb8-postgres pool configured as `PgStore`'s is (no check on checkout).
//!
//! The SQL text is not copied by hand: it is rendered by Diesel from the same query-builder
//! expressions authingo's `src/postgres/store.rs` uses, or read from the same `.sql` files. After
//! each store measurement the bench compares it with what `PgStore`'s connections last ran
//! (`pg_stat_activity`), so a change in authingo's `src/` that alters the SQL shows up in the
//! report.

use std::time::{Duration, SystemTime};

use authingo::limits::EmailDigest;
use authingo::postgres::schema::sessions;
use authingo::token::TokenDigest;
use authingo::{Session, SessionRotation, SessionWithUser, SignInThrottle, User};
use bb8_postgres::PostgresConnectionManager;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::Result;
use super::workload::Op;

/// The statements `PgStore` reads from its `.sql` files, read from the same files.
const GET_SESSION_SQL: &str = include_str!("../../../../src/postgres/get_session.sql");
const REFRESH_SQL: &str = include_str!("../../../../src/postgres/refresh_session.sql");
const GET_USER_SQL: &str = include_str!("../../../../src/postgres/get_user_by_email.sql");
const RATE_LIMIT_SQL: &str = include_str!("../../../../src/postgres/rate_limit_hit.sql");
const SIGN_IN_ATTEMPT_SQL: &str = include_str!("../../../../src/postgres/sign_in_attempt.sql");
const CLEAR_FAILURES_SQL: &str =
    include_str!("../../../../src/postgres/clear_sign_in_failures.sql");

/// The SQL of `op` as `PgStore` sends it.
pub(crate) fn sql(op: Op) -> String {
    match op {
        Op::GetSession => GET_SESSION_SQL.to_owned(),
        Op::GetUserByEmail => GET_USER_SQL.to_owned(),
        Op::CreateSession => {
            let at = DateTime::<Utc>::UNIX_EPOCH;
            // The insertable row's fields, in their order; none is an `Option` (an unset
            // `created_at` is bound as the time of the insert).
            let query = diesel::insert_into(sessions::table).values((
                sessions::id.eq(""),
                sessions::user_id.eq(""),
                sessions::token.eq(""),
                sessions::refresh_token.eq(""),
                sessions::expires_at.eq(at),
                sessions::refresh_expires_at.eq(at),
                sessions::created_at.eq(at),
                sessions::absolute_expires_at.eq(Some(at)),
                sessions::persistent.eq(true),
                sessions::user_agent.eq(Some("")),
                sessions::ip_address.eq(Some("")),
            ));
            render(&query)
        }
        Op::RefreshSession => REFRESH_SQL.to_owned(),
        Op::CountRequest => RATE_LIMIT_SQL.to_owned(),
        // Its first statement; the second is `CLEAR_FAILURES_SQL` (see `statements`).
        Op::SignInThrottle => SIGN_IN_ATTEMPT_SQL.to_owned(),
        Op::DeleteSession => {
            let query = diesel::delete(
                sessions::table.filter(
                    sessions::token
                        .eq("")
                        .or(sessions::refresh_token.eq(""))
                        .or(sessions::previous_refresh_token.eq("")),
                ),
            );
            render(&query)
        }
    }
}

/// Every statement `op` runs: its [`sql`], and for the sign-in throttle the clearing too.
pub(crate) fn statements(op: Op) -> Vec<String> {
    let mut all = vec![sql(op)];
    if op == Op::SignInThrottle {
        all.push(CLEAR_FAILURES_SQL.to_owned());
    }
    all
}

fn render<Q: diesel::query_builder::QueryFragment<Pg>>(query: &Q) -> String {
    let text = diesel::debug_query::<Pg, _>(query).to_string();
    match text.split_once(" -- binds: ") {
        Some((sql, _)) => sql.to_owned(),
        None => text,
    }
}

/// The parameter types Diesel declares for each statement (its `prepare_typed`).
fn param_types(op: Op) -> &'static [Type] {
    match op {
        Op::GetSession => &[Type::VARCHAR],
        Op::GetUserByEmail => &[Type::VARCHAR],
        Op::CreateSession => &[
            Type::VARCHAR,
            Type::VARCHAR,
            Type::VARCHAR,
            Type::VARCHAR,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
        Op::RefreshSession => &[
            Type::VARCHAR,
            Type::VARCHAR,
            Type::VARCHAR,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
        Op::DeleteSession => &[Type::VARCHAR, Type::VARCHAR],
        Op::CountRequest => &[Type::VARCHAR, Type::FLOAT8, Type::INT4],
        Op::SignInThrottle => &[
            Type::VARCHAR,
            Type::INT4,
            Type::FLOAT8,
            Type::FLOAT8,
            Type::INT4,
            Type::FLOAT8,
        ],
    }
}

/// A pooled connection with every statement prepared on it.
#[derive(Debug)]
pub(crate) struct Conn {
    client: Client,
    statements: Vec<Statement>,
    /// `clear_sign_in_failures.sql`, the sign-in throttle's second statement.
    clear_failures: Statement,
}

impl Conn {
    fn statement(&self, op: Op) -> &Statement {
        // Prepared in `Op::ALL` order, which is the declaration order.
        &self.statements[op as usize]
    }
}

/// bb8-postgres's manager, plus the statements prepared once on each new connection.
#[derive(Debug)]
pub(crate) struct Manager {
    inner: PostgresConnectionManager<NoTls>,
    sql: Vec<String>,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<Conn, tokio_postgres::Error> {
        let client = self.inner.connect().await?;
        let mut statements = Vec::with_capacity(Op::ALL.len());
        for (op, sql) in Op::ALL.iter().zip(&self.sql) {
            statements.push(client.prepare_typed(sql, param_types(*op)).await?);
        }
        let clear_failures = client
            .prepare_typed(CLEAR_FAILURES_SQL, &[Type::VARCHAR])
            .await?;
        Ok(Conn {
            client,
            statements,
            clear_failures,
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), tokio_postgres::Error> {
        self.inner.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.inner.has_broken(&mut conn.client)
    }
}

pub(crate) type Pool = bb8::Pool<Manager>;

/// A pool of `max_size` connections on `url`, set up as `authingo::postgres::connect_with`
/// sets up its own: no check on checkout, 5 s checkout timeout.
pub(crate) async fn pool(url: &str, max_size: u32) -> Result<Pool> {
    let manager = Manager {
        inner: PostgresConnectionManager::new_from_stringlike(url, NoTls)?,
        sql: Op::ALL.iter().map(|op| sql(*op)).collect(),
    };
    let pool = bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(false)
        .build(manager)
        .await?;
    drop(
        pool.get()
            .await
            .map_err(|err| format!("baseline pool: {err}"))?,
    );
    Ok(pool)
}

/// `get_session`: the session and its user, decoded as `PgStore` decodes them.
pub(crate) async fn get_session(
    pool: &Pool,
    token: &TokenDigest,
) -> Result<Option<SessionWithUser>> {
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let statement = conn.statement(Op::GetSession);
    let rows = conn.client.query(statement, &[&token.as_str()]).await?;
    rows.first().map(session_with_user).transpose()
}

pub(crate) async fn get_user_by_email(pool: &Pool, email: &str) -> Result<Option<User>> {
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let statement = conn.statement(Op::GetUserByEmail);
    let rows = conn.client.query(statement, &[&email]).await?;
    rows.first().map(|row| user_at(row, 0)).transpose()
}

pub(crate) async fn create_session(pool: &Pool, session: &Session) -> Result<()> {
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let statement = conn.statement(Op::CreateSession);
    conn.client
        .execute(
            statement,
            &[
                &session.id,
                &session.user_id,
                &session.token.as_str(),
                &session.refresh_token.as_str(),
                &SystemTime::from(session.expires_at),
                &SystemTime::from(session.refresh_expires_at),
                &SystemTime::from(session.created_at.unwrap_or_else(Utc::now)),
                &session.absolute_expires_at.map(SystemTime::from),
                &session.persistent,
                &session.user_agent,
                &session.ip_address,
            ],
        )
        .await?;
    Ok(())
}

pub(crate) async fn refresh_session(
    pool: &Pool,
    old: &TokenDigest,
    rotation: &SessionRotation,
) -> Result<Option<SessionWithUser>> {
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let statement = conn.statement(Op::RefreshSession);
    let rows = conn
        .client
        .query(
            statement,
            &[
                &old.as_str(),
                &rotation.token.as_str(),
                &rotation.refresh_token.as_str(),
                &SystemTime::from(rotation.expires_at),
                &SystemTime::from(rotation.refresh_expires_at),
                &rotation.secret.to_stored(),
                &rotation
                    .max_lifetime
                    .map(|lifetime| lifetime.num_milliseconds() as f64 / 1000.0),
                &rotation.family.as_str(),
            ],
        )
        .await?;
    rows.first().map(session_with_user).transpose()
}

pub(crate) async fn delete_session(pool: &Pool, token: &TokenDigest) -> Result<bool> {
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let statement = conn.statement(Op::DeleteSession);
    let deleted = conn
        .client
        .execute(
            statement,
            &[&token.as_str(), &token.as_str(), &token.as_str()],
        )
        .await?;
    Ok(deleted > 0)
}

/// A rate-limit check: the count with this request, as `PgStore` reads it.
pub(crate) async fn count_request(
    pool: &Pool,
    key: &str,
    limit: &authingo::RateLimit,
) -> Result<i32> {
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let statement = conn.statement(Op::CountRequest);
    let max = i32::try_from(limit.max)?;
    let row = conn
        .client
        .query_one(statement, &[&key, &limit.window.as_secs_f64(), &max])
        .await?;
    let _resets_in: f64 = row.try_get(1)?;
    Ok(row.try_get(0)?)
}

/// A successful sign-in's email throttle, as `PgStore` runs it: the attempt counted, then the
/// count cleared, each on its own checkout. Whether the attempt was allowed and a count cleared.
pub(crate) async fn sign_in_throttle(
    pool: &Pool,
    email: &EmailDigest,
    throttle: &SignInThrottle,
) -> Result<bool> {
    let secs = |duration: std::time::Duration| duration.as_secs_f64();
    let allowed = {
        let conn = pool.get().await.map_err(|err| format!("{err}"))?;
        let statement = conn.statement(Op::SignInThrottle);
        let rows = conn
            .client
            .query(
                statement,
                &[
                    &email.as_str(),
                    &i32::try_from(throttle.free_failures)?,
                    &secs(throttle.first_delay),
                    &secs(throttle.max_delay),
                    &throttle.lock_after.map(i32::try_from).transpose()?,
                    &secs(throttle.forget_after),
                ],
            )
            .await?;
        match rows.first() {
            Some(row) => {
                let _failures: i32 = row.try_get(1)?;
                let _locked: bool = row.try_get(2)?;
                let _retry_after: f64 = row.try_get(3)?;
                row.try_get::<_, bool>(0)?
            }
            None => false,
        }
    };
    let conn = pool.get().await.map_err(|err| format!("{err}"))?;
    let cleared = conn
        .client
        .execute(&conn.clear_failures, &[&email.as_str()])
        .await?;
    Ok(allowed && cleared > 0)
}

fn time(at: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(at)
}

/// A row of `get_session.sql` or of `refresh_session.sql`'s RETURNING list: eleven session
/// columns (the user's id stands for the session's `user_id`), then the seven of `UserRow`.
fn session_with_user(row: &Row) -> Result<SessionWithUser> {
    let user = user_at(row, 11)?;
    Ok(SessionWithUser {
        session: Session {
            id: row.try_get(0)?,
            user_id: user.id.clone(),
            token: TokenDigest::from_stored(row.try_get(1)?),
            refresh_token: TokenDigest::from_stored(row.try_get(2)?),
            expires_at: time(row.try_get(3)?),
            refresh_expires_at: time(row.try_get(4)?),
            created_at: row.try_get::<_, Option<SystemTime>>(5)?.map(time),
            rotated_at: row.try_get::<_, Option<SystemTime>>(6)?.map(time),
            absolute_expires_at: row.try_get::<_, Option<SystemTime>>(7)?.map(time),
            persistent: row.try_get(8)?,
            user_agent: row.try_get(9)?,
            ip_address: row.try_get(10)?,
        },
        user,
    })
}

/// The seven `UserRow` columns starting at `at`.
fn user_at(row: &Row, at: usize) -> Result<User> {
    Ok(User {
        id: row.try_get(at)?,
        email: row.try_get(at + 1)?,
        name: row.try_get(at + 2)?,
        password_hash: row.try_get(at + 3)?,
        email_verified: row.try_get::<_, Option<bool>>(at + 4)?.unwrap_or(false),
        created_at: row.try_get::<_, Option<SystemTime>>(at + 5)?.map(time),
        updated_at: row.try_get::<_, Option<SystemTime>>(at + 6)?.map(time),
    })
}
