//! The routes that manage sessions: the list with the current one marked, revoking one or the
//! others, signing out everywhere, changing the password, and the client address they record.

use std::net::IpAddr;

use authingo::auth::HttpOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::app::{app, default_server};
use super::reply::{Reply, Tokens};
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb, exec};

/// The sessions `GET /sessions` lists for `tokens`.
async fn listed(server: &TestServer, tokens: &Tokens) -> Vec<Value> {
    let reply = server
        .get_with_cookie("/api/auth/sessions", &tokens.access_cookie())
        .await;
    reply.assert_ok();
    reply.json()["sessions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_list_shows_the_users_sessions_with_the_current_one_marked_and_no_secret() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let second = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    server.sign_up("bob@example.com").await;

    let sessions = listed(&server, &second).await;
    assert_eq!(sessions.len(), 2);
    let mut keys: Vec<_> = sessions[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "current",
            "id",
            "ip",
            "last_used_at",
            "user_agent"
        ]
    );
    let current: Vec<_> = sessions.iter().map(|s| s["current"].clone()).collect();
    // Most recently used first: the sign-in, which is the one asking.
    assert_eq!(current, [json!(true), json!(false)]);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert!(sessions[0]["user_agent"].is_string() || sessions[0]["user_agent"].is_null());
    assert_eq!(listed(&server, &first).await[1]["current"], json!(true));
    // Without the header or the cookie: the usual 403 and 401.
    server
        .get("/api/auth/sessions")
        .cookie(&second.access_cookie())
        .client_header(None)
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "missing_client_header");
    server
        .get("/api/auth/sessions")
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_session");
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn revoking_another_users_session_answers_exactly_as_an_unknown_id() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, ada) = server.sign_up("ada@example.com").await;
    let (_, bob) = server.sign_up("bob@example.com").await;
    let bobs_id = listed(&server, &bob).await[0]["id"].clone();
    let revoke = |id: Value| {
        server
            .post("/api/auth/sessions/revoke")
            .cookie(&ada.access_cookie())
            .json(&json!({ "id": id }))
            .send()
    };
    let others = revoke(bobs_id).await;
    let unknown = revoke(json!("ses_00000000000000000000000000000000")).await;
    others.assert_error(StatusCode::NOT_FOUND, "session_not_found");
    assert_eq!(
        (others.status, &others.body, others.cookies.len()),
        (unknown.status, &unknown.body, unknown.cookies.len())
    );
    assert!(others.cookies.is_empty());
    server.session(&bob.access_cookie()).await.assert_ok();

    // Its own other session: ended, and this one's cookies untouched.
    let phone = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    let phone_id = listed(&server, &phone).await[0]["id"].clone();
    let ended = revoke(phone_id).await;
    ended.assert_ok();
    ended.assert_no_cookies();
    server
        .session(&phone.access_cookie())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    // Its own current session: ended, and both cookies expired.
    let own_id = listed(&server, &ada).await[0]["id"].clone();
    let own = revoke(own_id).await;
    own.assert_ok();
    own.assert_expires_both("/api/auth/refresh");
}

#[tokio::test]
async fn revoke_others_keeps_exactly_the_current_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let second = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    let third = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    let reply = server
        .post("/api/auth/sessions/revoke-others")
        .cookie(&second.access_cookie())
        .send()
        .await;
    reply.assert_ok();
    assert_eq!(reply.json(), json!({"revoked": 2}));
    server.session(&second.access_cookie()).await.assert_ok();
    for gone in [&first, &third] {
        server
            .session(&gone.access_cookie())
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
}

#[tokio::test]
async fn signing_out_everywhere_needs_a_fresh_session_then_ends_all_and_expires_the_cookies() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let second = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    exec(
        &mut db.conn().await,
        "UPDATE sessions SET created_at = NOW() - INTERVAL '25 hours'",
    )
    .await;
    let stale = server
        .post("/api/auth/sign-out-everywhere")
        .cookie(&first.both())
        .send()
        .await;
    stale.assert_error(StatusCode::FORBIDDEN, "reauthentication_required");
    stale.assert_no_cookies();
    server.session(&second.access_cookie()).await.assert_ok();

    let fresh = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    let everywhere = server
        .post("/api/auth/sign-out-everywhere")
        .cookie(&fresh.both())
        .send()
        .await;
    everywhere.assert_ok();
    everywhere.assert_expires_both("/api/auth/refresh");
    for gone in [&first, &second, &fresh] {
        server
            .session(&gone.access_cookie())
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_the_new_one_signs_in() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let second = server.sign_in("ada@example.com", PASSWORD).await.tokens();
    let change = |current: &str, new: &str| {
        server
            .post("/api/auth/change-password")
            .cookie(&second.access_cookie())
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    change("wrong password", "a brand new password")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let short = change(PASSWORD, "short").await;
    let error = short.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(error["field"], "password");
    server.session(&first.access_cookie()).await.assert_ok();

    let changed = change(PASSWORD, "a brand new password").await;
    changed.assert_ok();
    changed.assert_no_cookies();
    server.session(&second.access_cookie()).await.assert_ok();
    server
        .session(&first.access_cookie())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    server
        .sign_in("ada@example.com", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    server
        .sign_in("ada@example.com", "a brand new password")
        .await
        .assert_ok();
    server.assert_no_secrets(&[PASSWORD, "a brand new password"]);
}

#[tokio::test]
async fn a_forged_forwarded_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let db = TestDb::new().await;
    async fn forged(server: &TestServer) -> Reply {
        server
            .post("/api/auth/sign-up")
            .header("x-forwarded-for", "6.6.6.6")
            .header("user-agent", "Forger/1.0")
            .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
            .send()
            .await
    }
    let server = default_server(&db).await;
    let tokens = forged(&server).await.tokens();
    let recorded = &listed(&server, &tokens).await[0];
    assert_eq!(recorded["ip"], "127.0.0.1");
    assert_eq!(recorded["user_agent"], "Forger/1.0");

    // Behind a proxy on this host, trusted: the forwarded address is the client's.
    let db = TestDb::new().await;
    let loopback: IpAddr = [127, 0, 0, 1].into();
    let auth = EngineBuilder::over(&db)
        .await
        .http(HttpOptions::default().trusted_proxies([loopback]))
        .build();
    let trusting = TestServer::start(app(&auth, "/api/auth")).await;
    let tokens = forged(&trusting).await.tokens();
    assert_eq!(listed(&trusting, &tokens).await[0]["ip"], "6.6.6.6");
}
