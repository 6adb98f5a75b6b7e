//! The second factor's routes end to end: enrolment, the sign-in that answers
//! `{"two_factor_required": true}` with a challenge cookie and nothing else, the code's answer
//! setting the session's cookies, the session's flag, and no secret in any body.

use authingo::EncryptionKey;
use reqwest::StatusCode;
use serde_json::json;

use super::app::app;
use super::reply::{SESSION, key_set};
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb, code_in};

const CHALLENGE: &str = "authingo_two_factor";

async fn server(db: &TestDb) -> TestServer {
    let auth = EngineBuilder::over(db)
        .await
        .rate_limits(None)
        .with(|options| options.encryption_key(EncryptionKey::new([9; 32])))
        .ready()
        .await;
    TestServer::start(app(&auth, "/api/auth")).await
}

#[tokio::test]
async fn a_second_factor_over_http_from_enrolment_to_a_signed_in_session() {
    let db = TestDb::new().await;
    let server = server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let access = tokens.access_cookie();

    let enrolment = server
        .post("/api/auth/two-factor/enable")
        .cookie(&access)
        .json(&json!({"current_password": PASSWORD}))
        .send()
        .await;
    enrolment.assert_ok();
    let body = enrolment.json();
    assert_eq!(key_set(&body), ["otpauth_uri", "qr_svg", "secret"].into());
    let secret = body["secret"].as_str().unwrap().to_owned();
    server
        .post("/api/auth/two-factor/confirm")
        .cookie(&access)
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let confirmed = server
        .post("/api/auth/two-factor/confirm")
        .cookie(&access)
        .json(&json!({"code": code_in(&secret, 0)}))
        .send()
        .await;
    confirmed.assert_ok();
    let codes = confirmed.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(codes.len(), 10);
    let session = server.session(&access).await;
    session.assert_ok();
    assert_eq!(session.json()["user"]["two_factor_enabled"], true);
    server
        .post("/api/auth/two-factor/enable")
        .cookie(&access)
        .json(&json!({"current_password": PASSWORD}))
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "two_factor_already_enabled");

    // The password alone: a challenge cookie, no session cookie.
    let signed_in = server.sign_in("ada@example.com", PASSWORD).await;
    signed_in.assert_ok();
    assert_eq!(signed_in.json(), json!({"two_factor_required": true}));
    assert!(
        signed_in.cookies.iter().all(|c| c.name == CHALLENGE),
        "{:?}",
        signed_in.cookies
    );
    let challenge = signed_in.cookie(CHALLENGE);
    challenge.assert_attributes("/api/auth/two-factor", "Strict", true);
    assert_eq!(
        challenge.max_age().map(|age| age > 290 && age <= 300),
        Some(true)
    );
    let cookie = format!("{CHALLENGE}={}", challenge.value);

    server
        .post("/api/auth/two-factor/verify")
        .cookie(&cookie)
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    server
        .post("/api/auth/two-factor/verify")
        .json(&json!({"code": code_in(&secret, 1)}))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_challenge");
    let verified = server
        .post("/api/auth/two-factor/verify")
        .cookie(&cookie)
        .json(&json!({"code": code_in(&secret, 1)}))
        .send()
        .await;
    verified.assert_ok();
    assert_eq!(verified.json()["user"]["email"], "ada@example.com");
    verified.cookie(CHALLENGE).assert_removal();
    let opened = verified.tokens();
    server.session(&opened.access_cookie()).await.assert_ok();
    assert!(verified.cookies.iter().any(|c| c.name == SESSION));

    // A recovery code in place of the code, once.
    let again = server.sign_in("ada@example.com", PASSWORD).await;
    let cookie = format!("{CHALLENGE}={}", again.cookie(CHALLENGE).value);
    let recovered = server
        .post("/api/auth/two-factor/verify")
        .cookie(&cookie)
        .json(&json!({"recovery_code": codes[0]}))
        .send()
        .await;
    recovered.assert_ok();
    let status = server
        .get_with_cookie("/api/auth/two-factor", &opened.access_cookie())
        .await;
    assert_eq!(
        status.json(),
        json!({"enabled": true, "recovery_codes_left": 9})
    );

    server.assert_no_secrets(&[PASSWORD]);
}
