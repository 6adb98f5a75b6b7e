//! The PostgreSQL store: [`PgStore`] on a bb8 pool of diesel-async connections, the embedded
//! migrations, the schema and the check of it, and what an application sharing the database
//! needs (the pool's settings, joins with the crate's tables).

mod conninfo;
mod copy;
mod error;
mod fixed;
mod joins;
mod migrations;
mod models;
mod observe;
mod pool;
mod prepared;
/// The tables the crate uses, as `diesel print-schema` writes them from the migrations, for the
/// application's own queries:
///
/// | table | a row is | columns |
/// |---|---|---|
/// | `users` | an account | `id` (`usr_` and 32 hex digits), `email` (trimmed, lower-cased, unique), `name`, `password_hash` (argon2id in PHC form; a Go database's bcrypt until its user signs in), `email_verified`, `created_at`, `updated_at` |
/// | `sessions` | a signed-in client | `id` (`ses_` and 32 hex digits), `user_id` (→ `users.id`, `ON DELETE CASCADE`), `token` and `refresh_token` (SHA-256 digests of the client's tokens, in hex, never the tokens), `expires_at` and `refresh_expires_at` (their expiries), `created_at` (the sign-in), `previous_refresh_token`, `previous_token`, `rotated_at` and `rotation_secret` (the last refresh: the digests it replaced, when, and its secret, forgotten after the grace window), `refresh_family` (digest of the family every refresh token of the session shares), `absolute_expires_at` (no refresh goes past it), `persistent` ("remember me"), `user_agent` and `ip_address` (the client at sign-in) |
/// | `one_time_tokens` | a link sent by mail | `token` (SHA-256 digest), `user_id` (→ `users.id`, `ON DELETE CASCADE`), `purpose` (`verify_email`, `reset_password`, `change_email`, `cancel_email_change`), `email` (the address it was sent for), `expires_at`, `created_at` |
/// | `rate_limits` | a rate-limit window | `key` (a route and a client address, or a route and an email digest), `hits`, `window_ends_at` |
/// | `sign_in_failures` | consecutive failed sign-ins of an email's untrusted clients | `email_digest` (SHA-256 of the normalised address), `failures`, `last_failed_at`, `forget_at` (when the count is forgotten: a day after its last failure, or the end of its lock) |
/// | `sign_in_device_failures` | consecutive failed sign-ins of one trusted device | `device_digest` (SHA-256 of the device cookie's nonce, never the cookie), `failures`, `last_failed_at`, `forget_at` (a day after its last failure) |
///
/// Read them as you like, and join them with your tables through
/// [`allow_tables_to_appear_with_authingo!`](crate::allow_tables_to_appear_with_authingo) and
/// `diesel::joinable!`. Write them only through [`Auth`](crate::Auth) and the
/// [`Store`](crate::Store), which keep the invariants above: a row written around them (an email
/// not lower-cased, a raw token) is not found. Columns of your own added to `users` must be
/// nullable or have a default ([`PgStore::verify_schema`] says so otherwise).
#[expect(
    missing_docs,
    reason = "the tables are written by `diesel print-schema`"
)]
pub mod schema;
mod schema_problem;
mod setup;
mod store;
mod tls;
mod tls_error;
mod trust;
mod verify;

/// The pool crate [`PgPool`] is built on (bb8 0.9), for an application that builds or shares the
/// pool without naming the crate itself.
pub use bb8;
pub use copy::{CopyMigrationsError, copy_migrations, missing_migrations};
#[doc(hidden)]
pub use diesel as __diesel;
/// The connection crate [`PgPool`] holds (diesel-async 0.10): `AsyncPgConnection`, and
/// `RunQueryDsl` for an application's own queries on the shared pool.
pub use diesel_async;
pub use error::SetupError;
pub use migrations::{MIGRATIONS, SCHEMA_SQL, run_migrations, run_migrations_from};
pub use pool::{
    PgManager, PgPool, PoolConfig, connect, connect_with, establish, manager, manager_config,
    pool_builder,
};
pub use schema_problem::SchemaProblem;
pub use setup::create_database_if_missing;
pub use store::{DEFAULT_STATEMENT_TIMEOUT, PgStore};
pub use tls_error::TlsError;
