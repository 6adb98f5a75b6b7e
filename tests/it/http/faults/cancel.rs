//! Clients that go away mid-request: no connection may stay in a transaction.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::super::app as routes;
use super::{FaultApp, Tuning, wait_until};
use crate::support::PASSWORD;

/// Sign-ups held inside their transaction (the user inserted, the session waiting on a lock)
/// are cancelled two ways: HTTP clients drop their request (the connection closes mid-request),
/// and the router's own futures are dropped (as when a server task is cancelled). Once the lock
/// goes, no connection of the database is left in a transaction, no user without its session,
/// and the store serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_leave_no_connection_idle_in_transaction() {
    // Statements may wait on the lock for as long as the test holds it.
    let tuning = Tuning {
        statement: Duration::from_secs(60),
        ..Tuning::default()
    };
    let app = FaultApp::shared(tuning).await;
    let held = app
        .cluster
        .lock_table(&app.database, "sessions", "SHARE")
        .await;

    let body = |i: usize| json!({"email": format!("user{i}@example.com"), "password": PASSWORD, "name": "Ada"});
    let mut clients = JoinSet::new();
    for i in 0..4 {
        let (server, body) = (app.server.clone(), body(i));
        clients.spawn(async move { server.post("/api/auth/sign-up").json(&body).send().await });
    }
    let router = routes::app(&app.auth, "/api/auth");
    let mut handlers = JoinSet::new();
    for i in 4..8 {
        let request = Request::post("/api/auth/sign-up")
            .header("content-type", "application/json")
            .header("x-authingo-client", "true")
            .body(Body::from(body(i).to_string()))
            .unwrap();
        handlers.spawn(router.clone().oneshot(request));
    }
    wait_until(
        "eight sign-ups waiting on the lock inside their transaction",
        Duration::from_secs(10),
        || async {
            app.backends("wait_event_type = 'Lock' AND xact_start IS NOT NULL")
                .await
                == 8
        },
    )
    .await;

    clients.abort_all();
    handlers.abort_all();
    while let Some(joined) = clients.join_next().await {
        assert!(joined.unwrap_err().is_cancelled());
    }
    while let Some(joined) = handlers.join_next().await {
        assert!(joined.unwrap_err().is_cancelled());
    }
    held.release().await;

    wait_until(
        "no connection of the database left in a transaction",
        Duration::from_secs(5),
        || async { app.backends("xact_start IS NOT NULL").await == 0 },
    )
    .await;
    assert_eq!(app.users_without_session().await, 0);
    app.server.sign_up("eve@example.com").await;
    assert_eq!(app.backends("state = 'idle in transaction'").await, 0);
}
