//! A private PostgreSQL cluster for fault tests: `initdb` and `pg_ctl` of the installed server in
//! a temporary directory, on a port of its own, to stop, freeze, lock or make read-only without
//! touching the shared server.
//!
//! - **Binaries.** `pg_config --bindir`, else the newest `/usr/lib/postgresql/<version>/bin`;
//!   `AUTHINGO_PG_BINDIR` overrides both. A missing one fails with the command that installs it.
//! - **User.** `initdb` refuses to run as root, and tests often do: then every server binary
//!   runs as the `postgres` OS user (which the Debian package creates), and the directory is
//!   handed to it. Otherwise they run as the current user.
//! - **Where.** `<temp>/authingo-clusters/<pid>-<n>/`: the data directory `data/`, the server's
//!   log `log` and its Unix socket. It listens on 127.0.0.1 at a free port below the ephemeral
//!   range (so that no client socket takes it while the server is stopped), trust
//!   authentication, user `postgres`. Nothing is synced to disk (`fsync = off`): a commit
//!   survives the server's crash (`immediate` stop, `SIGKILL`), not the machine's.
//! - **Lifetime.** Dropping a [`Cluster`] stops it (`immediate`, after a thaw) and removes the
//!   directory, during a panic too. A process that dies without dropping it leaves the directory
//!   named after its pid: the next cluster made on the machine stops and removes it once that
//!   process is gone.
//!
//! A [`Cluster`] holds paths and a port, never a connection, so one may outlive the runtime of
//! the test that made it ([`Cluster::shared`]). Each operation opens the connections it needs on
//! the caller's runtime.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_postgres::Client;

use crate::Migrate;
use crate::pgbouncer::system_user;
use crate::server::{connect, create_database, execute, query_value};
use crate::tls::{ServerCert, write_server_files};
use crate::urls::url_for;

/// Ports are drawn from here: below Linux's ephemeral range (32768-60999), which clients draw
/// their own ports from.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Attempts at starting a new cluster on a free port before giving up.
const PORT_ATTEMPTS: usize = 8;

/// The template every [`Cluster::migrated_database`] is cloned from.
const TEMPLATE: &str = "authingo_template";

/// Numbers this process's clusters and their databases.
static CLUSTERS: AtomicU64 = AtomicU64::new(0);
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The cluster [`Cluster::shared`] hands out while some test still holds it.
static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// How the server stops: `pg_ctl stop -m <mode>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Sessions are told (`57P01 terminating connection due to administrator command`) and
    /// ended, then the server shuts down cleanly.
    Fast,
    /// Every server process quits at once, as after a crash; the next start recovers.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Immediate => "immediate",
        }
    }
}

/// Which clients a cluster with TLS ([`Cluster::with_tls`]) lets in over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsClients {
    /// TLS and plain text alike.
    Optional,
    /// TLS only (`hostssl` in `pg_hba.conf`): a plain-text connection is refused with "no
    /// pg_hba.conf entry … no encryption". The harness itself reaches such a cluster through
    /// its Unix socket.
    Required,
}

/// A running PostgreSQL cluster of this test's own; see the [module docs](self).
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    tls_required: bool,
    port: AtomicU16,
    frozen: AtomicBool,
    template: OnceCell<()>,
}

impl Cluster {
    /// Makes (`initdb`) and starts a new cluster.
    ///
    /// # Panics
    /// When a binary or the `postgres` user is missing (with the command that installs it), or
    /// when the cluster cannot be made or started (with the server's log).
    pub async fn new() -> Self {
        tokio::task::spawn_blocking(|| Self::new_blocking(None))
            .await
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
    }

    /// Makes and starts a new cluster with `ssl = on`, serving `cert` (made with a
    /// [`TestCa`](crate::TestCa)), and letting in `clients`.
    ///
    /// # Panics
    /// As [`Cluster::new`].
    pub async fn with_tls(cert: &ServerCert, clients: TlsClients) -> Self {
        let cert = cert.clone();
        tokio::task::spawn_blocking(move || Self::new_blocking(Some((cert, clients))))
            .await
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
    }

    /// A cluster shared by the tests of this process that run at the same time, made when none
    /// is alive and removed when the last of them drops it. For tests that only touch databases
    /// of their own ([`migrated_database`](Self::migrated_database)): never stop, freeze or
    /// reconfigure a shared cluster.
    ///
    /// # Panics
    /// As [`Cluster::new`].
    pub async fn shared() -> Arc<Self> {
        if let Some(cluster) = lock(&SHARED).upgrade() {
            return cluster;
        }
        let made = Arc::new(Self::new().await);
        let mut shared = lock(&SHARED);
        // Another test may have made one meanwhile: use it, and drop this one.
        if let Some(cluster) = shared.upgrade() {
            return cluster;
        }
        *shared = Arc::downgrade(&made);
        made
    }

    fn new_blocking(tls: Option<(ServerCert, TlsClients)>) -> Self {
        let tools = tools();
        sweep_dead_clusters(tools);
        let base = std::env::temp_dir().join("authingo-clusters");
        create_dir(&base, 0o755, None);
        let root = base.join(format!(
            "{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        create_dir(&root, 0o700, tools.run_as);
        let cluster = Self {
            data: root.join("data"),
            root,
            tls_required: matches!(tls, Some((_, TlsClients::Required))),
            port: AtomicU16::new(0),
            frozen: AtomicBool::new(false),
            template: OnceCell::new(),
        };
        // From here on, a panic drops `cluster`, which removes the directory.
        let initdb = tools
            .command("initdb", &cluster.root)
            .arg("--pgdata")
            .arg(&cluster.data)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .output();
        check("initdb", initdb);
        cluster.append_config(&format!(
            "listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\n\
             shared_buffers = 16MB\nmax_connections = 100\nautovacuum = off\n",
            cluster.root.display()
        ));
        if let Some((cert, clients)) = &tls {
            write_server_files(&cluster.data, cert, tools.run_as);
            cluster.append_config(
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            );
            if *clients == TlsClients::Required {
                let hba = cluster.data.join("pg_hba.conf");
                std::fs::write(
                    &hba,
                    "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
                )
                .unwrap_or_else(|err| panic!("writing {}: {err}", hba.display()));
            }
        }
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            cluster.append_config(&format!("port = {port}\n"));
            cluster.port.store(port, Ordering::SeqCst);
            match cluster.started(cluster.start_command().output()) {
                Ok(()) => return cluster,
                // Taken by another process between the check and the start: draw again.
                Err(log) if attempt < PORT_ATTEMPTS && log.contains("could not bind") => {}
                Err(log) => panic!("starting the private cluster failed:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    /// The URL of `database` on this cluster: `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        let server = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port());
        url_for(&server, database).unwrap_or_else(|err| panic!("{err}"))
    }

    /// A connection to `database`, driven on the caller's runtime, at
    /// [`harness_url`](Self::harness_url).
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn client(&self, database: &str) -> Client {
        connect(&self.harness_url(database))
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// How the harness reaches `database`: [`url`](Self::url), or the Unix socket when the
    /// cluster requires TLS (the harness speaks plain text, and its migrations must not depend
    /// on the TLS under test).
    pub fn harness_url(&self, database: &str) -> String {
        if !self.tls_required {
            return self.url(database);
        }
        let quote = |text: &str| text.replace('\\', "\\\\").replace('\'', "\\'");
        format!(
            "host='{}' port={} user=postgres dbname='{}'",
            quote(&self.root.display().to_string()),
            self.port(),
            quote(database)
        )
    }

    /// A new database with `migrate` applied, and its name. The first call on a cluster builds
    /// a migrated template; every database is a copy of it.
    ///
    /// # Panics
    /// When the server refuses, or `migrate` fails.
    pub async fn migrated_database(&self, migrate: Migrate) -> String {
        self.template
            .get_or_init(|| async {
                let admin = self.client("postgres").await;
                create_database(&admin, TEMPLATE, None)
                    .await
                    .unwrap_or_else(|err| panic!("{err}"));
                if let Err(err) = migrate(self.harness_url(TEMPLATE)).await {
                    panic!("migrating the private cluster's template: {err}");
                }
            })
            .await;
        let name = format!("fault_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        let admin = self.client("postgres").await;
        create_database(&admin, &name, Some(TEMPLATE))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        name
    }

    /// Stops the server (`pg_ctl stop -m <mode>`, waiting until it is down): connections are
    /// refused until [`start`](Self::start).
    ///
    /// # Panics
    /// When `pg_ctl` fails (the server was not running, say).
    pub async fn stop(&self, mode: StopMode) {
        let mut command = tools().command("pg_ctl", &self.root);
        command
            .args(["stop", "--wait", "--timeout=60", "--silent", "--mode"])
            .arg(mode.as_arg())
            .arg("--pgdata")
            .arg(&self.data);
        check("pg_ctl stop", run(command).await);
    }

    /// Starts the stopped server again on the same port, waiting until it accepts connections.
    ///
    /// # Panics
    /// When it does not start (with its log).
    pub async fn start(&self) {
        let output = run(self.start_command()).await;
        if let Err(log) = self.started(output) {
            panic!("restarting the private cluster failed:\n{log}");
        }
    }

    /// [`stop`](Self::stop) with `mode`, then [`start`](Self::start).
    pub async fn restart(&self, mode: StopMode) {
        self.stop(mode).await;
        self.start().await;
    }

    /// Ends every session on `database` but the caller's (`pg_terminate_backend`); returns how
    /// many it ended.
    pub async fn terminate_backends(&self, database: &str) -> i64 {
        let admin = self.client("postgres").await;
        query_value(
            &admin,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Makes every transaction of the cluster read-only, or writable again
    /// (`ALTER SYSTEM SET default_transaction_read_only` and a reload, as when a primary is
    /// demoted): open sessions too, from their next statement. Returns once a session opened
    /// before the change sees it.
    pub async fn set_read_only(&self, read_only: bool) {
        let admin = self.client("postgres").await;
        let value = if read_only { "on" } else { "off" };
        for sql in [
            format!("ALTER SYSTEM SET default_transaction_read_only = {value}"),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            execute(&admin, &sql)
                .await
                .unwrap_or_else(|err| panic!("{err}"));
        }
        // An existing session applies a reload before its next statement once the postmaster
        // has signalled it; this one was open before the reload, as the pool's are.
        for _ in 0..500 {
            let seen: String = query_value(
                &admin,
                "SELECT current_setting($1)",
                &[&"default_transaction_read_only"],
            )
            .await
            .unwrap_or_else(|err| panic!("{err}"));
            if seen == value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("default_transaction_read_only is not {value} 5 s after the reload");
    }

    /// Sets `statement_timeout` for new sessions on `database` (`None`: the server's default,
    /// no limit). Sessions already open keep theirs.
    pub async fn set_statement_timeout(&self, database: &str, timeout: Option<Duration>) {
        self.set_database_timeout(database, "statement_timeout", timeout)
            .await;
    }

    /// Sets `lock_timeout` for new sessions on `database`, as
    /// [`set_statement_timeout`](Self::set_statement_timeout).
    pub async fn set_lock_timeout(&self, database: &str, timeout: Option<Duration>) {
        self.set_database_timeout(database, "lock_timeout", timeout)
            .await;
    }

    async fn set_database_timeout(&self, database: &str, setting: &str, value: Option<Duration>) {
        let admin = self.client("postgres").await;
        let database = quoted(database);
        let sql = match value {
            Some(value) => format!(
                "ALTER DATABASE {database} SET {setting} = {}",
                value.as_millis().max(1)
            ),
            None => format!("ALTER DATABASE {database} RESET {setting}"),
        };
        execute(&admin, &sql)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }

    /// Takes `LOCK TABLE <table> IN <mode> MODE` on `database` in a transaction that stays open
    /// until the [`HeldLock`] is released or dropped. `mode` is PostgreSQL's, e.g.
    /// `"ACCESS EXCLUSIVE"` (blocks every statement on the table) or `"SHARE"` (blocks writes).
    pub async fn lock_table(&self, database: &str, table: &str, mode: &str) -> HeldLock {
        let client = self.client(database).await;
        let sql = format!("BEGIN; LOCK TABLE {} IN {mode} MODE", quoted(table));
        execute(&client, &sql)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        HeldLock { client }
    }

    /// Stops the postmaster and every process it started (`SIGSTOP`, postmaster first, so that
    /// it forks no new one): the server stops answering, while the kernel still completes TCP
    /// handshakes. Undone by [`thaw`](Self::thaw), or by dropping the cluster.
    pub fn freeze(&self) {
        let postmaster = self.postmaster_pid();
        signal("STOP", &[postmaster]);
        self.frozen.store(true, Ordering::SeqCst);
        signal("STOP", &children(postmaster));
    }

    /// Resumes what [`freeze`](Self::freeze) stopped (`SIGCONT`, children first).
    pub fn thaw(&self) {
        let postmaster = self.postmaster_pid();
        signal("CONT", &children(postmaster));
        signal("CONT", &[postmaster]);
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// The postmaster's process id, from `postmaster.pid`.
    ///
    /// # Panics
    /// When the server is not running.
    pub fn postmaster_pid(&self) -> u32 {
        postmaster_pid(&self.data)
            .unwrap_or_else(|| panic!("no postmaster.pid in {}", self.data.display()))
    }

    fn append_config(&self, lines: &str) {
        use std::io::Write as _;
        let path = self.data.join("postgresql.conf");
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(lines.as_bytes()));
        if let Err(err) = appended {
            panic!("writing {}: {err}", path.display());
        }
    }

    /// `pg_ctl start`, which returns once the server accepts connections.
    fn start_command(&self) -> Command {
        let mut command = tools().command("pg_ctl", &self.root);
        command
            .args(["start", "--wait", "--timeout=60", "--silent"])
            .arg("--pgdata")
            .arg(&self.data)
            .arg("--log")
            .arg(self.root.join("log"));
        command
    }

    /// What [`start_command`](Self::start_command) gave: the server's log when it failed.
    fn started(&self, output: std::io::Result<Output>) -> Result<(), String> {
        let log = self.root.join("log");
        match output {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(format!(
                "{}{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            )),
            Err(err) => Err(format!("running pg_ctl: {err}")),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.frozen.load(Ordering::SeqCst) {
            self.thaw();
        }
        stop_and_remove(tools(), &self.root);
    }
}

/// A lock held by an open transaction on a connection of its own ([`Cluster::lock_table`]).
#[derive(Debug)]
pub struct HeldLock {
    client: Client,
}

impl HeldLock {
    /// Ends the transaction, releasing the lock, and returns once the server has.
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn release(self) {
        execute(&self.client, "ROLLBACK")
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
}

/// Where the server's binaries are, and whom they run as.
#[derive(Debug)]
struct Tools {
    bin: PathBuf,
    /// The uid and gid of the `postgres` user, when this process runs as root.
    run_as: Option<(u32, u32)>,
}

impl Tools {
    /// `program` of the server's binaries, run as [`Tools::run_as`], in `dir`.
    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(dir);
        // The server's own settings, not the caller's environment's.
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            command.env_remove(var);
        }
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// Finds the binaries and the user once per process.
///
/// # Panics
/// With the command that installs what is missing.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(find_tools) {
        Ok(tools) => tools,
        Err(message) => panic!("{message}"),
    }
}

fn find_tools() -> Result<Tools, String> {
    const INSTALL: &str = "Install the server with: apt-get install -y postgresql \
                           (or set AUTHINGO_PG_BINDIR to a directory holding initdb and pg_ctl)";
    let bin = match std::env::var_os("AUTHINGO_PG_BINDIR") {
        Some(dir) => PathBuf::from(dir),
        None => pg_config_bindir()
            .or_else(newest_debian_bindir)
            .ok_or_else(|| format!("no PostgreSQL server binaries found. {INSTALL}"))?,
    };
    for program in ["initdb", "pg_ctl", "postgres"] {
        if !bin.join(program).is_file() {
            return Err(format!("{program} is not in {}. {INSTALL}", bin.display()));
        }
    }
    // `/proc/self` belongs to this process's effective user.
    let uid = std::fs::metadata("/proc/self")
        .map_err(|err| format!("reading /proc/self: {err}"))?
        .uid();
    let run_as = if uid == 0 {
        Some(system_user("postgres").ok_or_else(|| {
            "initdb refuses to run as root, and there is no `postgres` OS user to run it as. \
             Install the server (apt-get install -y postgresql, which creates the user) or run \
             the tests as another user"
                .to_owned()
        })?)
    } else {
        None
    };
    Ok(Tools { bin, run_as })
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && dir.join("initdb").is_file()).then_some(dir)
}

/// `/usr/lib/postgresql/<version>/bin` of the highest version with an `initdb`.
fn newest_debian_bindir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// Creates `dir` with `mode`, owned by `owner` when given.
fn create_dir(dir: &Path, mode: u32, owner: Option<(u32, u32)>) {
    let made = std::fs::create_dir_all(dir)
        .and_then(|()| match owner {
            Some((uid, gid)) => std::os::unix::fs::chown(dir, Some(uid), Some(gid)),
            None => Ok(()),
        })
        .and_then(|()| {
            // Only the owner may change the mode; another user's base directory is left as is.
            let metadata = std::fs::metadata(dir)?;
            match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)) {
                Err(_) if metadata.permissions().mode() & 0o755 == 0o755 => Ok(()),
                other => other,
            }
        });
    if let Err(err) = made {
        panic!("creating {}: {err}", dir.display());
    }
}

/// A port in [`PORTS`] that nothing listens on now.
fn free_port() -> u16 {
    loop {
        let port = rand::random_range(PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The postmaster's pid, from the first line of `data/postmaster.pid`.
fn postmaster_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The processes whose parent is `parent`, from `/proc/<pid>/stat`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Whether process `pid` exists and has not exited (a zombie has, waiting to be reaped by
/// whichever process adopted it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !state.is_some_and(|state| state.starts_with('Z'))
    })
}

/// Sends `SIGNAL` to `pids` with `kill`; processes already gone are ignored.
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let output = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .output();
    if let Err(err) = output {
        panic!("running kill -{signal}: {err}. Install it with: apt-get install -y procps");
    }
}

/// Stops the cluster in `root` at once, whatever state it is in, and removes the directory.
fn stop_and_remove(tools: &Tools, root: &Path) {
    let data = root.join("data");
    let stopped = tools
        .command("pg_ctl", root)
        .args([
            "stop",
            "--wait",
            "--timeout=30",
            "--silent",
            "--mode=immediate",
        ])
        .arg("--pgdata")
        .arg(&data)
        .output();
    let stopped = stopped.is_ok_and(|output| output.status.success());
    let postmaster = postmaster_pid(&data).filter(|_| !stopped);
    if let Some(postmaster) = postmaster.filter(|&pid| alive(pid)) {
        let mut pids = children(postmaster);
        pids.push(postmaster);
        signal("CONT", &pids);
        signal("KILL", &pids);
    }
    let _ = std::fs::remove_dir_all(root);
}

/// Stops and removes the clusters of processes that are gone (killed before their `Drop`).
fn sweep_dead_clusters(tools: &Tools) {
    let base = std::env::temp_dir().join("authingo-clusters");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.split_once('-')) else {
            continue;
        };
        if pid.0.parse().is_ok_and(|pid| !alive(pid)) {
            stop_and_remove(tools, &entry.path());
        }
    }
}

/// Panics with what `step` printed unless it succeeded.
fn check(step: &str, output: std::io::Result<Output>) {
    match output {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "{step} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) => panic!("running {step}: {err}"),
    }
}

/// Runs `command` to completion without blocking the caller's runtime, whose tasks (a server
/// under test, its pool) keep running meanwhile.
async fn run(command: Command) -> std::io::Result<Output> {
    tokio::process::Command::from(command).output().await
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_migrations(_url: String) -> crate::MigrateFuture {
        Box::pin(async { Ok(()) })
    }

    async fn answers(cluster: &Cluster, database: &str) -> bool {
        let url = cluster.url(database);
        let attempt = async {
            let client = connect(&url).await.ok()?;
            client.simple_query("SELECT 1").await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_millis(500), attempt).await,
            Ok(Some(_))
        )
    }

    #[tokio::test]
    async fn a_cluster_stops_starts_freezes_thaws_and_is_removed_when_dropped() {
        let cluster = Cluster::new().await;
        let root = cluster.root.clone();
        let database = cluster.migrated_database(no_migrations).await;
        assert!(answers(&cluster, &database).await);

        cluster.stop(StopMode::Immediate).await;
        assert!(!answers(&cluster, &database).await, "answers while stopped");
        cluster.start().await;
        assert!(answers(&cluster, &database).await, "silent after the start");

        let postmaster = cluster.postmaster_pid();
        cluster.freeze();
        assert!(!answers(&cluster, &database).await, "answers while frozen");
        cluster.thaw();
        assert!(answers(&cluster, &database).await, "silent after the thaw");

        // Dropped while frozen: thawed, stopped and removed all the same.
        cluster.freeze();
        drop(cluster);
        assert!(!root.exists(), "{} left behind", root.display());
        assert!(!alive(postmaster), "the postmaster outlived its cluster");
    }

    #[tokio::test]
    async fn a_cluster_that_requires_tls_refuses_plain_text_over_tcp_and_serves_the_harness() {
        let ca = crate::TestCa::new("authingo test CA");
        let cert = ca.issue(&["localhost", "127.0.0.1"]);
        let cluster = Cluster::with_tls(&cert, TlsClients::Required).await;
        // The harness's own connections go through the Unix socket.
        let database = cluster.migrated_database(no_migrations).await;
        let ssl: String = query_value(&cluster.client(&database).await, "SHOW ssl", &[])
            .await
            .unwrap();
        assert_eq!(ssl, "on");
        let Err(crate::Error::Connect { error, .. }) = connect(&cluster.url(&database)).await
        else {
            panic!("a plain-text connection over TCP was let in");
        };
        let message = error.as_db_error().unwrap().message();
        assert!(
            message.contains("no pg_hba.conf entry") && message.contains("no encryption"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn read_only_applies_to_open_sessions_and_is_undone() {
        let cluster = Cluster::new().await;
        let database = cluster.migrated_database(no_migrations).await;
        let client = cluster.client(&database).await;
        client
            .batch_execute("CREATE TABLE t (x int)")
            .await
            .unwrap();
        cluster.set_read_only(true).await;
        let err = client
            .batch_execute("INSERT INTO t VALUES (1)")
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)
        );
        cluster.set_read_only(false).await;
        client
            .batch_execute("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_held_lock_blocks_until_released_and_timeouts_apply_to_new_sessions() {
        let cluster = Cluster::new().await;
        let database = cluster.migrated_database(no_migrations).await;
        cluster
            .client(&database)
            .await
            .batch_execute("CREATE TABLE sessions (x int)")
            .await
            .unwrap();
        cluster
            .set_lock_timeout(&database, Some(Duration::from_millis(50)))
            .await;
        let held = cluster
            .lock_table(&database, "sessions", "ACCESS EXCLUSIVE")
            .await;
        let client = cluster.client(&database).await;
        let err = client
            .batch_execute("SELECT * FROM sessions")
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
        );
        held.release().await;
        client
            .batch_execute("SELECT * FROM sessions")
            .await
            .unwrap();
        assert_eq!(cluster.terminate_backends(&database).await, 1);
    }
}
