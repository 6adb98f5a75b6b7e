//! The database stays up but serves badly: its backends are killed under load, it turns
//! read-only, or it freezes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{FaultApp, Load, Tuning, bound, concurrent_reads, timed, wait_until};
use crate::support::PASSWORD;

const EMAIL: &str = "ada@example.com";

/// Every connection of the pool is ended five times while clients read: each read whose
/// connection died under it runs again on another, so none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_killed_under_read_load_fail_no_read() {
    let app = FaultApp::shared(Tuning::default()).await;
    let tokens = app.sign_up(EMAIL).await;
    let load = Load::start(&app.server, &tokens, EMAIL, 4, 0);
    let deadline = Duration::from_secs(15);
    let mut killed = 0;
    for round in 1..=5 {
        load.wait_for("reads between the kills", 20 * round, deadline, |_, _| true)
            .await;
        killed += app.cluster.terminate_backends(&app.database).await;
    }
    load.wait_for("reads after the kills", 120, deadline, |_, _| true)
        .await;
    let answers = load.finish().await;

    assert!(killed >= 5, "only {killed} backends were killed");
    for (kind, answer) in &answers {
        answer.reply.assert_ok();
        answer.reply.assert_no_cookies();
        answer.assert_within(bound(kind.operations()));
    }
}

/// A read-only database (a demoted primary, say) serves every read and answers every write
/// 503, with nothing written and no cookie touched; writes work again once it is writable.
#[tokio::test]
async fn a_read_only_database_serves_reads_and_answers_writes_503() {
    let app = FaultApp::own(Tuning::default()).await;
    let tokens = app.sign_up(EMAIL).await;
    let server = &app.server;
    app.cluster.set_read_only(true).await;

    for _ in 0..5 {
        for path in ["/api/auth/session", "/api/me"] {
            let answer = timed(server.get(path).cookie(&tokens.access_cookie())).await;
            answer.reply.assert_ok();
            answer.assert_within(bound(1));
        }
    }
    let credentials = json!({"email": EMAIL, "password": PASSWORD});
    let writes = [
        (2, server.post("/api/auth/sign-in").json(&credentials)),
        (
            1,
            server
                .post("/api/auth/sign-up")
                .json(&json!({"email": "eve@example.com", "password": PASSWORD, "name": "Eve"})),
        ),
        (
            1,
            server
                .post("/api/auth/refresh")
                .cookie(&tokens.refresh_cookie()),
        ),
        (1, server.post("/api/auth/sign-out").cookie(&tokens.both())),
    ];
    for (operations, request) in writes {
        let answer = timed(request).await;
        answer.reply.assert_unavailable();
        answer.assert_within(bound(operations));
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);

    app.cluster.set_read_only(false).await;
    server.sign_in(EMAIL, PASSWORD).await.assert_ok();
    let refreshed = server.refresh(&tokens.refresh_cookie()).await;
    refreshed.assert_ok();
    server
        .sign_out(&refreshed.tokens().both())
        .await
        .assert_ok();
}

/// A database whose processes are all stopped (SIGSTOP) answers nothing, not even a new
/// connection: every request still gets its 503 within the bound, and once the processes run
/// again the store serves as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_gets_answers_within_the_bound_and_is_served_after_the_thaw() {
    let app = FaultApp::own(Tuning::default()).await;
    let tokens = app.sign_up(EMAIL).await;

    app.cluster.freeze();
    for answer in concurrent_reads(&app, &tokens.access_cookie(), 20).await {
        answer.reply.assert_unavailable();
        answer.assert_within(bound(1));
    }
    let answer = timed(app.server.post("/api/auth/sign-in").json(&json!({
        "email": EMAIL,
        "password": PASSWORD,
    })))
    .await;
    answer.reply.assert_unavailable();
    answer.assert_within(bound(2));
    app.cluster.thaw();

    let cookie = tokens.access_cookie();
    wait_until(
        "a read served after the thaw",
        Duration::from_secs(10),
        || async { app.server.session(&cookie).await.status == StatusCode::OK },
    )
    .await;
    for answer in concurrent_reads(&app, &cookie, 20).await {
        answer.reply.assert_ok();
        answer.assert_within(bound(1));
    }
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
}
