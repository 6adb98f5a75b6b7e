//! A locked `sessions` table: statements the server cancels (statement and lock timeouts,
//! SQLSTATE 57014 and 55P03), and statements the store gives up on (its own bound).

use std::time::Duration;

use authingo_test_db::Cluster;
use serde_json::json;

use super::{FaultApp, SLACK, Tuning, bound, concurrent_reads, timed, wait_until};
use crate::support::{PASSWORD, migrate};

const EMAIL: &str = "ada@example.com";

/// The server's own timeout on the database, far below the store's bound in these tests.
const SERVER_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
enum ServerTimeout {
    Statement,
    Lock,
}

#[tokio::test]
async fn a_statement_the_server_cancels_for_its_statement_timeout_is_503_never_500() {
    cancelled_by_the_server(ServerTimeout::Statement).await;
}

#[tokio::test]
async fn a_statement_the_server_cancels_for_its_lock_timeout_is_503_never_500() {
    cancelled_by_the_server(ServerTimeout::Lock).await;
}

/// With `sessions` locked and the database's `timeout` set, every route that touches the table
/// is cancelled by the server: 503 with `Retry-After`, no cookie touched, nothing written (the
/// sign-up's user goes with its session). The store's own bound is set far away, so that only
/// the server's cancellation can answer in time.
async fn cancelled_by_the_server(timeout: ServerTimeout) {
    let cluster = Cluster::shared().await;
    let database = cluster.migrated_database(migrate).await;
    match timeout {
        ServerTimeout::Statement => {
            cluster
                .set_statement_timeout(&database, Some(SERVER_TIMEOUT))
                .await;
        }
        ServerTimeout::Lock => {
            cluster
                .set_lock_timeout(&database, Some(SERVER_TIMEOUT))
                .await
        }
    }
    let tuning = Tuning {
        statement: Duration::from_secs(60),
        ..Tuning::default()
    };
    let app = FaultApp::on_database(cluster, database, tuning).await;
    let tokens = app.sign_up(EMAIL).await;
    let server = &app.server;

    let held = app
        .cluster
        .lock_table(&app.database, "sessions", "ACCESS EXCLUSIVE")
        .await;
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
        answer.assert_within(SERVER_TIMEOUT + SLACK);
    }
    held.release().await;

    assert_eq!(
        app.count("SELECT count(*) FROM users").await,
        1,
        "{timeout:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    server.session(&tokens.access_cookie()).await.assert_ok();
    server.refresh(&tokens.refresh_cookie()).await.assert_ok();
}

/// Fifty concurrent reads behind an `ACCESS EXCLUSIVE` lock on `sessions`, held until they have
/// all answered: each answers 503 within the bound (without the store's statement bound, one
/// per pool connection hung for as long as the lock was held), the store cancels on the server
/// what it gave up on, and serves normally once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reads_behind_a_held_lock_answer_within_the_bound_and_are_served_after_it() {
    let app = FaultApp::shared(Tuning::default()).await;
    let tokens = app.sign_up(EMAIL).await;
    let cookie = tokens.access_cookie();

    let held = app
        .cluster
        .lock_table(&app.database, "sessions", "ACCESS EXCLUSIVE")
        .await;
    for answer in concurrent_reads(&app, &cookie, 50).await {
        answer.reply.assert_unavailable();
        answer.assert_within(bound(1));
    }
    wait_until(
        "no statement of the store still waiting on the lock",
        Duration::from_secs(5),
        || async { app.backends("wait_event_type = 'Lock'").await == 0 },
    )
    .await;
    held.release().await;

    for answer in concurrent_reads(&app, &cookie, 50).await {
        answer.reply.assert_ok();
        answer.assert_within(bound(1));
    }
}
