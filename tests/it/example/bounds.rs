//! The bounds the example server documents, over raw TCP: a signal lets the requests in flight
//! finish, a half-open connection cannot hold a shutdown past its deadline, and idle or stalled
//! clients are cut off.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ExampleServer;
use crate::support::PASSWORD;

// As `examples/server.rs` documents them.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// What a loaded 2-core machine may add to a bound.
const SLACK: Duration = Duration::from_secs(3);

/// A timer may fire a hair early by another clock's reading; never by more.
const EARLY: Duration = Duration::from_millis(100);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_sign_ins_finish_and_exits_zero() {
    let mut server = ExampleServer::start().await;
    // Six accounts: concurrent sign-ins of one account past the first few are throttled by
    // design (each counts as a failure until its password checked out).
    let emails: Vec<String> = (0..6).map(|i| format!("ada{i}@example.com")).collect();
    for email in &emails {
        sign_up(&server, email).await;
    }

    // Six sign-ins whose handlers are running: each has its headers read and has asked for its
    // body (hyper answers `100 Continue` when the handler first reads it).
    let bodies: Vec<String> = emails
        .iter()
        .map(|email| json!({ "email": email, "password": PASSWORD }).to_string())
        .collect();
    let mut sign_ins = Vec::new();
    for body in &bodies {
        let head = format!(
            "POST /api/auth/sign-in HTTP/1.1\r\nHost: localhost\r\nX-Authingo-Client: true\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        sign_ins.push(stream);
    }
    for stream in &mut sign_ins {
        let got = read_until(stream, CONTINUE, Duration::from_secs(10)).await;
        assert_eq!(got, CONTINUE, "{}", String::from_utf8_lossy(&got));
    }

    server.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    for (stream, body) in sign_ins.iter_mut().zip(&bodies) {
        stream.write_all(body.as_bytes()).await.unwrap();
    }
    let mut statuses = Vec::new();
    for stream in &mut sign_ins {
        statuses.push(status(&read_to_close(stream, SHUTDOWN_DEADLINE).await.0));
    }
    assert_eq!(statuses, [200; 6], "every sign-in in flight is answered");

    let (status, logs) = server.exit_within(SHUTDOWN_DEADLINE).await;
    assert!(status.success(), "{status}\n{logs}");
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connection_does_not_hold_sigterm_past_the_deadline() {
    half_open_connection_does_not_hold_a_shutdown_past_its_deadline(Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connection_does_not_hold_ctrl_c_past_the_deadline() {
    half_open_connection_does_not_hold_a_shutdown_past_its_deadline(Signal::SIGINT).await;
}

async fn half_open_connection_does_not_hold_a_shutdown_past_its_deadline(signal: Signal) {
    let mut server = ExampleServer::start().await;
    let mut half_open = TcpStream::connect(server.addr()).await.unwrap();
    half_open
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // The server has taken the partial head off the socket: the connection is busy, not idle.
    wait_until_read_by_server(server.addr(), half_open.local_addr().unwrap()).await;

    server.signal(signal);
    let signalled = Instant::now();
    let (status, logs) = server.exit_within(SHUTDOWN_DEADLINE + SLACK).await;
    let elapsed = signalled.elapsed();
    assert!(status.success(), "{status}\n{logs}");
    let (_, closed) = read_to_close(&mut half_open, SLACK).await;
    assert!(closed <= signalled + SHUTDOWN_DEADLINE + SLACK);
    eprintln!("exited {elapsed:?} after {signal} with a half-open connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_still_running_at_the_deadline_is_dropped_and_the_process_exits() {
    let mut server = ExampleServer::start().await;
    let mut trickle = TcpStream::connect(server.addr()).await.unwrap();
    trickle
        .write_all(
            b"POST /api/auth/sign-in HTTP/1.1\r\nHost: localhost\r\nX-Authingo-Client: true\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let got = read_until(&mut trickle, CONTINUE, Duration::from_secs(10)).await;
    assert_eq!(got, CONTINUE, "{}", String::from_utf8_lossy(&got));

    server.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    // One byte a second: never idle for the body timeout, never finished.
    let pace = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            if trickle.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let (status, logs) = server.exit_within(SHUTDOWN_DEADLINE + SLACK).await;
    let elapsed = signalled.elapsed();
    pace.abort();
    assert!(status.success(), "{status}\n{logs}");
    assert!(
        elapsed >= SHUTDOWN_DEADLINE - EARLY,
        "exited after {elapsed:?}"
    );
    eprintln!("exited {elapsed:?} after SIGTERM with a request still running");
}

#[tokio::test]
async fn idle_connection_is_closed_after_the_header_timeout() {
    let server = ExampleServer::start().await;
    let connected = Instant::now();
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();

    let (_, closed) = read_to_close(&mut idle, HEADER_READ_TIMEOUT + SLACK).await;
    let after = closed - connected;
    assert!(
        after >= HEADER_READ_TIMEOUT - EARLY,
        "closed after {after:?}"
    );
    eprintln!("idle connection closed after {after:?}");
}

#[tokio::test]
async fn stalled_body_is_cut_after_the_body_timeout() {
    let server = ExampleServer::start().await;
    let mut stalled = TcpStream::connect(server.addr()).await.unwrap();
    stalled
        .write_all(
            b"POST /api/auth/sign-in HTTP/1.1\r\nHost: localhost\r\nX-Authingo-Client: true\r\n\
              Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"email\": ",
        )
        .await
        .unwrap();
    let sent = Instant::now();

    let (answer, closed) = read_to_close(&mut stalled, BODY_READ_TIMEOUT + SLACK).await;
    let after = closed - sent;
    assert!(after >= BODY_READ_TIMEOUT - EARLY, "closed after {after:?}");
    let status = status(&answer);
    assert!((400..500).contains(&status), "{status}");
    eprintln!("stalled body answered {status} and closed after {after:?}");
}

/// Signs `email` up over HTTP.
async fn sign_up(server: &ExampleServer, email: &str) {
    let reply = reqwest::Client::new()
        .post(server.url("/api/auth/sign-up"))
        .header("X-Authingo-Client", "true")
        .json(&json!({ "email": email, "password": PASSWORD, "name": "Ada" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

/// Reads until `end` has come (or the peer closed); panics after `within`.
async fn read_until(stream: &mut TcpStream, end: &[u8], within: Duration) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    while !got.ends_with(end) {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("nothing more within {within:?}"));
        match read.unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Reads until the server closes the connection (EOF or reset): what it sent and when it
/// closed. Panics if it is still open after `within`.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the connection was still open after {within:?}; got {:?}",
                    String::from_utf8_lossy(&got)
                )
            });
        match read {
            Ok(0) | Err(_) => return (got, Instant::now()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status code of the HTTP response at the start of `answer`.
fn status(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"))
}

/// Waits until the server's end of the connection from `client` has nothing left to read in
/// the kernel (its receive queue in /proc/net/tcp is empty): the server has read what was sent.
async fn wait_until_read_by_server(server: SocketAddr, client: SocketAddr) {
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => unreachable!("the example server listens on IPv4"),
    };
    let (local, remote) = (hex(server), hex(client));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let queued = table.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
                .then(|| fields[4].split_once(':').map(|(_, rx)| rx.to_owned()))
                .flatten()
        });
        if queued
            .as_deref()
            .is_some_and(|rx| u64::from_str_radix(rx, 16) == Ok(0))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not read the connection: {queued:?}"
        );
        // A polling interval, not a guess at how long the server takes.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
