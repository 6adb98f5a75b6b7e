//! A real SMTP server for the tests that send mail: Debian's `python3-aiosmtpd`, receiving into a
//! Maildir in a temporary folder, on a free loopback port.
//!
//! [`SmtpServer::start`] runs `python3 -m aiosmtpd` with its `Mailbox` handler and waits until
//! the port answers; [`SmtpServer::messages`] reads what arrived, and
//! [`SmtpServer::wait_for`] waits (with a deadline) until a given number has. Dropping the value
//! stops the server and removes the folder.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to do when the server cannot run.
pub const SMTP_INSTALL_HINT: &str = "apt-get update && apt-get install -y python3-aiosmtpd";

/// The Python that has Debian's packages (a `python3` earlier on `PATH` may not).
const PYTHON: &str = "/usr/bin/python3";

/// A running aiosmtpd, stopped and removed on drop.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    port: u16,
    folder: PathBuf,
}

/// A message as it arrived: its raw text (headers and body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The whole message as the server stored it.
    pub raw: String,
}

impl Received {
    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\n\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.lines() {
            if let Some(value) = found.as_mut() {
                if line.starts_with([' ', '\t']) {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case(name) {
                    found = Some(value.trim().to_owned());
                }
            }
        }
        found
    }

    /// The body: what follows the headers, with soft line breaks of quoted-printable undone.
    pub fn body(&self) -> String {
        let body = self.raw.split_once("\n\n").map_or("", |(_, body)| body);
        body.replace("=\n", "").replace("=3D", "=")
    }

    /// The first `token=` value in the body.
    pub fn token(&self) -> Option<String> {
        let body = self.body();
        let start = body.find("token=")? + "token=".len();
        let token: String = body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!token.is_empty()).then_some(token)
    }
}

impl SmtpServer {
    /// Starts a server on a free loopback port.
    ///
    /// # Panics
    /// When aiosmtpd is not installed or does not start, with the command that installs it.
    pub fn start() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let folder = std::env::temp_dir().join(format!(
            "authingo-smtp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&folder).expect("a temporary folder for the mail");
        let port = free_port();
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(folder.join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run {PYTHON}: {err}\nInstall: {SMTP_INSTALL_HINT}")
            });
        let mut server = Self {
            child,
            port,
            folder,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = server.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("aiosmtpd exited ({status}): {stderr}\nInstall it: {SMTP_INSTALL_HINT}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on port {port} within 20 s"
            );
            std::thread::yield_now();
        }
        server
    }

    /// The port it listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message that arrived so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let new = self.folder.join("maildir").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|path| delivery_order(path));
        files
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .map(|bytes| Received {
                raw: String::from_utf8_lossy(&bytes).replace("\r\n", "\n"),
            })
            .collect()
    }

    /// The messages, once at least `count` have arrived.
    ///
    /// # Panics
    /// When fewer arrive within 20 seconds.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{count} messages expected, {} arrived",
                messages.len()
            );
            tokio::task::yield_now().await;
        }
    }

    fn folder(&self) -> &Path {
        &self.folder
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(self.folder());
    }
}

/// Where a Maildir file falls in delivery order: its `Q` number. Python's `mailbox` names a
/// file `<seconds>.M<microseconds>P<pid>Q<count>.<host>`, with the microseconds not zero-padded,
/// so the names do not sort as text (`.M99999` follows `.M100000` of the same second); `Q` counts
/// the deliveries of the one server process.
fn delivery_order(path: &Path) -> u64 {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    name.split_once('Q')
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("not a Maildir file name: {name}"))
}

/// A port nothing listens on now (bound, read and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_is_ordered_by_delivery_not_by_name() {
        let mut files = [
            PathBuf::from("new/1764500000.M100000P77Q3.host.example"),
            PathBuf::from("new/1764500000.M99999P77Q2.host.example"),
            PathBuf::from("new/1764499999.M5P77Q1.host"),
        ];
        files.sort_by_key(|path| delivery_order(path));
        let counts: Vec<u64> = files.iter().map(|path| delivery_order(path)).collect();
        assert_eq!(counts, [1, 2, 3]);
        assert!(files[1].to_str().unwrap().contains("M99999"));
    }
}
