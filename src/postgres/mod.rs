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

pub use error::SetupError;
pub use migrations::{MIGRATIONS, SCHEMA_SQL, run_migrations, run_migrations_from};
pub use pool::{PgPool, PoolConfig, connect, connect_with};
pub use setup::create_database_if_missing;
pub use store::{CLEANUP_BATCH_SIZE, DEFAULT_STATEMENT_TIMEOUT, PgStore};
pub use verify::SchemaProblem;
