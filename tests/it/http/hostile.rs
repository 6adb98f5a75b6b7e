//! What browsers and strangers send that the routes must take in their stride: cookies that are
//! not ASCII, paths and methods that do not exist, addresses with invisible characters.

use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use serde_json::json;

use super::app::default_server;
use super::reply::Reply;
use crate::support::{PASSWORD, TestDb};

/// A cookie of the site's own, in raw UTF-8 as browsers send it.
const PREF: &[u8] = "pref=café".as_bytes();

#[tokio::test]
async fn a_non_ascii_cookie_beside_the_session_keeps_the_user_signed_in() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let session = server
        .get("/api/auth/session")
        .cookie(&tokens.access_cookie())
        .raw_cookie(PREF)
        .send()
        .await;
    session.assert_ok();

    let refreshed = server
        .post("/api/auth/refresh")
        .raw_cookie(PREF)
        .cookie(&tokens.refresh_cookie())
        .send()
        .await;
    refreshed.assert_ok();
    let tokens = refreshed.tokens();

    let signed_out = server
        .post("/api/auth/sign-out")
        .raw_cookie(PREF)
        .cookie(&tokens.both())
        .send()
        .await;
    signed_out.assert_ok();
    // Ended on the server, not only in the browser.
    server
        .session(&tokens.access_cookie())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

#[tokio::test]
async fn an_unknown_path_or_method_answers_the_json_error() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server
        .get("/api/auth/no-such-route")
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    server
        .get("/api/auth/sign-in")
        .send()
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[track_caller]
fn assert_no_store(reply: &Reply) {
    assert_eq!(
        reply
            .headers
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{}",
        reply.request
    );
}

#[tokio::test]
async fn no_answer_of_the_routes_may_be_cached() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (signed_up, tokens) = server.sign_up("ada@example.com").await;
    assert_no_store(&signed_up);
    assert_no_store(&server.sign_in("ada@example.com", PASSWORD).await);
    assert_no_store(&server.sign_in("ada@example.com", "wrong password").await);
    assert_no_store(&server.session(&tokens.access_cookie()).await);
    let refreshed = server.refresh(&tokens.refresh_cookie()).await;
    assert_no_store(&refreshed);
    assert_no_store(&server.sign_out(&refreshed.tokens().both()).await);
    assert_no_store(&server.get("/api/auth/no-such-route").send().await);
}

#[tokio::test]
async fn invisible_characters_and_decomposed_spellings_do_not_make_new_accounts() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server
        .try_sign_up("jos\u{e9}@example.com", PASSWORD, "Jos\u{e9}")
        .await
        .assert_ok();
    // The same address typed with a combining accent (NFD) is the same account.
    server
        .try_sign_up("jose\u{301}@example.com", PASSWORD, "Jose")
        .await
        .assert_error(StatusCode::CONFLICT, "email_taken");
    server
        .sign_in("JOSE\u{301}@example.com", PASSWORD)
        .await
        .assert_ok();
    for (email, name) in [
        ("jos\u{e9}\u{200B}@example.com", "Jos\u{e9}"),
        ("\u{FEFF}jose@example.com", "Jose"),
        ("jose@exam\u{00AD}ple.com", "Jose"),
        ("ada@example.com", "Ada\u{202E}ecalevoL"),
    ] {
        let reply = server.try_sign_up(email, PASSWORD, name).await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        assert!(
            error["message"].as_str().unwrap().contains("invisible"),
            "{error}"
        );
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    server
        .post_json(
            "/api/auth/sign-up",
            &json!({"email": long_local, "password": PASSWORD, "name": "A"}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(crate::support::rows(&db, "users").await, 1);
}
