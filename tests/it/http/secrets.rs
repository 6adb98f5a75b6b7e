//! No body ever carries a secret.

use reqwest::header::COOKIE;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::app::default_server;
use super::server::Tokens;
use crate::db::TestDb;
use crate::fixtures::PASSWORD;

/// A whole flow, every body checked against every token the cookies carried.
#[tokio::test]
async fn no_body_ever_carries_a_password_hash_or_token() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let signed_in = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    let second = Tokens::of(&signed_in);
    for tokens in [&first, &second] {
        for path in [
            "/api/auth/session",
            "/api/me",
            "/api/profile",
            "/api/whoami",
        ] {
            let reply = server
                .send(
                    server
                        .client(Method::GET, path)
                        .header(COOKIE, tokens.access_cookie()),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        }
    }
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, first.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let replayed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, first.refresh_cookie()),
        )
        .await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, second.both()),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    // Three pairs were issued: by sign-up, sign-in and refresh.
    let issued = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|reply| &reply.cookies)
        .filter(|cookie| !cookie.value.is_empty())
        .count();
    assert_eq!(issued, 6);
    server.assert_no_secrets(&[PASSWORD]);
}
