//! Refresh and sign-out: rotation, spent tokens, and what each leaves in the browser.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Barrier;

use super::app::default_server;
use super::reply::REFRESH;
use crate::db::TestDb;
use crate::fixtures::PASSWORD;

#[tokio::test]
async fn refresh_rotates_both_cookies_and_refuses_the_old_ones() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (signed_up, old) = server.sign_up("ada@example.com").await;

    let refreshed = server.refresh(&old.refresh_cookie()).await;
    refreshed.assert_ok();
    assert_eq!(refreshed.user_id(), signed_up.user_id());
    let new = refreshed.tokens();
    assert_ne!(new.access, old.access);
    assert_ne!(new.refresh, old.refresh);

    // The old refresh token is spent: 401, and both cookies are expired.
    let replayed = server.refresh(&old.refresh_cookie()).await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    replayed.assert_expires_both("/api/auth/refresh");

    // The old access token is refused everywhere; the new one works.
    for path in ["/api/auth/session", "/api/me"] {
        let stale = server.get_with_cookie(path, &old.access_cookie()).await;
        stale.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        let fresh = server.get_with_cookie(path, &new.access_cookie()).await;
        fresh.assert_ok();
    }

    // A refresh without a refresh cookie, or with garbage, is refused the same way.
    let none = server.post("/api/auth/refresh").send().await;
    none.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    none.assert_expires_both("/api/auth/refresh");
    let garbage = server.refresh(&format!("{REFRESH}=garbage")).await;
    garbage.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    garbage.assert_expires_both("/api/auth/refresh");

    // The replay of the spent token did not end the rotated session.
    let still = server.refresh(&new.refresh_cookie()).await;
    still.assert_ok();
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_out_expires_both_cookies_and_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let reply = server.sign_out(&tokens.access_cookie()).await;
    reply.assert_ok();
    assert_eq!(reply.json(), json!({"success": true}));
    reply.assert_expires_both("/api/auth/refresh");

    for path in ["/api/auth/session", "/api/me", "/api/profile"] {
        let after = server.get_with_cookie(path, &tokens.access_cookie()).await;
        after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
    // The session's refresh token went with it.
    let refresh = server.refresh(&tokens.refresh_cookie()).await;
    refresh.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");

    // Signing out again, or with no cookie at all, still succeeds and expires both.
    let again = server.sign_out(&tokens.access_cookie()).await;
    let without_cookie = server.post("/api/auth/sign-out").send().await;
    for reply in [again, without_cookie] {
        reply.assert_ok();
        assert_eq!(reply.json(), json!({"success": true}));
        reply.assert_expires_both("/api/auth/refresh");
    }
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_out_with_only_the_refresh_cookie_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let reply = server.sign_out(&tokens.refresh_cookie()).await;
    reply.assert_ok();
    reply.assert_expires_both("/api/auth/refresh");
    let after = server.session(&tokens.access_cookie()).await;
    after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

/// The Go library's browser client posts `Content-Type: application/json` with no body.
#[tokio::test]
async fn refresh_and_sign_out_accept_json_content_type_with_an_empty_body() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let refreshed = server
        .post("/api/auth/refresh")
        .content_type("application/json")
        .cookie(&tokens.refresh_cookie())
        .body("")
        .send()
        .await;
    refreshed.assert_ok();
    let rotated = refreshed.tokens();

    let signed_out = server
        .post("/api/auth/sign-out")
        .content_type("application/json")
        .cookie(&rotated.access_cookie())
        .body("")
        .send()
        .await;
    signed_out.assert_ok();
    assert_eq!(signed_out.json(), json!({"success": true}));
    signed_out.assert_expires_both("/api/auth/refresh");
    let after = server.session(&rotated.access_cookie()).await;
    after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

/// Of concurrent refreshes with one refresh cookie, one rotates; the others are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_refreshes_with_one_cookie_one_succeeds() {
    const CALLERS: usize = 8;
    let db = TestDb::new().await;
    let server = Arc::new(default_server(&db).await);
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (server, barrier, cookie) =
                (server.clone(), barrier.clone(), tokens.refresh_cookie());
            tokio::spawn(async move {
                barrier.wait().await;
                server.refresh(&cookie).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == StatusCode::OK {
            winners.push(reply.tokens());
        } else {
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        }
    }
    assert_eq!(winners.len(), 1);
    let me = server
        .get_with_cookie("/api/me", &winners[0].access_cookie())
        .await;
    me.assert_ok();
    server.assert_no_secrets(&[PASSWORD]);
}
