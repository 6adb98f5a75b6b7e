//! The embedded migrations: the same files `diesel migration run` applies in production, and the
//! runner that applies them (or an application's migrations that include them) from inside a
//! program.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Connection as _, QueryableByName, RunQueryDsl as _};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

use super::error::{DetailAndHint, SetupError};
use super::verify::{self, Found, Stage};
use crate::error::BoxError;

/// The migrations compiled into the crate, in `migrations/`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The specification's schema: the first migration's `up.sql`, idempotent (every statement is
/// `IF NOT EXISTS`).
pub const SCHEMA_SQL: &str =
    include_str!("../../migrations/2026-11-27-000000_create_authingo/up.sql");

/// Advisory-lock key that serialises migration runs across processes ("authingo" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6175_7468_696e_676f;

type Wrapped = AsyncConnectionWrapper<AsyncPgConnection>;

/// Applies the pending embedded migrations to the database at `database_url` and returns the
/// versions applied (empty when it was up to date).
///
/// Runs on a connection of its own, under a PostgreSQL advisory lock, so that processes starting
/// together apply each migration once. A database whose tables were made by hand from
/// [`SCHEMA_SQL`] (as the Go library's `ApplySchema` does) is adopted with its rows; a table of
/// the same name but another shape (an application's own `users`) is refused before anything
/// runs, and the tables are checked again once the migrations are done, as
/// [`PgStore::verify_schema`](super::PgStore::verify_schema) does.
///
/// # Errors
/// [`SetupError::Unavailable`] when the database cannot be reached, [`SetupError::Tls`] when
/// TLS cannot be set up as the URL asks (see [`connect_with`](super::connect_with));
/// [`SetupError::IncompatibleSchema`] for an existing table that is not as the crate expects
/// (nothing was applied when it is found before the migrations);
/// [`SetupError::Database`] when a migration fails (that migration's changes are rolled back), its
/// message with the database's detail.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, SetupError> {
    run_migrations_from(database_url, MIGRATIONS).await
}

/// [`run_migrations`] for another set of migrations: an application's own, into whose folder
/// authingo's were copied (see the README's "Using authingo in an existing Diesel application"),
/// typically `embed_migrations!("migrations")`. Same lock, same checks before and after; the
/// tables the crate uses must exist when they are done.
///
/// # Errors
/// As for [`run_migrations`].
pub async fn run_migrations_from<S>(
    database_url: &str,
    source: S,
) -> Result<Vec<String>, SetupError>
where
    S: MigrationSource<Pg> + Send + 'static,
{
    // Opened here, on the caller's runtime, with TLS as the URL says.
    let conn = Wrapped::from(super::pool::establish(database_url).await?);
    // diesel_migrations is synchronous: run it on the blocking pool over a wrapped async
    // connection, never on an async worker.
    tokio::task::spawn_blocking(move || migrate_blocking(conn, source))
        .await
        .map_err(|err| SetupError::Database(Box::new(err)))?
}

fn migrate_blocking<S: MigrationSource<Pg>>(
    mut conn: Wrapped,
    source: S,
) -> Result<Vec<String>, SetupError> {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .map_err(SetupError::from)?;
    let applied = migrate_locked(&mut conn, source);
    // Release now rather than when the server notices the closed connection.
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn);
    let applied = applied?;
    unlocked.map_err(SetupError::from)?;
    Ok(applied)
}

fn migrate_locked<S: MigrationSource<Pg>>(
    conn: &mut Wrapped,
    source: S,
) -> Result<Vec<String>, SetupError> {
    let pending = pending_versions(conn, &source)?;
    verify::check(
        &columns(conn)?,
        &Stage::BeforeMigrations { pending: &pending },
    )?;

    // diesel_migrations tells a failed migration by the database's message alone; the detail
    // (often the actual cause) is caught on its way past.
    let last_error = Arc::new(Mutex::new(None));
    conn.set_instrumentation(catch_detail(last_error.clone()));
    let applied = conn
        .run_pending_migrations(source)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|error| {
            let detail = last_error.lock().ok().and_then(|mut last| last.take());
            SetupError::Database(Box::new(MigrationFailed { error, detail }))
        });
    conn.set_instrumentation(None::<Box<dyn Instrumentation>>);
    let applied = applied?;

    verify::check(&columns(conn)?, &Stage::Complete)?;
    Ok(applied)
}

/// The versions of `source` not yet recorded as applied. Read without diesel_migrations, which
/// would create its bookkeeping table first, even in a database about to be refused.
fn pending_versions<S: MigrationSource<Pg>>(
    conn: &mut Wrapped,
    source: &S,
) -> Result<HashSet<String>, SetupError> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }

    let mut pending: HashSet<String> = source
        .migrations()
        .map_err(SetupError::Database)?
        .iter()
        .map(|migration| migration.name().version().to_string())
        .collect();
    let recorded =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists")
            .get_result::<Exists>(conn)
            .map_err(SetupError::from)?;
    if recorded.exists {
        let applied = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)
            .map_err(SetupError::from)?;
        for row in applied {
            pending.remove(&row.version);
        }
    }
    Ok(pending)
}

fn columns(conn: &mut Wrapped) -> Result<Vec<Found>, SetupError> {
    verify::columns_query()
        .load::<Found>(conn)
        .map_err(SetupError::from)
}

/// Keeps the detail and hint of the last database error the connection saw.
fn catch_detail(last: Arc<Mutex<Option<String>>>) -> impl Instrumentation {
    move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::FinishQuery {
            error: Some(diesel::result::Error::DatabaseError(_, info)),
            ..
        } = event
            && let Ok(mut last) = last.lock()
        {
            *last = Some(DetailAndHint(info.as_ref()).to_string());
        }
    }
}

/// A migration that failed, with the database's detail and hint.
#[derive(Debug)]
struct MigrationFailed {
    error: BoxError,
    detail: Option<String>,
}

impl fmt::Display for MigrationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.error, self.detail.as_deref().unwrap_or(""))
    }
}

impl std::error::Error for MigrationFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.error.as_ref())
    }
}
