//! The serving process killed (`SIGKILL`) in the middle of sign-ups.
//!
//! The server must be a process of its own. It is this test binary, run again: the parent runs
//! `<this binary> --exact <child test> --ignored --nocapture`, whose only test
//! ([`serve_as_a_child_process`], ignored in ordinary runs and idle without its environment
//! variable) serves the routes on the database it is given and prints its address. So the
//! child is always built from the code under test, under `cargo test` and `cargo nextest run`
//! alike, where `target/debug/examples/server` is built only by some commands (not
//! `cargo test --test it`) and may be stale. The child also exits when its standard input
//! closes, so it cannot outlive a parent that dies.

use std::io::Read as _;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use super::super::app::app;
use super::{FaultApp, Tuning, store, wait_until};
use crate::support::{EngineBuilder, PASSWORD};

/// The variable that makes [`serve_as_a_child_process`] serve: the database URL.
const CHILD_DATABASE_URL: &str = "AUTHINGO_FAULT_CHILD_DATABASE_URL";
/// What the child prints before its address.
const LISTENING: &str = "fault child listening on ";
/// The `application_name` of the child's connections.
const CHILD_APPLICATION: &str = "authingo-fault-child";

/// Sign-ups are held inside their transaction (the user inserted, the session waiting on a
/// `SHARE` lock), and the process serving them is killed: when the lock goes, the server rolls
/// each back with its user. No user is left without its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sign_up_leaves_no_user_without_a_session() {
    let app = FaultApp::shared(Tuning::default()).await;
    let (mut child, addr) = spawn_child(&app.url()).await;
    let held = app
        .cluster
        .lock_table(&app.database, "sessions", "SHARE")
        .await;

    let http = reqwest::Client::new();
    let mut sign_ups = JoinSet::new();
    for i in 0..6 {
        let request = http
            .post(format!("http://{addr}/api/auth/sign-up"))
            .header("X-Authingo-Client", "true")
            .json(&json!({"email": format!("user{i}@example.com"), "password": PASSWORD, "name": "Ada"}));
        sign_ups.spawn(request.send());
    }
    let child_waiting = format!(
        "application_name = '{CHILD_APPLICATION}' \
         AND wait_event_type = 'Lock' AND xact_start IS NOT NULL"
    );
    wait_until(
        "six sign-ups of the child waiting on the lock inside their transaction",
        Duration::from_secs(10),
        || async { app.backends(&child_waiting).await == 6 },
    )
    .await;

    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "{status}");
    for answer in sign_ups.join_all().await {
        assert!(answer.is_err(), "a sign-up was answered: {answer:?}");
    }
    held.release().await;

    let child_sessions = format!("application_name = '{CHILD_APPLICATION}'");
    wait_until(
        "the killed child's sessions gone",
        Duration::from_secs(10),
        || async { app.backends(&child_sessions).await == 0 },
    )
    .await;
    assert_eq!(app.users_without_session().await, 0);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

/// Starts [`serve_as_a_child_process`] on `database_url`; returns the process and its address.
async fn spawn_child(database_url: &str) -> (Child, String) {
    let url = authingo_test_db::with_application_name(database_url, CHILD_APPLICATION).unwrap();
    let (_, test_path) = module_path!().split_once("::").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("{test_path}::serve_as_a_child_process")])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DATABASE_URL, url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest's "test <name> ... " may precede it on the same line.
            if let Some((_, addr)) = line.split_once(LISTENING) {
                return addr.trim().to_owned();
            }
        }
        panic!("the child exited before it listened");
    })
    .await
    .expect("the child did not listen within 30 s");
    // Its further output is not read: let it go, or the child would block on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// The server process of [`a_server_killed_mid_sign_up_leaves_no_user_without_a_session`]:
/// serves the routes on the database named by its environment until killed, or until its
/// standard input closes.
#[test]
#[ignore = "the server process of a fault test, which starts it"]
fn serve_as_a_child_process() {
    let Ok(url) = std::env::var(CHILD_DATABASE_URL) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let tuning = Tuning {
            statement: Duration::from_secs(60),
            ..Tuning::default()
        };
        let auth = EngineBuilder::on(store(&url, tuning).await).build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{LISTENING}{}", listener.local_addr().unwrap());
        let parent_gone = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        });
        tokio::select! {
            served = axum::serve(listener, app(&auth, "/api/auth")) => served.unwrap(),
            _ = parent_gone => {}
        }
    });
}
