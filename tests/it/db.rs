//! Each test gets a database of its own, cloned from a migrated template.
//!
//! The template is named after a hash of the migrations, so a changed migration gets a new one.
//! It is built once (under an advisory lock, so parallel test processes build it once between
//! them); each test's database is dropped by [`TestDb`]'s `Drop`, and databases left by test
//! processes that died are swept when a process first builds one.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::process;
use std::sync::atomic::{AtomicU32, Ordering};

use authingo::postgres::{self, PgStore, PoolConfig};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const PREFIX: &str = "authingo_t";
const TEMPLATE_LOCK_KEY: i64 = 0x6175_7468_5f74_706c;

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The server URL the tests use: `DATABASE_URL`, or the local default.
pub(crate) fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database name replaced by `name`.
pub(crate) fn url_for(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A connection to the server's maintenance database, or a panic that says how to start one.
pub(crate) async fn admin() -> AsyncPgConnection {
    let url = server_url();
    match AsyncPgConnection::establish(&url).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "cannot reach PostgreSQL at {url}: {err}\n\
             The tests need a running server. Start the local one with\n  \
             pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             or point DATABASE_URL at a server where the user may create databases."
        ),
    }
}

/// Runs one statement on `conn`, panicking with the statement on failure.
pub(crate) async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    if let Err(err) = diesel::sql_query(sql).execute(conn).await {
        panic!("{sql}: {err}");
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

fn migrations_hash() -> u64 {
    let mut hasher = DefaultHasher::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<_> = walk(std::path::Path::new(dir));
    files.sort();
    for path in files {
        // Relative, so that every checkout of the same migrations shares one template.
        path.strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .hash(&mut hasher);
        std::fs::read(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .hash(&mut hasher);
    }
    hasher.finish()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    entries
        .flat_map(|entry| {
            let path = entry.expect("readable migrations folder").path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("{PREFIX}pl_{:016x}", migrations_hash());
            let mut conn = admin().await;
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(TEMPLATE_LOCK_KEY)
                .execute(&mut conn)
                .await
                .expect("advisory lock");
            sweep_leftovers(&mut conn).await;
            let exists = diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
                .bind::<Text, _>(&name)
                .load::<Name>(&mut conn)
                .await
                .expect("pg_database")
                .len()
                == 1;
            if !exists {
                // Built under another name and renamed, so a half-built template is never used.
                let building = format!("{name}_building");
                exec(&mut conn, &format!("DROP DATABASE IF EXISTS {building}")).await;
                exec(&mut conn, &format!("CREATE DATABASE {building}")).await;
                postgres::run_migrations(&url_for(&server_url(), &building))
                    .await
                    .expect("migrating the template database");
                exec(
                    &mut conn,
                    &format!("ALTER DATABASE {building} RENAME TO {name}"),
                )
                .await;
            }
            diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(TEMPLATE_LOCK_KEY)
                .execute(&mut conn)
                .await
                .expect("advisory unlock");
            name
        })
        .await
        .clone()
}

/// Drops test databases whose process is gone (named `authingo_t_<pid>_<n>`).
async fn sweep_leftovers(conn: &mut AsyncPgConnection) {
    let names = diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind::<Text, _>(format!("{PREFIX}\\_%"))
        .load::<Name>(conn)
        .await
        .expect("pg_database");
    for Name { datname } in names {
        let pid = datname
            .strip_prefix(&format!("{PREFIX}_"))
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            if !alive {
                exec(
                    conn,
                    &format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"),
                )
                .await;
            }
        }
    }
}

/// A migrated database of this test's own, dropped when the value goes.
#[derive(Debug)]
pub(crate) struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// A fresh database with the crate's migrations applied.
    pub(crate) async fn new() -> Self {
        let template = template().await;
        Self::create(Some(&template)).await
    }

    /// A fresh, empty database (no tables).
    pub(crate) async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!(
            "{PREFIX}_{}_{}",
            process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = admin().await;
        let sql = match template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        exec(&mut conn, &sql).await;
        let url = url_for(&server_url(), &name);
        Self { name, url }
    }

    /// The database's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A store on a small pool over this database.
    pub(crate) async fn store(&self) -> PgStore {
        self.store_with(PoolConfig::default().max_size(4)).await
    }

    /// A store on a pool with `config` over this database.
    pub(crate) async fn store_with(&self, config: PoolConfig) -> PgStore {
        PgStore::new(
            postgres::connect_with(&self.url, &config)
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
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with a
        // runtime of its own. FORCE ends the connections the test's pool may still hold.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut conn = admin().await;
                exec(
                    &mut conn,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("dropping the test database failed");
        }
    }
}
