//! The cookies: their attributes, their path under any prefix, the options that change them.

use std::collections::BTreeSet;

use authingo::auth::HttpOptions;
use axum::Router;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;

use super::app::{app, default_server};
use super::reply::{DEVICE, REFRESH, SESSION, key_set};
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb, engine};

#[tokio::test]
async fn sign_up_sets_both_cookies_with_the_exact_attributes() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;

    let before = Utc::now();
    let (reply, tokens) = server.sign_up("ada@example.com").await;
    let after = Utc::now();

    assert_eq!(reply.cookies.len(), 3, "{:?}", reply.cookies);
    let expected: BTreeSet<&str> = [
        "path", "httponly", "secure", "samesite", "max-age", "expires",
    ]
    .into_iter()
    .collect();
    let session = reply.cookie(SESSION);
    session.assert_attributes("/", "Lax", true);
    session.assert_lasts_thirty_days(before, after);
    assert_eq!(session.attribute_names(), expected, "{session:?}");
    let refresh = reply.cookie(REFRESH);
    refresh.assert_attributes("/api/auth/refresh", "Strict", true);
    refresh.assert_lasts_thirty_days(before, after);
    assert_eq!(refresh.attribute_names(), expected, "{refresh:?}");
    assert_eq!(session.expires(), refresh.expires());
    assert_ne!(tokens.access, tokens.refresh);
    let device = reply.cookie(DEVICE);
    // The mount point: sign-in and the second factor's answer both see it.
    device.assert_attributes("/api/auth", "Strict", true);
    assert_eq!(device.attribute_names(), expected, "{device:?}");
    assert_eq!(device.max_age(), Some(365 * 24 * 60 * 60));

    let body = reply.json();
    assert_eq!(key_set(&body), ["user"].into());
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["name"], "Ada");
    assert_eq!(body["user"]["email_verified"], false);
    assert!(body["user"]["id"].as_str().unwrap().starts_with("usr_"));
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_in_and_refresh_set_the_same_attributes_as_sign_up() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;

    let before = Utc::now();
    let signed_in = server.sign_in("ada@example.com", PASSWORD).await;
    signed_in.assert_ok();
    let refreshed = server.refresh(&signed_in.tokens().refresh_cookie()).await;
    let after = Utc::now();
    refreshed.assert_ok();

    // A refresh, which proves no password, gives no device cookie.
    for (reply, cookies) in [(&signed_in, 3), (&refreshed, 2)] {
        assert_eq!(reply.cookies.len(), cookies, "{:?}", reply.cookies);
        let session = reply.cookie(SESSION);
        session.assert_attributes("/", "Lax", true);
        session.assert_lasts_thirty_days(before, after);
        let refresh = reply.cookie(REFRESH);
        refresh.assert_attributes("/api/auth/refresh", "Strict", true);
        refresh.assert_lasts_thirty_days(before, after);
        assert_eq!(key_set(&reply.json()), ["user"].into());
    }
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn refresh_cookie_path_follows_the_mount_prefix() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let cases = [
        (
            "/auth",
            Router::new().nest("/auth", auth.router()),
            "/auth/refresh",
        ),
        (
            "/api/v1/auth",
            Router::new().nest("/api", Router::new().nest("/v1/auth", auth.router())),
            "/api/v1/auth/refresh",
        ),
    ];
    for (i, (prefix, router, expected)) in cases.into_iter().enumerate() {
        let server = TestServer::start(router).await;
        let email = format!("ada{i}@example.com");
        let body = json!({"email": email, "password": PASSWORD, "name": "Ada"});
        let reply = server.post_json(&format!("{prefix}/sign-up"), &body).await;
        reply.assert_ok();
        reply
            .cookie(REFRESH)
            .assert_attributes(expected, "Strict", true);
        reply.cookie(SESSION).assert_attributes("/", "Lax", true);

        // The refresh route, answering under the prefix, sets the same path again.
        let refreshed = server
            .post(&format!("{prefix}/refresh"))
            .cookie(&reply.tokens().refresh_cookie())
            .send()
            .await;
        refreshed.assert_ok();
        refreshed
            .cookie(REFRESH)
            .assert_attributes(expected, "Strict", true);

        let signed_out = server
            .post(&format!("{prefix}/sign-out"))
            .cookie(&refreshed.tokens().access_cookie())
            .send()
            .await;
        signed_out.assert_ok();
        signed_out.assert_expires_both(expected);
    }
}

#[tokio::test]
async fn refresh_path_option_overrides_the_derived_path() {
    let db = TestDb::new().await;
    let options = HttpOptions::default().refresh_path(Some("/custom/refresh".to_owned()));
    let auth = EngineBuilder::over(&db).await.http(options).build();
    let server = TestServer::start(app(&auth, "/api/auth")).await;

    let (reply, tokens) = server.sign_up("ada@example.com").await;
    reply
        .cookie(REFRESH)
        .assert_attributes("/custom/refresh", "Strict", true);
    reply.cookie(SESSION).assert_attributes("/", "Lax", true);

    let signed_out = server.sign_out(&tokens.access_cookie()).await;
    signed_out.assert_ok();
    signed_out.assert_expires_both("/custom/refresh");
}

/// A client with a cookie store, as a browser, against `secure(false)` cookies (reqwest does not
/// send `Secure` cookies over `http://`). The refresh cookie only goes to the refresh route.
#[tokio::test]
async fn browser_like_cookie_jar_flow_with_insecure_cookies() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .http(HttpOptions::default().secure(false))
        .build();
    let jar_client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let server = TestServer::start_with(app(&auth, "/api/auth"), jar_client).await;

    let (signed_up, first) = server.sign_up("ada@example.com").await;
    signed_up
        .cookie(SESSION)
        .assert_attributes("/", "Lax", false);
    signed_up
        .cookie(REFRESH)
        .assert_attributes("/api/auth/refresh", "Strict", false);
    let user_id = signed_up.user_id();

    // No cookie is given by hand from here on: the jar sends what it holds.
    let me = server.get("/api/me").send().await;
    me.assert_ok();
    assert_eq!(me.json()["user_id"], user_id);

    let refreshed = server.post("/api/auth/refresh").send().await;
    refreshed.assert_ok();
    let second = refreshed.tokens();
    assert_ne!(second.access, first.access);
    assert_ne!(second.refresh, first.refresh);

    let session = server.get("/api/auth/session").send().await;
    session.assert_ok();
    assert_eq!(session.json()["user"]["id"], user_id);

    let signed_out = server.post("/api/auth/sign-out").send().await;
    signed_out.assert_ok();
    assert_eq!(signed_out.json(), json!({"success": true}));

    // The jar dropped both cookies: nothing is sent any more.
    let me = server.get("/api/me").send().await;
    me.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    let whoami = server.get("/api/whoami").send().await;
    assert_eq!(whoami.json(), json!({"user_id": null}));
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn the_domain_option_is_on_set_and_expired_cookies() {
    let db = TestDb::new().await;
    let options = HttpOptions::default().domain(Some("example.com".to_owned()));
    let auth = EngineBuilder::over(&db).await.http(options).build();
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    let (signed_up, tokens) = server.sign_up("ada@example.com").await;
    let signed_out = server.sign_out(&tokens.access_cookie()).await;
    signed_out.assert_ok();
    for reply in [&signed_up, &signed_out] {
        for name in [SESSION, REFRESH] {
            let cookie = reply.cookie(name);
            assert_eq!(cookie.value_of("domain"), Some("example.com"), "{cookie:?}");
            assert_eq!(cookie.attr("secure"), Some(None), "{cookie:?}");
        }
    }
}

#[tokio::test]
async fn custom_cookie_names_are_set_and_read() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .http(
            HttpOptions::default()
                .cookie_names("sid", "rid")
                .device_cookie("did"),
        )
        .build();
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    let reply = server.try_sign_up("ada@example.com", PASSWORD, "Ada").await;
    reply.assert_ok();
    let names: BTreeSet<&str> = reply.cookies.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["did", "rid", "sid"].into());
    let access = reply.cookie("sid").value.clone();
    let refresh = reply.cookie("rid").value.clone();
    reply
        .cookie("rid")
        .assert_attributes("/api/auth/refresh", "Strict", true);

    // The default names mean nothing to this server.
    let default_name = server
        .get_with_cookie("/api/me", &format!("{SESSION}={access}"))
        .await;
    default_name.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    let me = server
        .get_with_cookie("/api/me", &format!("sid={access}"))
        .await;
    me.assert_ok();
    let refreshed = server.refresh(&format!("rid={refresh}")).await;
    refreshed.assert_ok();
    assert_ne!(refreshed.cookie("sid").value, access);
}
