//! The bench's own databases: created on the server, loaded with set-based SQL, cloned for each
//! section and dropped at the end (also after an error or Ctrl-C). They are
//! `authingo_bench_<owner>_<role>` in `authingo-test-db`'s scheme, so that a killed run's
//! leftovers are dropped by the next run, or by the tests, and a live run's never are.

use std::sync::Mutex;

use authingo_test_db as test_db;
use tokio_postgres::Client;

use super::Result;
use super::workload::Dataset;

/// A fixed argon2id PHC string of the real length: user rows as wide as real ones.
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hzYWx0YmVuY2hzYWx0$\
                             YmVuY2hoYXNoYmVuY2hoYXNoYmVuY2hoYXNoYmVuY2g";

/// Opens one tokio-postgres connection to `url` and drives it on the runtime.
pub(crate) async fn connect(url: &str) -> Result<Client> {
    test_db::connect(url)
        .await
        .map_err(|err| format!("{err} (DATABASE_URL / --database-url)").into())
}

/// `url` with `application_name` set, so that each side's connections can be told apart in
/// `pg_stat_activity`.
///
/// # Panics
/// When `url` is not a URL: it is one [`Databases::url`] made.
pub(crate) fn with_application_name(url: &str, name: &str) -> String {
    test_db::with_application_name(url, name)
        .unwrap_or_else(|err| panic!("{err}: not a URL that Databases::url made"))
}

/// The databases this process made, so that they can all be dropped whatever happens.
#[derive(Debug)]
pub(crate) struct Databases {
    server_url: String,
    made: Mutex<Vec<String>>,
}

impl Databases {
    /// The databases of `server_url`, which gets `sslmode=disable` unless it names a mode: the
    /// raw tokio-postgres baseline and the peers' sqlx speak no TLS here, so the store must not
    /// either for a ratio to compare one thing.
    pub(crate) fn new(server_url: &str) -> Self {
        Self {
            server_url: plain_text(server_url),
            made: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The URL of `name`, a database [`Databases::create`] made.
    ///
    /// # Panics
    /// When the server URL is not a URL, which `create` reports as an error first.
    pub(crate) fn url(&self, name: &str) -> String {
        test_db::url_for(&self.server_url, name)
            .unwrap_or_else(|err| panic!("{err}: Databases::create checks the URL first"))
    }

    /// Creates `authingo_bench_<owner>_<role>`, empty or as a copy of `template`, and returns
    /// its name.
    pub(crate) async fn create(&self, role: &str, template: Option<&str>) -> Result<String> {
        let name = test_db::owner(&self.server_url)
            .await?
            .database_name("bench", role);
        // Checked here, so that `url` can count on it.
        test_db::url_for(&self.server_url, &name)?;
        let admin = connect(&self.server_url).await?;
        let sql = match template {
            // A file copy (one checkpoint) beats logging a gigabyte of pages into the WAL.
            Some(template) if server_version_num(&admin).await? >= 150_000 => {
                format!("CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
            }
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        self.lock().push(name.clone());
        admin
            .batch_execute(&sql)
            .await
            .map_err(|err| format!("{sql}: {err}"))?;
        Ok(name)
    }

    /// Drops `name`, ending any connection still on it.
    pub(crate) async fn drop_database(&self, name: &str) -> Result<()> {
        let admin = connect(&self.server_url).await?;
        test_db::drop_database(&admin, name).await?;
        self.lock().retain(|made| made != name);
        Ok(())
    }

    /// Drops every database this process made; reports failures rather than stopping at one.
    pub(crate) async fn drop_all(&self) {
        let names = self.lock().clone();
        for name in names {
            if let Err(err) = self.drop_database(&name).await {
                eprintln!("could not drop database {name}: {err}");
            }
        }
    }

    /// Drops the databases of bench runs and test processes that are gone (killed).
    pub(crate) async fn sweep_leftovers(&self) -> Result<()> {
        test_db::sweep_leftovers(&self.server_url).await?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn server_version_num(client: &Client) -> Result<i32> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(row.try_get(0)?)
}

/// Migrates the database at `url` with the crate's own migrations and fills it with `data`
/// (see `workload.rs` for the layout), then vacuums and analyzes it.
pub(crate) async fn load(url: &str, data: Dataset) -> Result<()> {
    authingo::postgres::run_migrations(url).await?;
    let client = connect(url).await?;
    client
        .batch_execute("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'")
        .await?;
    // Indexes that back no constraint are dropped for the load and rebuilt from their own
    // definitions afterwards: twice as fast as inserting a million rows into each.
    let secondary = client
        .query(
            "SELECT c.relname::text, pg_get_indexdef(x.indexrelid) \
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid \
             WHERE x.indrelid = 'sessions'::regclass \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)",
            &[],
        )
        .await?;
    let mut definitions = Vec::new();
    for row in secondary {
        let name: String = row.try_get(0)?;
        definitions.push(row.try_get::<_, String>(1)?);
        client
            .batch_execute(&format!("DROP INDEX \"{name}\""))
            .await?;
    }
    let users = i64::try_from(data.users)?;
    let sessions = i64::try_from(data.sessions)?;
    client
        .execute(
            "INSERT INTO users (id, email, name, password_hash, email_verified, created_at, \
                                updated_at) \
             SELECT 'usr_' || lpad(to_hex(i), 32, '0'), 'user' || i || '@bench.example', \
                    'User ' || i, $2, false, now(), now() \
             FROM generate_series(1, $1::bigint) AS i",
            &[&users, &PASSWORD_HASH],
        )
        .await?;
    client
        .execute(
            // Odd i live (access valid for two hours and more, refresh for 30 days), even i dead
            // (both expiries past), interleaved as sessions of mixed lifetimes end up on disk.
            "INSERT INTO sessions (id, user_id, token, refresh_token, expires_at, \
                                   refresh_expires_at, created_at) \
             SELECT 'ses_' || lpad(to_hex(i), 32, '0'), \
                    'usr_' || lpad(to_hex(1 + i % $2::bigint), 32, '0'), \
                    encode(sha256(('tok' || i)::bytea), 'hex'), \
                    encode(sha256(('ref' || i)::bytea), 'hex'), \
                    CASE WHEN i % 2 = 1 \
                         THEN now() + interval '2 hours' + make_interval(secs => i % 3600) \
                         ELSE now() - interval '31 days' - make_interval(secs => i % 86400) END, \
                    CASE WHEN i % 2 = 1 \
                         THEN now() + interval '30 days' \
                         ELSE now() - interval '1 hour' - make_interval(secs => i % 86400) END, \
                    now() - interval '1 day' \
             FROM generate_series(1, $1::bigint) AS i",
            &[&sessions, &users],
        )
        .await?;
    for definition in definitions {
        client.batch_execute(&definition).await?;
    }
    // Sets hint bits and the visibility map once here, not in the middle of a measurement.
    client
        .batch_execute("VACUUM (ANALYZE) users, sessions")
        .await?;
    Ok(())
}

/// Inserts the deletable sessions `del{lo}` .. `del{hi - 1}` (live, tokens known to the
/// workload) for `delete_session` to delete.
pub(crate) async fn insert_deletable(client: &Client, lo: u64, hi: u64, users: u64) -> Result<()> {
    if hi <= lo {
        return Ok(());
    }
    let (lo, hi, users) = (
        i64::try_from(lo)?,
        i64::try_from(hi)?,
        i64::try_from(users)?,
    );
    client
        .execute(
            "INSERT INTO sessions (id, user_id, token, refresh_token, expires_at, \
                                   refresh_expires_at, created_at) \
             SELECT 'ses_d' || lpad(to_hex(k), 31, '0'), \
                    'usr_' || lpad(to_hex(1 + k % $3::bigint), 32, '0'), \
                    encode(sha256(('del' || k)::bytea), 'hex'), \
                    encode(sha256(('delr' || k)::bytea), 'hex'), \
                    now() + interval '2 hours', now() + interval '30 days', now() \
             FROM generate_series($1::bigint, $2::bigint - 1) AS k",
            &[&lo, &hi, &users],
        )
        .await?;
    Ok(())
}

/// `url` with `sslmode=disable` added when it names no mode (left as it is when it is no URL:
/// connecting reports that).
fn plain_text(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.query_pairs().any(|(key, _)| key == "sslmode") => {
            parsed.query_pairs_mut().append_pair("sslmode", "disable");
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
