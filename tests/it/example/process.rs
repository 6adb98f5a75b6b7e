//! The example server's process: found beside the test binary, started with `PORT=0`, its
//! address read from stdout, signalled, and awaited with a deadline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::support::TestDb;

/// How long the server may take to migrate its database and print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `target/<profile>/examples/server`, built by `cargo test` (or `cargo build --example server`).
fn binary() -> PathBuf {
    // The test binary is target/<profile>/deps/it-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("server");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --example server` (plain `cargo test` builds it too)",
        binary.display()
    );
    binary
}

/// The port in a line that says `listening on http://localhost:<port>/`.
fn port_in(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("listening on http://localhost:")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// The example server running on a database of its own; killed when dropped if still running.
pub(crate) struct ExampleServer {
    child: Child,
    addr: SocketAddr,
    stderr: Option<JoinHandle<String>>,
    _db: TestDb,
}

impl ExampleServer {
    /// Starts the binary on a fresh database and waits for the address it prints.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`start`](Self::start) with more environment variables (`SMTP_PORT`, say).
    pub(crate) async fn start_with(env: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await;
        let mut child = Command::new(binary())
            .envs(env.iter().copied())
            .env("DATABASE_URL", db.url())
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the example server");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut logs = String::new();
            let _ = stderr.read_to_string(&mut logs).await;
            logs
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = port_in(&line) {
                    return Some(port);
                }
            }
            None
        })
        .await;
        let Ok(Some(port)) = port else {
            let _ = child.start_kill();
            let logs = stderr.await.unwrap_or_default();
            panic!("the example server printed no address within {START_TIMEOUT:?}:\n{logs}");
        };
        // Whatever else it prints is drained, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr: Some(stderr),
            _db: db,
        }
    }

    /// `127.0.0.1:<port>`, for raw TCP.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://localhost:<port>{path}`, the address as a browser is given it.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    /// Sends `signal` to the process.
    pub(crate) fn signal(&self, signal: Signal) {
        let pid = self
            .child
            .id()
            .expect("the example server has already exited");
        kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();
    }

    /// Waits at most `within` for the process to exit; panics if it is still running. Returns
    /// the exit status and everything the server logged.
    pub(crate) async fn exit_within(&mut self, within: Duration) -> (ExitStatus, String) {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => {
                let logs = match self.stderr.take() {
                    Some(stderr) => stderr.await.unwrap_or_default(),
                    None => String::new(),
                };
                (status.unwrap(), logs)
            }
            Err(_) => panic!("the example server was still running {within:?} later"),
        }
    }
}
