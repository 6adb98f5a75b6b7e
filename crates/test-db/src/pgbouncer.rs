//! A private PgBouncer in front of the test server, for tests that check what the crate does
//! behind a pooler.
//!
//! [`PgBouncer::start`] runs Debian's `pgbouncer` on a free loopback port, with a config and an
//! auth file in a temporary folder of its own, forwarding every database name to the host and
//! port of [`server_url`] as the URL's user (`* = host=… port=…`). A connection to a test's
//! database through it is [`PgBouncer::url_for`] of that database's URL. Dropping the value stops
//! the process and removes the folder.
//!
//! - **Not as root.** pgbouncer refuses to run as root; when the tests run as root, it runs as
//!   the `postgres` user of the system (which the PostgreSQL package creates), and the folder is
//!   given to that user. The folder is made under [`std::env::temp_dir`], which that user must
//!   be able to enter (`/tmp` is).
//! - **No orphan.** pgbouncer runs under a small `sh` that also stops it when its standard input
//!   closes: when the value is dropped, and when the test process dies without dropping it.
//! - **No queue.** In session mode every client holds a server connection for its whole life,
//!   and a pool's connections live as long as the pool: a server pool smaller than the clients
//!   would leave some waiting until PgBouncer's `query_wait_timeout` (2 minutes). So the server
//!   pool is as large as the client limit unless a test asks for less.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};
use url::Url;

use crate::server::connect;
use crate::tls::{ServerCert, write_server_files};
use crate::urls::{redacted, server_url};

/// What to do when `pgbouncer` is not installed.
pub const INSTALL_HINT: &str = "apt-get update && apt-get install -y pgbouncer";

/// Client connections PgBouncer accepts, and by default its server connections per database.
pub const DEFAULT_POOL_SIZE: u32 = 100;

/// How long PgBouncer may take to answer on its port, and to stop.
const DEADLINE: Duration = Duration::from_secs(10);

/// Ports tried before giving up when another process takes the free port first.
const ATTEMPTS: usize = 5;

/// Numbers this process's PgBouncer folders.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Runs pgbouncer (`$1`, config `$2`) and waits for it; a watcher stops it once standard input
/// closes. The watcher reads the shell's standard input through fd 3, since a background job of
/// a non-interactive shell gets /dev/null as its standard input before any redirection.
const SUPERVISOR: &str = r#"
exec 3<&0
"$1" -q "$2" 3<&- &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; } &
wait "$pid"
"#;

/// When PgBouncer gives a client a server connection, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// For the client's whole connection: what the store supports with PgBouncer 1.18.
    Session,
    /// For one transaction (or one statement outside a transaction): prepared statements of one
    /// client may then be on another server connection than its next statement.
    Transaction,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

/// A running PgBouncer in front of [`server_url`]'s server, stopped and its folder removed when
/// the value goes.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    user: String,
    dir: PathBuf,
    mode: PoolMode,
    /// Clients must use TLS (and the admin console is reached through the Unix socket).
    tls: bool,
    version: String,
    child: Child,
    /// Closing it stops PgBouncer (see [`SUPERVISOR`]).
    stdin: Option<ChildStdin>,
}

impl PgBouncer {
    /// Starts PgBouncer in `mode` with [`DEFAULT_POOL_SIZE`] server connections per database.
    ///
    /// # Panics
    /// As [`PgBouncer::start_with`].
    pub async fn start(mode: PoolMode) -> Self {
        Self::start_with(mode, DEFAULT_POOL_SIZE).await
    }

    /// Starts PgBouncer in `mode` with at most `pool_size` server connections per database, and
    /// waits until its admin console answers.
    ///
    /// # Panics
    /// When `pgbouncer` is not installed (with [`INSTALL_HINT`]); when [`server_url`] is not a
    /// TCP URL; when running as root without a `postgres` user; when PgBouncer does not come up
    /// (with its log).
    pub async fn start_with(mode: PoolMode, pool_size: u32) -> Self {
        Self::start_inner(mode, pool_size, None).await
    }

    /// Starts PgBouncer in `mode` requiring TLS of its clients over TCP
    /// (`client_tls_sslmode = require`), with `cert` as its certificate; it still speaks plain
    /// text to the server. Its admin console is reached through its Unix socket.
    ///
    /// # Panics
    /// As [`PgBouncer::start_with`].
    pub async fn start_with_tls(mode: PoolMode, cert: &ServerCert) -> Self {
        Self::start_inner(mode, DEFAULT_POOL_SIZE, Some(cert)).await
    }

    async fn start_inner(mode: PoolMode, pool_size: u32, tls: Option<&ServerCert>) -> Self {
        let Some(program) = find_program() else {
            panic!("pgbouncer is not installed; install it with\n  {INSTALL_HINT}");
        };
        let upstream = Upstream::of(&server_url());
        let mut last_log = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "authingo-pgbouncer-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let runs_as = prepare_folder(&dir, &upstream, mode, port, pool_size, tls);
            let mut command = Command::new("sh");
            command
                .args(["-c", SUPERVISOR, "sh"])
                .arg(&program)
                .arg(dir.join("pgbouncer.ini"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(output(&dir));
            if let Some((uid, gid)) = runs_as {
                command.uid(uid).gid(gid);
            }
            let mut child = command
                .spawn()
                .unwrap_or_else(|err| panic!("starting {}: {err}", program.display()));
            let stdin = child.stdin.take();
            let mut bouncer = Self {
                port,
                user: upstream.user.clone(),
                dir,
                mode,
                tls: tls.is_some(),
                version: String::new(),
                child,
                stdin,
            };
            match bouncer.wait_until_up().await {
                Ok(version) => {
                    bouncer.version = version;
                    return bouncer;
                }
                Err(Exited) => {
                    last_log = bouncer.log();
                    // Another process took the port between our probe and PgBouncer's bind.
                    if last_log.contains("Address already in use") {
                        continue;
                    }
                    break;
                }
            }
        }
        panic!("PgBouncer did not start; its log:\n{last_log}");
    }

    /// `database_url` (a URL of [`server_url`]'s server) with its host and port replaced by
    /// PgBouncer's: the same database and user, through the pooler.
    ///
    /// # Panics
    /// When `database_url` is not a URL with a host.
    pub fn url_for(&self, database_url: &str) -> String {
        let not_a_server = || panic!("{} is not a server URL", redacted(database_url));
        let mut url = Url::parse(database_url).unwrap_or_else(|_| not_a_server());
        if url.set_host(Some("127.0.0.1")).is_err() || url.set_port(Some(self.port)).is_err() {
            not_a_server();
        }
        url.into()
    }

    /// The loopback port PgBouncer listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pool mode it runs in.
    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    /// What `SHOW VERSION` answered, e.g. `PgBouncer 1.18.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A connection to PgBouncer's admin console (the database `pgbouncer`), which takes `SHOW`
    /// commands through [`Client::simple_query`] only.
    ///
    /// # Errors
    /// [`crate::Error::Connect`] when PgBouncer does not answer.
    pub async fn admin(&self) -> Result<Client, crate::Error> {
        let quote = |text: &str| text.replace('\\', "\\\\").replace('\'', "\\'");
        let host = if self.tls {
            quote(&self.dir.display().to_string())
        } else {
            "127.0.0.1".to_owned()
        };
        connect(&format!(
            "host='{host}' port={} user='{}' dbname=pgbouncer",
            self.port,
            quote(&self.user)
        ))
        .await
    }

    /// PgBouncer's log so far, and what it and its supervisor wrote to stderr, to explain a
    /// failure.
    pub fn log(&self) -> String {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.join(name))
                .unwrap_or_else(|err| format!("(no {name}: {err})"))
        };
        format!("{}{}", read("pgbouncer.log"), read("stderr"))
    }

    /// Polls the admin console until it answers `SHOW VERSION`, or PgBouncer exits.
    async fn wait_until_up(&mut self) -> Result<String, Exited> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(admin) = self.admin().await {
                if let Ok(messages) = admin.simple_query("SHOW VERSION").await {
                    let version = messages.iter().find_map(|message| match message {
                        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                        _ => None,
                    });
                    return Ok(version.unwrap_or_default());
                }
            }
            if !matches!(self.child.try_wait(), Ok(None)) {
                return Err(Exited);
            }
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not answer on port {} within {DEADLINE:?}; its log:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // Closing its standard input makes the supervisor stop PgBouncer (immediate shutdown,
        // SIGTERM in 1.18), then exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer exited before it answered.
struct Exited;

/// The server PgBouncer forwards to, and who it logs in as.
struct Upstream {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl Upstream {
    fn of(server_url: &str) -> Self {
        let url = Url::parse(server_url)
            .unwrap_or_else(|err| panic!("DATABASE_URL {}: {err}", redacted(server_url)));
        let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
            panic!(
                "DATABASE_URL {}: PgBouncer needs a server reached over TCP (postgres://user@host:port/db)",
                redacted(server_url)
            );
        };
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = match url.username() {
            "" => "postgres".to_owned(),
            user => decode(user),
        };
        Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: url.port().unwrap_or(5432),
            user,
            password: url.password().map(decode),
        }
    }
}

/// Writes the config and auth file into a fresh `dir`, owned by the user PgBouncer will run as;
/// returns that user's uid and gid when it is not this process's.
fn prepare_folder(
    dir: &Path,
    upstream: &Upstream,
    mode: PoolMode,
    port: u16,
    pool_size: u32,
    tls: Option<&ServerCert>,
) -> Option<(u32, u32)> {
    let failed = |what: &str, err: std::io::Error| -> ! {
        panic!("{what} {}: {err}", dir.display());
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .unwrap_or_else(|err| failed("creating", err));
    let dir_text = dir.display();
    let tls_config = match tls {
        Some(cert) => {
            write_server_files(dir, cert, None);
            format!(
                "client_tls_sslmode = require\n\
                 client_tls_cert_file = {dir_text}/server.crt\n\
                 client_tls_key_file = {dir_text}/server.key\n\
                 unix_socket_dir = {dir_text}\n"
            )
        }
        None => "unix_socket_dir =\n".to_owned(),
    };
    let config = format!(
        "[databases]\n\
         * = host={host} port={upstream_port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         {tls_config}\
         pool_mode = {mode}\n\
         max_client_conn = {DEFAULT_POOL_SIZE}\n\
         default_pool_size = {pool_size}\n\
         auth_type = trust\n\
         auth_file = {dir_text}/userlist.txt\n\
         admin_users = {user}\n\
         logfile = {dir_text}/pgbouncer.log\n\
         pidfile = {dir_text}/pgbouncer.pid\n\
         ; a failed server login would otherwise block the pool for 15 s\n\
         server_login_retry = 1\n",
        host = upstream.host,
        upstream_port = upstream.port,
        mode = mode.as_str(),
        user = upstream.user,
    );
    // `trust` checks no client password, but the user must be listed; the password listed is
    // the one PgBouncer logs in to the server with.
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let users = format!(
        "{} {}\n",
        quote(&upstream.user),
        quote(upstream.password.as_deref().unwrap_or(""))
    );
    for (name, contents) in [("pgbouncer.ini", config), ("userlist.txt", users)] {
        let path = dir.join(name);
        let mut file = std::fs::File::create(&path).unwrap_or_else(|err| failed("writing", err));
        file.write_all(contents.as_bytes())
            .unwrap_or_else(|err| failed("writing", err));
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|err| failed("writing", err));
    }
    // The folder belongs to whoever made it: this process.
    let is_root = std::fs::metadata(dir)
        .unwrap_or_else(|err| failed("reading", err))
        .uid()
        == 0;
    if !is_root {
        return None;
    }
    let Some((uid, gid)) = system_user("postgres") else {
        panic!("pgbouncer refuses to run as root, and there is no `postgres` user to run it as");
    };
    for path in [
        dir.to_owned(),
        dir.join("pgbouncer.ini"),
        dir.join("userlist.txt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    ] {
        if !path.exists() {
            continue;
        }
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .unwrap_or_else(|err| failed("giving to postgres", err));
    }
    Some((uid, gid))
}

/// A file in `dir` for the supervisor's stderr (opened here, so whoever it runs as may write it).
fn output(dir: &Path) -> Stdio {
    std::fs::File::create(dir.join("stderr"))
        .map(Stdio::from)
        .unwrap_or_else(|err| panic!("creating {}/stderr: {err}", dir.display()))
}

/// The uid and gid of the system user `name`, from `/etc/passwd`.
pub(crate) fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// `pgbouncer` on `PATH`, or in the sbin folders Debian puts it in (not on a normal user's
/// `PATH`).
fn find_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.is_file())
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("finding a free port: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_user_reads_passwd_fields() {
        // root is uid 0 and gid 0 on every Linux system.
        assert_eq!(system_user("root"), Some((0, 0)));
        assert_eq!(system_user("no-such-user-authingo"), None);
    }

    #[test]
    fn upstream_takes_host_port_user_and_password_from_the_url() {
        let upstream = Upstream::of("postgres://u%40x:p%3Ass@db.example:6543/app?sslmode=disable");
        assert_eq!(upstream.host, "db.example");
        assert_eq!(upstream.port, 6543);
        assert_eq!(upstream.user, "u@x");
        assert_eq!(upstream.password.as_deref(), Some("p:ss"));
        let defaults = Upstream::of("postgres://127.0.0.1/postgres");
        assert_eq!((defaults.port, defaults.user.as_str()), (5432, "postgres"));
        assert_eq!(defaults.password, None);
    }

    #[tokio::test]
    async fn pgbouncer_with_tls_refuses_plain_text_clients_and_answers_on_its_socket() {
        let ca = crate::TestCa::new("authingo test CA");
        let bouncer = PgBouncer::start_with_tls(PoolMode::Session, &ca.issue(&["127.0.0.1"])).await;
        // The admin console answers through the Unix socket (start waits for it).
        assert!(bouncer.version().starts_with("PgBouncer "));
        let plain = bouncer.url_for(&crate::server_url());
        let Err(crate::Error::Connect { error, .. }) = connect(&plain).await else {
            panic!("PgBouncer let a plain-text client in over TCP");
        };
        let message = error.as_db_error().unwrap().message();
        assert!(message.contains("SSL required"), "{message}");
    }

    #[tokio::test]
    async fn pgbouncer_forwards_to_the_server_and_is_gone_when_dropped() {
        let bouncer = PgBouncer::start(PoolMode::Session).await;
        assert!(
            bouncer.version().starts_with("PgBouncer "),
            "{}",
            bouncer.version()
        );
        let client = connect(&bouncer.url_for(&server_url())).await.unwrap();
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        let (port, dir) = (bouncer.port(), bouncer.dir.clone());
        assert!(dir.join("pgbouncer.ini").is_file());
        drop(client);
        drop(bouncer);
        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port}"
        );
    }
}
