//! Refresh and sign-out: rotation, spent tokens, and what each leaves in the browser.

use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::app::default_server;
use super::server::{REFRESH, Tokens};
use crate::db::TestDb;
use crate::fixtures::PASSWORD;

#[tokio::test]
async fn refresh_rotates_both_cookies_and_refuses_the_old_ones() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (signed_up, old) = server.sign_up("ada@example.com").await;
    let user_id = signed_up.json()["user"]["id"].clone();

    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, old.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(refreshed.json()["user"]["id"], user_id);
    let new = Tokens::of(&refreshed);
    assert_ne!(new.access, old.access);
    assert_ne!(new.refresh, old.refresh);

    // The old refresh token is spent: 401, and both cookies are expired.
    let replayed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, old.refresh_cookie()),
        )
        .await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    replayed.assert_expires_both("/api/auth/refresh");

    // The old access token is refused everywhere; the new one works.
    for path in ["/api/auth/session", "/api/me"] {
        let stale = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, old.access_cookie()),
            )
            .await;
        stale.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        let fresh = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, new.access_cookie()),
            )
            .await;
        assert_eq!(fresh.status, StatusCode::OK, "{path}: {}", fresh.body);
    }

    // A refresh without a refresh cookie, or with garbage, is refused the same way.
    let none = server
        .send(server.client(Method::POST, "/api/auth/refresh"))
        .await;
    none.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    none.assert_expires_both("/api/auth/refresh");
    let garbage = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, format!("{REFRESH}=garbage")),
        )
        .await;
    garbage.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    garbage.assert_expires_both("/api/auth/refresh");

    // The replay of the spent token did not end the rotated session.
    let still = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, new.refresh_cookie()),
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_out_expires_both_cookies_and_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({"success": true}));
    reply.assert_expires_both("/api/auth/refresh");

    for path in ["/api/auth/session", "/api/me", "/api/profile"] {
        let after = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, tokens.access_cookie()),
            )
            .await;
        after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
    // The session's refresh token went with it.
    let refresh = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    refresh.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");

    // Signing out again, or with no cookie at all, still succeeds and expires both.
    for cookie in [Some(tokens.access_cookie()), None] {
        let mut request = server.client(Method::POST, "/api/auth/sign-out");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let again = server.send(request).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.json(), json!({"success": true}));
        again.assert_expires_both("/api/auth/refresh");
    }
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_out_with_only_the_refresh_cookie_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.assert_expires_both("/api/auth/refresh");
    let after = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

/// The Go library's browser client posts `Content-Type: application/json` with no body.
#[tokio::test]
async fn refresh_and_sign_out_accept_json_content_type_with_an_empty_body() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(CONTENT_TYPE, "application/json")
                .header(COOKIE, tokens.refresh_cookie())
                .body(""),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let rotated = Tokens::of(&refreshed);

    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(CONTENT_TYPE, "application/json")
                .header(COOKIE, rotated.access_cookie())
                .body(""),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    assert_eq!(signed_out.json(), json!({"success": true}));
    signed_out.assert_expires_both("/api/auth/refresh");
    let after = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, rotated.access_cookie()),
        )
        .await;
    after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

/// Of concurrent refreshes with one refresh cookie, one rotates; the others are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_refreshes_with_one_cookie_one_succeeds() {
    const CALLERS: usize = 8;
    let db = TestDb::new().await;
    let server = std::sync::Arc::new(default_server(&db).await);
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (server, barrier, cookie) =
                (server.clone(), barrier.clone(), tokens.refresh_cookie());
            tokio::spawn(async move {
                let request = server
                    .client(Method::POST, "/api/auth/refresh")
                    .header(COOKIE, cookie);
                barrier.wait().await;
                server.send(request).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == StatusCode::OK {
            winners.push(Tokens::of(&reply));
        } else {
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        }
    }
    assert_eq!(winners.len(), 1);
    let me = server
        .send(
            server
                .client(Method::GET, "/api/me")
                .header(COOKIE, winners[0].access_cookie()),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    server.assert_no_secrets(&[PASSWORD]);
}
