//! A database of one test's own, dropped when the test is done with it.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::Client;

use crate::server::{admin, create_database, drop_database};
use crate::urls::{server_url, url_for};
use crate::{Template, owner};

/// Numbers this process's test databases.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A database of this test's own on [`server_url`], `authingo_t_<owner>_<n>`, dropped (with any
/// connection still on it) when the value goes.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// A fresh database cloned from `template`, building the template first if need be.
    ///
    /// # Panics
    /// When the server cannot be reached (saying how to start it), or the template or the
    /// database cannot be made.
    pub async fn new(template: &Template) -> Self {
        let admin = admin().await;
        let template = template
            .name()
            .await
            .unwrap_or_else(|err| panic!("building the template database: {err}"));
        Self::create(&admin, Some(template)).await
    }

    /// A fresh, empty database (no tables).
    ///
    /// # Panics
    /// As [`TestDatabase::new`].
    pub async fn empty() -> Self {
        let admin = admin().await;
        Self::create(&admin, None).await
    }

    async fn create(admin: &Client, template: Option<&str>) -> Self {
        let server = server_url();
        let owner = owner(&server)
            .await
            .unwrap_or_else(|err| panic!("setting up this process's owner session: {err}"));
        let name = owner.database_name("t", &COUNTER.fetch_add(1, Ordering::Relaxed).to_string());
        let url = url_for(&server, &name).unwrap_or_else(|err| panic!("DATABASE_URL: {err}"));
        create_database(admin, &name, template)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        Self { name, url }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL: [`server_url`] with the database name replaced.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with a
        // runtime of its own. FORCE ends the connections the test's pools may still hold.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|err| panic!("a runtime to drop {name}: {err}"));
            runtime.block_on(async {
                if let Err(err) = drop_database(&admin().await, &name).await {
                    panic!("{err}");
                }
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("dropping the test database failed");
        }
    }
}
