//! Databases for authingo's tests and benchmarks, on a PostgreSQL server that may be shared.
//!
//! The server is `DATABASE_URL`, or [`DEFAULT_URL`]. Every test gets a database of its own
//! ([`TestDatabase`]), cloned from a migrated template ([`Template`]) and dropped when the value
//! goes. The crate does not depend on `authingo`, which dev-depends on it: the caller passes the
//! migrations folder (whose files name the template) and the step that migrates a database.
//! [`PgBouncer`] puts a private PgBouncer in front of the server, for tests through a pooler.
//! Fault tests get a server of their own instead: a [`Cluster`] (`initdb` and `pg_ctl` of the
//! installed server, in a temporary directory, on a free port), which they may stop, restart,
//! freeze, lock or make read-only; the shared server is never touched (see [`cluster`]).
//!
//! # Names
//!
//! - `authingo_tpl_<hash>`: a template. `<hash>` is the first 12 hex digits of a SHA-256 over
//!   the migrations' relative paths and contents, so every checkout of the same migrations
//!   shares one template, a changed migration gets a new one, and the name does not change with
//!   the Rust release (as `DefaultHasher`'s output may). Built once per server under an advisory
//!   lock, as `authingo_tpl_<hash>_building`, and renamed when complete. Never swept.
//! - `authingo_<kind>_<owner>_<label>`: a database made by a process ([`Owner::database_name`]):
//!   `t` for a test, `bench` for the benchmark. `<owner>` is 16 hex digits, a random id the
//!   process draws once.
//!
//! # Sweeping leftovers
//!
//! A process that dies (killed, aborted, a panic in `Drop`) leaves its databases behind. A
//! process id or a local `/proc` entry cannot tell whether their owner is gone: the owner may run
//! on another machine. So ownership lives on the server:
//!
//! 1. Before it names any database, a process opens one connection it keeps for its whole life,
//!    on a thread of its own ([`owner`]), and takes the session-level advisory lock
//!    `pg_advisory_lock(<owner>)` on it (drawing another id if that key is held).
//! 2. The server releases a session's advisory locks when the session ends: when the process
//!    exits or dies and its socket closes, or when its machine stops answering TCP keepalives.
//! 3. [`sweep_leftovers`] lists the `authingo_<kind>_<owner>_<label>` databases and, for each
//!    owner, tries `pg_try_advisory_lock(<owner>)` on its own session. That succeeds only if no
//!    other session holds the key, that is if the owner's session is gone; it then drops that
//!    owner's databases and unlocks. A live owner's key is held, so its databases are skipped,
//!    whichever machine it runs on.
//!
//! Two sweepers never drop the same owner's databases at once (one of them holds the key), and a
//! new process cannot adopt a dead owner's id while a sweeper holds it. A process never sweeps its
//! own databases: it skips its own id, and its owner session holds the key anyway (advisory
//! locks are re-entrant only within one session). Under `cargo test` the tests of a binary are
//! threads of one process, sharing one owner; under `cargo nextest run` each test is a process
//! with an owner of its own.
//!
//! The scheme trusts the owner session to live as long as its process: a server restart, or an
//! administrator ending sessions, makes the databases of still-running processes look abandoned.
//! `idle_session_timeout` is switched off on the owner session for that reason, and [`owner`]
//! fails once the session has ended rather than hand out more names.

pub mod cluster;
mod database;
mod owner;
mod pgbouncer;
mod server;
mod smtp;
mod template;
mod tls;
mod urls;

pub use cluster::{Cluster, HeldLock, StopMode, TlsClients};
pub use database::TestDatabase;
pub use owner::{Owner, owner, sweep_leftovers};
pub use pgbouncer::{DEFAULT_POOL_SIZE, INSTALL_HINT, PgBouncer, PoolMode};
pub use server::{admin, connect, create_database, drop_database};
pub use smtp::{Received, SMTP_INSTALL_HINT, SmtpServer};
pub use template::{Migrate, MigrateFuture, Template};
pub use tls::{ServerCert, TestCa};
pub use urls::{DEFAULT_URL, server_url, url_for, with_application_name};

/// Every database this crate names starts with this.
const PREFIX: &str = "authingo_";

/// The kind in templates' names (`authingo_tpl_<hash>`), which no owned database may use.
const TEMPLATE_KIND: &str = "tpl";

/// The error a migrate step may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong while making, finding or dropping databases.
///
/// Each message includes its cause's, since these errors mostly end in a panic message or a
/// bench's one-line report; the cause is kept as a field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL: {error}")]
    Url {
        /// Why it does not parse.
        error: url::ParseError,
    },
    /// The URL parses but has no place for a database name (`postgres:x`).
    #[error("{url} is not a PostgreSQL server URL (postgres://…)")]
    NotAServerUrl {
        /// The URL, password hidden.
        url: String,
    },
    /// The server could not be reached.
    #[error("cannot reach PostgreSQL at {url}: {error}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What the client said.
        error: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{sql}: {error}")]
    Query {
        /// The statement.
        sql: String,
        /// What the server or client said.
        error: tokio_postgres::Error,
    },
    /// The migrations folder could not be read.
    #[error("reading {}: {error}", path.display())]
    Migrations {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The caller's migrate step failed on the template being built.
    #[error("migrating {database}: {error}")]
    Migrate {
        /// The database being migrated.
        database: String,
        /// What the migrate step returned.
        error: BoxError,
    },
    /// The owner session's thread or runtime could not be started.
    #[error("starting the owner session's thread: {error}")]
    Thread {
        /// What the system said.
        error: std::io::Error,
    },
    /// This process's owner session ended: databases named now could be swept as abandoned.
    #[error("the owner session of this process has ended (server restarted or session killed)")]
    OwnerGone,
    /// This process's owner session is on another server than the one asked for.
    #[error("this process's owner session is on {owner}, not on {asked}")]
    OtherServer {
        /// The owner session's server, password hidden.
        owner: String,
        /// The server asked for, password hidden.
        asked: String,
    },
}
