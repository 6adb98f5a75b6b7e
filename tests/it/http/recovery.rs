//! The recovery routes over HTTP, with mail delivered to a real SMTP server: the answers that
//! must not tell one address from another, compared byte for byte, and a reset from its link.

use std::sync::Arc;

use authingo::mail::{SmtpMailer, SmtpSecurity};
use authingo::{Auth, Options};
use authingo_test_db::SmtpServer;
use reqwest::StatusCode;
use serde_json::json;

use super::app::app;
use super::reply::Reply;
use super::server::TestServer;
use crate::db::TestDb;
use crate::fixtures::{FAST, PASSWORD};

async fn server(db: &TestDb, smtp: &SmtpServer, verification: bool) -> (TestServer, Auth) {
    let mailer = SmtpMailer::new(
        "127.0.0.1",
        smtp.port(),
        SmtpSecurity::None,
        None,
        "no-reply@example.com",
    )
    .unwrap();
    let auth = Auth::new(
        Options::new(db.store().await)
            .argon2(FAST)
            .cleanup_interval(None)
            .mailer(Arc::new(mailer))
            .require_email_verification(verification),
    )
    .unwrap();
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
    assert_eq!(crate::fixtures::rows(&db, "users").await, 1);
    let taken = server
        .try_sign_up("ada@example.com", "another password", "Eve")
        .await;
    new.assert_ok();
    assert_eq!(new.json(), json!({"verification_sent": true}));
    assert_eq!(shape(&new), shape(&taken));
    assert!(new.cookies.is_empty());

    server
        .sign_in("ada@example.com", PASSWORD)
        .await
        .assert_error(StatusCode::FORBIDDEN, "email_not_verified");
    auth.flush_background().await;
    let messages = smtp.wait_for(2).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(crate::fixtures::rows(&db, "users").await, 1);
    let token = messages.iter().find_map(|m| m.token()).unwrap();
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
