//! The recovery routes over HTTP, with mail delivered to a real SMTP server: the answers that
//! must not tell one address from another, compared byte for byte, and a reset from its link.

use authingo::Auth;
use authingo_test_db::SmtpServer;
use reqwest::StatusCode;
use serde_json::json;

use super::app::app;
use super::reply::Reply;
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb, smtp_mailer};

async fn server(db: &TestDb, smtp: &SmtpServer, verification: bool) -> (TestServer, Auth) {
    let auth = EngineBuilder::over(db)
        .await
        .mailer(smtp_mailer(smtp))
        .with(|options| options.require_email_verification(verification))
        .build();
    (TestServer::start(app(&auth, "/api/auth")).await, auth)
}

/// Status, the raw body and every header but `date`: what tells two answers apart.
fn shape(reply: &Reply) -> (StatusCode, String, Vec<(String, String)>) {
    let mut headers: Vec<_> = reply
        .headers
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (reply.status, reply.body.clone(), headers)
}

#[tokio::test]
async fn a_reset_request_answers_byte_for_byte_the_same_for_any_address() {
    let smtp = SmtpServer::start();
    let db = TestDb::new().await;
    let (server, auth) = server(&db, &smtp, false).await;
    server.sign_up("ada@example.com").await;
    let reset = json!({ "email": "ada@example.com" });
    let existing = server
        .post_json("/api/auth/request-password-reset", &reset)
        .await;
    let nobody = json!({ "email": "nobody@example.com" });
    let unknown = server
        .post_json("/api/auth/request-password-reset", &nobody)
        .await;
    existing.assert_ok();
    assert_eq!(shape(&existing), shape(&unknown));
    assert!(existing.cookies.is_empty());

    // The link from the mail sets a new password; nobody is signed in by it.
    auth.flush_background().await;
    let token = smtp.wait_for(1).await[0].token().unwrap();
    let reset = server
        .post_json(
            "/api/auth/reset-password",
            &json!({"token": token, "new_password": "a brand new password"}),
        )
        .await;
    reset.assert_ok();
    reset.assert_no_cookies();
    let again = server
        .post_json(
            "/api/auth/reset-password",
            &json!({"token": token, "new_password": "a brand new password"}),
        )
        .await;
    again.assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    server
        .sign_in("ada@example.com", "a brand new password")
        .await
        .assert_ok();
    server.assert_no_secrets(&[PASSWORD, "a brand new password"]);
}

#[tokio::test]
async fn with_verification_required_sign_up_answers_the_same_for_a_taken_address() {
    let smtp = SmtpServer::start();
    let db = TestDb::new().await;
    let (server, auth) = server(&db, &smtp, true).await;
    let new = server.try_sign_up("ada@example.com", PASSWORD, "Ada").await;
    // The account is written after the answer, off the request path.
    auth.flush_background().await;
    assert_eq!(crate::support::rows(&db, "users").await, 1);
    let taken = server
        .try_sign_up("ada@example.com", "another password", "Eve")
        .await;
    new.assert_ok();
    assert_eq!(new.json(), json!({"verification_sent": true}));
    assert_eq!(shape(&new), shape(&taken));
    assert!(new.cookies.is_empty());

    // Unverified, the right password is refused as a wrong one, and a fresh link goes out.
    server
        .sign_in("ada@example.com", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    auth.flush_background().await;
    let messages = smtp.wait_for(3).await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(crate::support::rows(&db, "users").await, 1);
    // The newest link voided the first.
    let token = messages.iter().rev().find_map(|m| m.token()).unwrap();
    let verified = server
        .post_json("/api/auth/verify-email", &json!({ "token": token }))
        .await;
    verified.assert_ok();
    assert_eq!(verified.json()["user"]["email_verified"], json!(true));
    server
        .sign_in("ada@example.com", PASSWORD)
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_change_of_email_over_http_takes_the_password_and_the_old_address_can_cancel_it() {
    let smtp = SmtpServer::start();
    let db = TestDb::new().await;
    let (server, auth) = server(&db, &smtp, false).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let change = |body: serde_json::Value| {
        server
            .post("/api/auth/change-email")
            .cookie(&tokens.access_cookie())
            .json(&body)
            .send()
    };

    // The stolen cookie alone: no password, a wrong one.
    let missing = change(json!({"new_email": "thief@evil.example"})).await;
    missing.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(missing.json()["field"], json!("current_password"));
    change(json!({"current_password": "a guess", "new_email": "thief@evil.example"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    auth.flush_background().await;
    assert!(smtp.messages().is_empty());

    change(json!({"current_password": PASSWORD, "new_email": "ada@new.example"}))
        .await
        .assert_ok();
    auth.flush_background().await;
    let messages = smtp.wait_for(2).await;
    let notice = messages
        .iter()
        .find(|m| {
            m.header("To")
                .is_some_and(|to| to.contains("ada@example.com"))
        })
        .unwrap();
    assert!(notice.body().contains("a***@n***.example"));
    let confirm = messages
        .iter()
        .find(|m| {
            m.header("To")
                .is_some_and(|to| to.contains("ada@new.example"))
        })
        .and_then(|m| m.token())
        .unwrap();
    let cancel = |token: &str| {
        server
            .post("/api/auth/cancel-email-change")
            .json(&json!({ "token": token }))
            .send()
    };
    cancel(&notice.token().unwrap()).await.assert_ok();
    cancel(&notice.token().unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    cancel("not a token")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    server
        .post("/api/auth/cancel-email-change")
        .raw_json("{\"token\": ")
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    server
        .post_json("/api/auth/confirm-email", &json!({ "token": confirm }))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn a_verification_resend_answers_byte_for_byte_the_same_for_any_address() {
    let smtp = SmtpServer::start();
    let db = TestDb::new().await;
    let (server, auth) = server(&db, &smtp, true).await;
    server
        .try_sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .assert_ok();
    auth.flush_background().await;
    smtp.wait_for(1).await;

    let resend = |email: &str| {
        server
            .post("/api/auth/resend-verification")
            .json(&json!({ "email": email }))
            .send()
    };
    let existing = resend("ada@example.com").await;
    let unknown = resend("nobody@example.com").await;
    existing.assert_ok();
    assert_eq!(shape(&existing), shape(&unknown));
    assert!(existing.cookies.is_empty());
    resend("not an address")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    server
        .post("/api/auth/resend-verification")
        .client_header(None)
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "missing_client_header");

    // The new link verifies; nothing went to the unknown address.
    auth.flush_background().await;
    let messages = smtp.wait_for(2).await;
    assert_eq!(messages.len(), 2);
    let token = messages[1].token().unwrap();
    server
        .post_json("/api/auth/verify-email", &json!({ "token": token }))
        .await
        .assert_ok();
    server
        .sign_in("ada@example.com", PASSWORD)
        .await
        .assert_ok();
}

/// Whoever signs a stranger's address up with a password of their choosing, then signs in with
/// it, learns nothing: a new address (whose unverified account now has that password) and a
/// taken one (whose password it is not) answer alike, and neither clears the throttle.
#[tokio::test]
async fn signing_in_with_the_password_one_signed_up_with_tells_nothing_of_the_address() {
    let smtp = SmtpServer::start();
    let db = TestDb::new().await;
    let (server, auth) = server(&db, &smtp, true).await;
    server
        .try_sign_up("taken@example.com", PASSWORD, "Owner")
        .await
        .assert_ok();
    auth.flush_background().await;
    let chosen = "the attacker's own password";
    let mut answers = Vec::new();
    for address in ["taken@example.com", "new@example.com"] {
        server.try_sign_up(address, chosen, "Eve").await.assert_ok();
        auth.flush_background().await;
        let reply = server.sign_in(address, chosen).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        answers.push((reply.status, reply.json()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(crate::support::rows(&db, "users").await, 2);
    // Both attempts stay counted as failures.
    assert_eq!(
        crate::support::count(
            &db,
            "SELECT count(*) AS n FROM sign_in_failures WHERE failures >= 1"
        )
        .await,
        2
    );
}
