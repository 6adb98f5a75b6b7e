//! Refresh and sign-out: rotation, spent tokens, and what each leaves in the browser.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Barrier;

use reqwest::header::SET_COOKIE;

use super::app::{app, default_server};
use super::reply::{REFRESH, Reply, SESSION};
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb};

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

    // Within the grace window, the old refresh token gets the same pair, cookie for cookie.
    let retried = server.refresh(&old.refresh_cookie()).await;
    retried.assert_ok();
    assert_eq!(set_cookies(&retried), set_cookies(&refreshed));

    // The old access token is refused everywhere; the new one works.
    for path in ["/api/auth/session", "/api/me"] {
        let stale = server.get_with_cookie(path, &old.access_cookie()).await;
        stale.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        let fresh = server.get_with_cookie(path, &new.access_cookie()).await;
        fresh.assert_ok();
    }

    // A refresh without a refresh cookie, or with garbage, is refused and expires both.
    let none = server.post("/api/auth/refresh").send().await;
    none.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    none.assert_expires_both("/api/auth/refresh");
    let garbage = server.refresh(&format!("{REFRESH}=garbage")).await;
    garbage.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    garbage.assert_expires_both("/api/auth/refresh");

    // After the window (the rotation written a minute into the past), the old token is theft:
    // 401, both cookies expired, and the session revoked for its holder too.
    rotated_a_minute_ago(&db).await;
    let replayed = server.refresh(&old.refresh_cookie()).await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    replayed.assert_expires_both("/api/auth/refresh");
    server
        .session(&new.access_cookie())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    server
        .refresh(&new.refresh_cookie())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    server.assert_no_secrets(&[PASSWORD]);
}

/// Every `Set-Cookie` line of `reply`, as sent (sorted: the order of the lines means nothing).
fn set_cookies(reply: &Reply) -> Vec<String> {
    let mut lines: Vec<_> = reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    lines.sort();
    lines
}

/// Moves every session's last rotation a minute into the past: beyond the 10 s grace window.
async fn rotated_a_minute_ago(db: &TestDb) {
    crate::support::exec(
        &mut db.conn().await,
        "UPDATE sessions SET rotated_at = rotated_at - INTERVAL '1 minute'",
    )
    .await;
}

#[tokio::test]
async fn without_remember_me_both_cookies_end_with_the_browser_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;
    let signed_in = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "ada@example.com", "password": PASSWORD, "remember_me": false}),
        )
        .await;
    signed_in.assert_ok();
    let refreshed = server.refresh(&signed_in.tokens().refresh_cookie()).await;
    refreshed.assert_ok();
    for reply in [&signed_in, &refreshed] {
        for name in [SESSION, REFRESH] {
            let cookie = reply.cookie(name);
            assert_eq!(cookie.attr("expires"), None, "{}: {name}", reply.request);
            assert_eq!(cookie.attr("max-age"), None, "{}: {name}", reply.request);
            assert_eq!(cookie.attr("httponly"), Some(None));
        }
    }
    // Remembered (the default) cookies carry both.
    let remembered = server.sign_in("ada@example.com", PASSWORD).await;
    assert!(remembered.cookie(SESSION).attr("max-age").is_some());
    assert!(remembered.cookie(REFRESH).attr("expires").is_some());
    // The short session is capped at a day from its sign-in, in the database too.
    assert_eq!(
        crate::support::count(
            &db,
            "SELECT count(*) AS n FROM sessions WHERE NOT persistent
               AND absolute_expires_at <= created_at + INTERVAL '1 day'
               AND refresh_expires_at <= absolute_expires_at"
        )
        .await,
        1
    );
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

/// Two tabs refreshing at once: with the grace window (the default), every one of the
/// concurrent refreshes with one cookie gets 200 and byte-identical cookies, whatever the order
/// the answers arrive in; the session holds that one pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_cookie_all_get_the_same_pair() {
    let db = TestDb::new().await;
    let server = Arc::new(default_server(&db).await);
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let replies = refresh_together(&server, &tokens.refresh_cookie(), 8).await;
    let first = set_cookies(&replies[0]);
    for reply in &replies {
        reply.assert_ok();
        assert_eq!(set_cookies(reply), first);
    }
    let me = server
        .get_with_cookie("/api/me", &replies[0].tokens().access_cookie())
        .await;
    me.assert_ok();
    assert_eq!(crate::support::rows(&db, "sessions").await, 1);
    server.assert_no_secrets(&[PASSWORD]);
}

/// With the window off, of concurrent refreshes with one cookie exactly one rotates and the
/// others are refused, as the Go library does; the winner's session lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_grace_off_one_concurrent_refresh_wins() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .with(|options| options.refresh_reuse_grace(std::time::Duration::ZERO))
        .build();
    let server = Arc::new(TestServer::start(app(&auth, "/api/auth")).await);
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let replies = refresh_together(&server, &tokens.refresh_cookie(), 8).await;
    let mut winners = Vec::new();
    for reply in replies {
        if reply.status == StatusCode::OK {
            winners.push(reply.tokens());
        } else {
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        }
    }
    assert_eq!(winners.len(), 1);
    server
        .get_with_cookie("/api/me", &winners[0].access_cookie())
        .await
        .assert_ok();
    server.assert_no_secrets(&[PASSWORD]);
}

/// `callers` refreshes with `cookie`, started together behind a barrier.
async fn refresh_together(server: &Arc<TestServer>, cookie: &str, callers: usize) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (server, barrier, cookie) = (server.clone(), barrier.clone(), cookie.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                server.refresh(&cookie).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

/// A tab signs out while another refreshes: its request left with the access cookie the browser
/// held then (the refresh cookie's path keeps that one away from `/sign-out`), and arrives after
/// the rotation committed. Within the grace window it still ends the session, whose new tokens
/// stop working too; after the window the replaced access token finds nothing.
#[tokio::test]
async fn a_sign_out_that_raced_a_refresh_ends_the_session() {
    use reqwest::cookie::CookieStore as _;

    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .http(authingo::auth::HttpOptions::default().secure(false))
        .build();
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let server = TestServer::start_with(app(&auth, "/api/auth"), browser).await;
    // The second tab's request, sent by hand with what the jar held when it left.
    let tab = TestServer::start(app(&auth, "/api/auth")).await;
    let sign_out_url: reqwest::Url = format!("http://{}/api/auth/sign-out", server.addr())
        .parse()
        .unwrap();

    for window in ["within", "after"] {
        if window == "within" {
            server.sign_up("ada@example.com").await;
        } else {
            server
                .sign_in("ada@example.com", PASSWORD)
                .await
                .assert_ok();
        }
        let in_flight = jar.cookies(&sign_out_url).unwrap();
        let in_flight = in_flight.to_str().unwrap().to_owned();
        // The session cookie (and the device cookie, at the mount point), not the refresh one.
        assert!(
            in_flight
                .split("; ")
                .any(|cookie| cookie.starts_with(&format!("{SESSION}="))),
            "{in_flight}"
        );
        assert!(!in_flight.contains(REFRESH), "{in_flight}");

        let refreshed = server.post("/api/auth/refresh").send().await;
        refreshed.assert_ok();
        let new = refreshed.tokens();
        if window == "after" {
            rotated_a_minute_ago(&db).await;
        }

        let signed_out = tab.sign_out(&in_flight).await;
        signed_out.assert_ok();
        let session = server.get("/api/auth/session").send().await;
        let refresh = server.refresh(&new.refresh_cookie()).await;
        if window == "within" {
            session.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
            refresh.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
            assert_eq!(crate::support::rows(&db, "sessions").await, 0);
        } else {
            session.assert_ok();
            refresh.assert_ok();
            assert_eq!(crate::support::rows(&db, "sessions").await, 1);
        }
        // Within the window or not, the replaced access token opens nothing.
        tab.session(&in_flight)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
    server.assert_no_secrets(&[PASSWORD]);
}
