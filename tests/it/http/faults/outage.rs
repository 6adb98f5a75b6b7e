//! The database goes away and comes back: stopped (`fast` and `immediate`) and restarted under
//! load, refusing connections, and callers that were already waiting when it returned.

use std::time::{Duration, Instant};

use authingo_test_db::StopMode;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

use super::{CHECKOUT, FaultApp, Kind, Load, SLACK, Tuning, bound, timed};
use crate::support::{PASSWORD, capture_logs};

const EMAIL: &str = "ada@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_stop_under_load_is_503_until_the_restart_then_everything_is_served() {
    outage_under_load(StopMode::Fast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_stop_under_load_is_503_until_the_restart_then_everything_is_served() {
    outage_under_load(StopMode::Immediate).await;
}

/// Readers and signers-in run throughout; the database is stopped with `mode`, stays down until
/// each client has seen it refuse, and is started again.
async fn outage_under_load(mode: StopMode) {
    let app = FaultApp::own(Tuning::default()).await;
    let tokens = app.sign_up(EMAIL).await;
    let load = Load::start(&app.server, &tokens, EMAIL, 3, 2);
    let deadline = Duration::from_secs(15);
    load.wait_for("answers before the stop", 20, deadline, |_, _| true)
        .await;

    let stopping = Instant::now();
    app.cluster.stop(mode).await;
    let stopped = Instant::now();
    load.wait_for("503s during the outage", 10, deadline, |_, answer| {
        answer.started >= stopped && answer.reply.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let restarting = Instant::now();
    app.cluster.start().await;
    let restarted = Instant::now();
    for kind in [Kind::Session, Kind::SignIn] {
        load.wait_for(
            "answers of each kind after the restart",
            5,
            deadline,
            |k, answer| k == kind && answer.started >= restarted,
        )
        .await;
    }
    let answers = load.finish().await;

    let (mut sign_ins_ok, mut sign_ins_unavailable) = (0, 0);
    for (kind, answer) in &answers {
        let reply = &answer.reply;
        answer.assert_within(bound(kind.operations()));
        match reply.status {
            StatusCode::OK => match kind {
                Kind::Session => reply.assert_no_cookies(),
                Kind::SignIn => {
                    reply.tokens();
                    sign_ins_ok += 1;
                }
            },
            StatusCode::SERVICE_UNAVAILABLE => {
                reply.assert_unavailable();
                sign_ins_unavailable += usize::from(*kind == Kind::SignIn);
            }
            other => panic!("{}: {other} {}", reply.request, reply.body),
        }
        if answer.ended() < stopping || answer.started >= restarted {
            assert_eq!(reply.status, StatusCode::OK, "{kind:?} outside the outage");
        }
        if answer.started >= stopped && answer.ended() < restarting {
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{kind:?} while down"
            );
        }
    }

    // One account; a session per sign-in that succeeded, plus the sign-up's, plus at most one per
    // sign-in cut off after its insert committed (its client was told 503: outcome unknown).
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    let sessions = app.count("SELECT count(*) FROM sessions").await;
    let least = 1 + sign_ins_ok as i64;
    assert!(
        (least..=least + sign_ins_unavailable as i64).contains(&sessions),
        "{sessions} sessions after {sign_ins_ok} sign-ins (and {sign_ins_unavailable} cut off)"
    );
}

/// With the server stopped, every route that needs the database answers 503 within the
/// checkout timeout, touches no cookie, and logs why: the connection was refused (not only that
/// the pool timed out). Nothing is decided meanwhile: the tokens work once it is back.
#[tokio::test]
async fn refused_connections_are_503_within_the_checkout_timeout_and_the_log_says_why() {
    let (logs, _guard) = capture_logs();
    let app = FaultApp::own(Tuning::default()).await;
    let tokens = app.sign_up(EMAIL).await;
    let server = &app.server;
    app.cluster.stop(StopMode::Fast).await;

    let credentials = json!({"email": EMAIL, "password": PASSWORD});
    let requests = [
        server
            .get("/api/auth/session")
            .cookie(&tokens.access_cookie()),
        server.get("/api/me").cookie(&tokens.access_cookie()),
        server
            .post("/api/auth/refresh")
            .cookie(&tokens.refresh_cookie()),
        server.post("/api/auth/sign-out").cookie(&tokens.both()),
        server.post("/api/auth/sign-in").json(&credentials),
        server
            .post("/api/auth/sign-up")
            .json(&json!({"email": "eve@example.com", "password": PASSWORD, "name": "Eve"})),
    ];
    let count = requests.len();
    for request in requests {
        let answer = timed(request).await;
        answer.reply.assert_unavailable();
        // Only the wait for a connection: the first operation fails, the route stops there.
        answer.assert_within(CHECKOUT + SLACK);
    }

    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains("store unavailable"))
        .collect();
    assert_eq!(warnings.len(), count, "{logged}");
    for warning in warnings {
        assert!(
            warning.to_lowercase().contains("connection refused"),
            "the warning does not say why: {warning}"
        );
    }

    app.cluster.start().await;
    server.session(&tokens.access_cookie()).await.assert_ok();
    server.refresh(&tokens.refresh_cookie()).await.assert_ok();
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
}

/// Requests already waiting on the pool when the database comes back are served, without any
/// new request arriving to prompt the pool.
///
/// bb8 0.9 opens connections for waiters only as they arrive, and gives each attempt up after its
/// connection timeout; requests that arrive while the pool's attempts are all under way start
/// none of their own. So the scenario: a first wave of requests takes every attempt the pool may
/// make (its size), the outage outlasts those attempts, and a second wave, which started none,
/// is waiting when the database returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_when_the_database_returns_are_served_without_new_requests() {
    let checkout = Duration::from_secs(4);
    let tuning = Tuning {
        max_size: 2,
        checkout,
        ..Tuning::default()
    };
    let app = FaultApp::own(tuning).await;
    let tokens = app.sign_up(EMAIL).await;
    app.cluster.stop(StopMode::Fast).await;

    let wave = |size| {
        let mut requests = JoinSet::new();
        for _ in 0..size {
            let (server, cookie) = (app.server.clone(), tokens.access_cookie());
            requests
                .spawn(async move { timed(server.get("/api/auth/session").cookie(&cookie)).await });
        }
        requests
    };
    for answer in wave(tuning.max_size).join_all().await {
        answer.reply.assert_unavailable();
    }
    let waiting = wave(4);
    // The length of the outage: long enough for the attempts of the first wave to end (the
    // last of them 5 s after they began, with a 4 s connection timeout), well within the second
    // wave's wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.cluster.start().await;
    let restarted = Instant::now();

    for answer in waiting.join_all().await {
        answer.reply.assert_ok();
        let after = answer.ended().saturating_duration_since(restarted);
        assert!(
            after <= SLACK,
            "served {after:?} after the database returned"
        );
    }
}
