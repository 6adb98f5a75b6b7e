//! The PostgreSQL store: [`PgStore`] on a bb8 pool of diesel-async connections, the embedded
//! migrations and the schema.

mod error;
mod migrations;
mod models;
mod pool;
mod prepared;
#[expect(missing_docs, reason = "written by `diesel print-schema`")]
pub mod schema;
mod setup;
mod store;
mod verify;

/// The pool crate [`PgPool`] is built on (bb8 0.9), for an application that builds or shares the
/// pool without naming the crate itself.
pub use bb8;
/// The connection crate [`PgPool`] holds (diesel-async 0.9): `AsyncPgConnection`, and
/// `RunQueryDsl` for an application's own queries on the shared pool.
pub use diesel_async;
pub use error::SetupError;
pub use migrations::{MIGRATIONS, SCHEMA_SQL, run_migrations, run_migrations_from};
pub use pool::{
    PgManager, PgPool, PoolConfig, connect, connect_with, manager, manager_config, pool_builder,
};
pub use setup::create_database_if_missing;
pub use store::{CLEANUP_BATCH_SIZE, DEFAULT_STATEMENT_TIMEOUT, PgStore};
pub use verify::SchemaProblem;
