//! The database goes away and comes back: stopped (`fast` and `immediate`) and restarted under
//! load, and refusing connections.

use std::time::{Duration, Instant};

use authingo_test_db::StopMode;
use reqwest::StatusCode;
use serde_json::json;

use super::{CHECKOUT, FaultApp, Kind, Load, SLACK, Tuning, bound, timed};
use crate::fixtures::PASSWORD;

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
/// checkout timeout and touches no cookie. Nothing is decided meanwhile: the tokens work once it
/// is back.
#[tokio::test]
async fn refused_connections_are_503_within_the_checkout_timeout() {
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
    for request in requests {
        let answer = timed(request).await;
        answer.reply.assert_unavailable();
        // Only the wait for a connection: the first operation fails, the route stops there.
        answer.assert_within(CHECKOUT + SLACK);
    }

    app.cluster.start().await;
    server.session(&tokens.access_cookie()).await.assert_ok();
    server.refresh(&tokens.refresh_cookie()).await.assert_ok();
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
}
