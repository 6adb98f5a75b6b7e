//! Each test gets a database of its own, cloned from a migrated template and dropped at the end:
//! `authingo-test-db` (crates/test-db, whose docs tell how templates are named and leftovers
//! swept) with the crate's own migrations, stores and connections on top.

use authingo::postgres::{self, PgStore, PoolConfig};
use authingo_test_db::{MigrateFuture, PgBouncer, PoolMode, Template, TestDatabase};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio_postgres::{Client, SimpleQueryMessage};

static TEMPLATE: Template =
    Template::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"), migrate);

pub(crate) fn migrate(url: String) -> MigrateFuture {
    Box::pin(async move {
        postgres::run_migrations(&url).await?;
        Ok(())
    })
}

/// The server URL the tests use: `DATABASE_URL`, or the local default.
pub(crate) fn server_url() -> String {
    authingo_test_db::server_url()
}

/// A connection to the server's maintenance database, or a panic that says how to start one.
pub(crate) async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::try_from(authingo_test_db::admin().await)
        .await
        .expect("setting up the admin connection")
}

/// Runs one statement on `conn`, panicking with the statement on failure.
pub(crate) async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    if let Err(err) = diesel::sql_query(sql).execute(conn).await {
        panic!("{sql}: {err}");
    }
}

/// A migrated database of this test's own, dropped when the value goes; its stores connect
/// directly, or through a PgBouncer of its own ([`TestDb::through_pgbouncer`]).
#[derive(Debug)]
pub(crate) struct TestDb {
    /// Declared first, so it stops before the database is dropped.
    bouncer: Option<PgBouncer>,
    database: TestDatabase,
}

impl TestDb {
    /// A fresh database with the crate's migrations applied.
    pub(crate) async fn new() -> Self {
        Self {
            bouncer: None,
            database: TestDatabase::new(&TEMPLATE).await,
        }
    }

    /// A fresh, empty database (no tables).
    pub(crate) async fn empty() -> Self {
        Self {
            bouncer: None,
            database: TestDatabase::empty().await,
        }
    }

    /// As [`TestDb::new`], with a PgBouncer in `mode` in front of it: the stores it makes
    /// connect through PgBouncer, while [`url`](Self::url), [`conn`](Self::conn) and the counts
    /// of the checks still reach the database directly.
    pub(crate) async fn through_pgbouncer(mode: PoolMode) -> Self {
        Self::through_pgbouncer_with(mode, authingo_test_db::DEFAULT_POOL_SIZE).await
    }

    /// As [`TestDb::through_pgbouncer`], with at most `pool_size` server connections.
    pub(crate) async fn through_pgbouncer_with(mode: PoolMode, pool_size: u32) -> Self {
        Self {
            bouncer: Some(PgBouncer::start_with(mode, pool_size).await),
            database: TestDatabase::new(&TEMPLATE).await,
        }
    }

    /// The database's URL, direct to the server.
    pub(crate) fn url(&self) -> &str {
        self.database.url()
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        self.database.name()
    }

    /// The URL the stores connect to: through the PgBouncer if there is one.
    pub(crate) fn store_url(&self) -> String {
        match &self.bouncer {
            Some(bouncer) => bouncer.url_for(self.url()),
            None => self.url().to_owned(),
        }
    }

    /// The PgBouncer in front of the database, if any.
    pub(crate) fn bouncer(&self) -> Option<&PgBouncer> {
        self.bouncer.as_ref()
    }

    /// A store on a small pool over this database.
    pub(crate) async fn store(&self) -> PgStore {
        self.store_with(PoolConfig::default().max_size(4)).await
    }

    /// A store on a pool with `config` over this database.
    pub(crate) async fn store_with(&self, config: PoolConfig) -> PgStore {
        PgStore::new(
            postgres::connect_with(&self.store_url(), &config)
                .await
                .expect("connecting to the test database"),
        )
    }

    /// A store on a pool of one connection with a 250 ms checkout timeout (which bounds its first
    /// connection, TLS handshake included, too): a test that holds
    /// that connection makes the store unavailable.
    pub(crate) async fn one_connection_store(&self) -> PgStore {
        self.store_with(
            PoolConfig::default()
                .max_size(1)
                .connection_timeout(std::time::Duration::from_millis(250)),
        )
        .await
    }

    /// A plain connection to this database, for checking what was stored.
    pub(crate) async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(self.url())
            .await
            .expect("connecting to the test database")
    }
}

/// Checks that `db`'s stores went through its PgBouncer: with `* = host=…` PgBouncer registers
/// each database name a client asks for, so the test database appears in `SHOW DATABASES` only
/// if a client connected to it through PgBouncer.
pub(crate) async fn assert_served(db: &TestDb) {
    let bouncer = db.bouncer().expect("a database behind PgBouncer");
    let databases = show(&bouncer.admin().await.unwrap(), "DATABASES", "name").await;
    assert!(
        databases.iter().any(|name| name == db.name()),
        "{} never went through PgBouncer: {databases:?}",
        db.name()
    );
}

/// The column `column` of every row of PgBouncer's `SHOW {what}`.
async fn show(admin: &Client, what: &str, column: &str) -> Vec<String> {
    admin
        .simple_query(&format!("SHOW {what}"))
        .await
        .unwrap()
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(column).map(str::to_owned),
            _ => None,
        })
        .collect()
}
