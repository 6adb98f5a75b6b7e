//! No body ever carries a secret.

use reqwest::StatusCode;

use super::app::default_server;
use super::reply::{REFRESH, unknown_refresh_token};
use crate::support::{PASSWORD, TestDb};

/// A whole flow, every body checked against every token the cookies carried.
#[tokio::test]
async fn no_body_ever_carries_a_password_hash_or_token() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let signed_in = server.sign_in("ada@example.com", PASSWORD).await;
    signed_in.assert_ok();
    let second = signed_in.tokens();
    for tokens in [&first, &second] {
        for path in [
            "/api/auth/session",
            "/api/me",
            "/api/profile",
            "/api/whoami",
        ] {
            let reply = server.get_with_cookie(path, &tokens.access_cookie()).await;
            reply.assert_ok();
        }
    }
    server.refresh(&first.refresh_cookie()).await.assert_ok();
    // A replay within the grace window carries the same pair again: no new token.
    let replayed = server.refresh(&first.refresh_cookie()).await;
    replayed.assert_ok();
    server
        .refresh(&format!("{REFRESH}={}", unknown_refresh_token()))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    server.sign_out(&second.both()).await.assert_ok();
    // Three pairs were issued: by sign-up, sign-in and refresh.
    assert_eq!(server.tokens_issued(), 6);
    server.assert_no_secrets(&[PASSWORD]);
}
