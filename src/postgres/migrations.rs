//! The embedded migrations: the same files `diesel migration run` applies in production.

use diesel::RunQueryDsl as _;
use diesel::sql_types::BigInt;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

use super::error::SetupError;

/// The migrations compiled into the crate, in `migrations/`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The specification's schema: the first migration's `up.sql`, idempotent (every statement is
/// `IF NOT EXISTS`).
pub const SCHEMA_SQL: &str =
    include_str!("../../migrations/2026-11-27-000000_create_authingo/up.sql");

/// Advisory-lock key that serialises migration runs across processes ("authingo" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6175_7468_696e_676f;

/// Applies the pending embedded migrations to the database at `database_url` and returns the
/// versions applied (empty when it was up to date).
///
/// Runs on a connection of its own, under a PostgreSQL advisory lock, so that processes starting
/// together apply each migration once. A database whose tables were made by hand from
/// [`SCHEMA_SQL`] (as the Go library's `ApplySchema` does) is adopted with its rows.
///
/// # Errors
/// [`SetupError::Unavailable`] when the database cannot be reached, [`SetupError::Database`] when a
/// migration fails (that migration's changes are rolled back).
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, SetupError> {
    let url = database_url.to_owned();
    // diesel_migrations is synchronous: run it on the blocking pool over a wrapped async
    // connection, never on an async worker.
    tokio::task::spawn_blocking(move || migrate_blocking(&url))
        .await
        .map_err(|err| SetupError::Database(Box::new(err)))?
}

fn migrate_blocking(url: &str) -> Result<Vec<String>, SetupError> {
    use diesel::Connection as _;

    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url)
        .map_err(|err| SetupError::Unavailable(Box::new(err)))?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .map_err(SetupError::from)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(SetupError::Database);
    // Release now rather than when the server notices the closed connection.
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn);
    let applied = applied?;
    unlocked.map_err(SetupError::from)?;
    Ok(applied)
}
