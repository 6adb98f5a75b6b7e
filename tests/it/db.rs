//! Each test gets a database of its own, cloned from a migrated template and dropped at the end:
//! `authingo-test-db` (crates/test-db, whose docs tell how templates are named and leftovers
//! swept) with the crate's own migrations, stores and connections on top.

use authingo::postgres::{self, PgStore, PoolConfig};
use authingo_test_db::{MigrateFuture, Template, TestDatabase};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

static TEMPLATE: Template =
    Template::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"), migrate);

fn migrate(url: String) -> MigrateFuture {
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

/// A migrated database of this test's own, dropped when the value goes.
#[derive(Debug)]
pub(crate) struct TestDb(TestDatabase);

impl TestDb {
    /// A fresh database with the crate's migrations applied.
    pub(crate) async fn new() -> Self {
        Self(TestDatabase::new(&TEMPLATE).await)
    }

    /// A fresh, empty database (no tables).
    pub(crate) async fn empty() -> Self {
        Self(TestDatabase::empty().await)
    }

    /// The database's URL.
    pub(crate) fn url(&self) -> &str {
        self.0.url()
    }

    /// A store on a small pool over this database.
    pub(crate) async fn store(&self) -> PgStore {
        self.store_with(PoolConfig::default().max_size(4)).await
    }

    /// A store on a pool with `config` over this database.
    pub(crate) async fn store_with(&self, config: PoolConfig) -> PgStore {
        PgStore::new(
            postgres::connect_with(self.url(), &config)
                .await
                .expect("connecting to the test database"),
        )
    }

    /// A store on a pool of one connection with a 100 ms checkout timeout: a test that holds
    /// that connection makes the store unavailable.
    pub(crate) async fn one_connection_store(&self) -> PgStore {
        self.store_with(
            PoolConfig::default()
                .max_size(1)
                .connection_timeout(std::time::Duration::from_millis(100)),
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
