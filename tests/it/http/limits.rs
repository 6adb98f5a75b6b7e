//! The abuse limits over HTTP: 429 `too_many_requests` with `Retry-After`, 429 `account_locked`,
//! 503 `busy`, 400 `password_too_common`, and the client address they count by, which forwarded
//! headers set only from a trusted proxy.

use authingo::{RequestContext, SignUp};
use std::net::IpAddr;
use std::time::Duration;

use authingo::Options;
use authingo::auth::HttpOptions;
use authingo::limits::{RateLimit, RateLimits, SignInThrottle};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::json;

use super::app::app;
use super::reply::{DEVICE, Reply};
use super::server::TestServer;
use crate::support::{EngineBuilder, Gated, PASSWORD, TestDb, exec};

const FIVE_MINUTES: Duration = Duration::from_secs(300);

/// Every route limited to `max` per five minutes per address; no failed-sign-in throttle.
fn each(max: u32) -> RateLimits {
    let limit = Some(RateLimit::new(max, FIVE_MINUTES));
    RateLimits::default()
        .sign_in(limit)
        .sign_up(limit)
        .refresh(limit)
}

async fn limited_server(db: &TestDb, options: impl FnOnce(Options) -> Options) -> TestServer {
    let auth = EngineBuilder::over(db)
        .await
        .sign_in_throttle(None)
        .with(options)
        .build();
    TestServer::start(app(&auth, "/api/auth")).await
}

/// Asserts a 429 `code` with a `Retry-After` of whole seconds within `1..=max`.
#[track_caller]
fn assert_retry_after(reply: &Reply, code: &str, max: u64) -> u64 {
    reply.assert_error(StatusCode::TOO_MANY_REQUESTS, code);
    let secs: u64 = reply
        .headers
        .get(RETRY_AFTER)
        .unwrap_or_else(|| panic!("no Retry-After on {}", reply.body))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max).contains(&secs), "Retry-After: {secs}");
    secs
}

#[tokio::test]
async fn the_request_past_the_limit_gets_429_with_retry_after_on_each_route() {
    let db = TestDb::new().await;
    let server = limited_server(&db, |options| options.rate_limits(Some(each(2)))).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    server.sign_up("bob@example.com").await;
    let third = server.try_sign_up("eve@example.com", PASSWORD, "Eve").await;
    assert_retry_after(&third, "too_many_requests", 300);
    third.assert_no_cookies();

    for _ in 0..2 {
        server
            .sign_in("ada@example.com", PASSWORD)
            .await
            .assert_ok();
    }
    let refused = server.sign_in("ada@example.com", PASSWORD).await;
    assert!(assert_retry_after(&refused, "too_many_requests", 300) > 290);
    refused.assert_no_cookies();

    let first = server.refresh(&tokens.refresh_cookie()).await;
    first.assert_ok();
    let rotated = first.tokens();
    server.refresh(&rotated.refresh_cookie()).await.assert_ok();
    let refused = server.refresh(&rotated.refresh_cookie()).await;
    assert_retry_after(&refused, "too_many_requests", 300);
    // A refused refresh keeps the cookies: the session is not at fault.
    refused.assert_no_cookies();

    // The window ended: served again.
    exec(
        &mut db.conn().await,
        "UPDATE rate_limits SET window_ends_at = now() - interval '1 second'",
    )
    .await;
    server
        .sign_in("ada@example.com", PASSWORD)
        .await
        .assert_ok();
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn forwarded_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
    async fn sign_in_from(server: &TestServer, forwarded: &str) -> Reply {
        let body = json!({"email": "ada@example.com", "password": PASSWORD});
        server
            .post("/api/auth/sign-in")
            .header("x-forwarded-for", forwarded)
            .json(&body)
            .send()
            .await
    }
    // Not trusted: a new forged address on every request changes nothing; all count as
    // 127.0.0.1.
    let db = TestDb::new().await;
    let server = limited_server(&db, |options| options.rate_limits(Some(each(2)))).await;
    server.sign_up("ada@example.com").await;
    sign_in_from(&server, "198.51.100.1").await.assert_ok();
    sign_in_from(&server, "198.51.100.2").await.assert_ok();
    let refused = sign_in_from(&server, "198.51.100.3").await;
    assert_retry_after(&refused, "too_many_requests", 300);

    // Behind a trusted proxy on this host: each forwarded client has its own count.
    let db = TestDb::new().await;
    let loopback: IpAddr = [127, 0, 0, 1].into();
    let trusting = limited_server(&db, |options| {
        options
            .rate_limits(Some(each(2)))
            .http(HttpOptions::default().trusted_proxies([loopback]))
    })
    .await;
    trusting.sign_up("ada@example.com").await;
    for n in 1..=3 {
        sign_in_from(&trusting, &format!("198.51.100.{n}"))
            .await
            .assert_ok();
    }
    sign_in_from(&trusting, "198.51.100.3").await.assert_ok();
    let refused = sign_in_from(&trusting, "198.51.100.3").await;
    assert_retry_after(&refused, "too_many_requests", 300);
}

#[tokio::test]
async fn failed_sign_ins_answer_429_then_account_locked_for_any_email() {
    let db = TestDb::new().await;
    let server = limited_server(&db, |options| {
        options
            .rate_limits(None)
            .sign_in_throttle(Some(SignInThrottle::default().free_failures(2)))
    })
    .await;
    server.sign_up("ada@example.com").await;
    for email in ["ada@example.com", "nobody@example.com"] {
        for _ in 0..2 {
            server
                .sign_in(email, "wrong password")
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
        let throttled = server.sign_in(email, PASSWORD).await;
        assert_eq!(assert_retry_after(&throttled, "too_many_requests", 1), 1);
        throttled.assert_no_cookies();
    }
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 100, forget_at = NULL",
    )
    .await;
    for email in ["ada@example.com", "nobody@example.com"] {
        let locked = server.sign_in(email, PASSWORD).await;
        locked.assert_error(StatusCode::TOO_MANY_REQUESTS, "account_locked");
        locked.assert_no_cookies();
    }
}

#[tokio::test]
async fn a_common_password_is_400_password_too_common_on_sign_up_and_change() {
    let db = TestDb::new().await;
    let server = limited_server(&db, |options| options.rate_limits(None)).await;
    let refused = server
        .try_sign_up("ada@example.com", "Password1", "Ada")
        .await;
    let body = refused.assert_error(StatusCode::BAD_REQUEST, "password_too_common");
    assert_eq!(body["field"], "password");
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let change = |new_password: &str| {
        server
            .post("/api/auth/change-password")
            .cookie(&tokens.access_cookie())
            .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
            .send()
    };
    change("iloveyou2")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "password_too_common");
    change("a rarer passphrase").await.assert_ok();
}

#[tokio::test]
async fn a_full_hashing_queue_is_503_busy_with_retry_after() {
    let db = TestDb::new().await;
    let hasher = Gated::new();
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(None)
        .with(|options| options.max_concurrent_hashes(1).max_queued_hashes(0))
        .ready()
        .await;
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    // The one place is taken by a sign-up held at the gate.
    hasher.set(false);
    let held = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "held@example.com",
                PASSWORD,
                "Held",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
        }
    });
    while auth.hashes_admitted() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = server.sign_in("ada@example.com", PASSWORD).await;
    busy.assert_error(StatusCode::SERVICE_UNAVAILABLE, "busy");
    assert_eq!(busy.headers.get(RETRY_AFTER).unwrap(), "1");
    busy.assert_no_cookies();
    server
        .try_sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "busy");
    hasher.set(true);
    held.await.unwrap().unwrap();
    server.sign_up("ada@example.com").await;
}

#[tokio::test]
async fn the_owners_browser_keeps_signing_in_over_http_while_a_stranger_is_locked_out() {
    let db = TestDb::new().await;
    let server = limited_server(&db, |options| {
        options
            .rate_limits(None)
            .sign_in_throttle(Some(SignInThrottle::default()))
    })
    .await;
    let (signed_up, _) = server.sign_up("ada@example.com").await;
    let signed_in = server.sign_in("ada@example.com", PASSWORD).await;
    signed_in.assert_ok();
    // Sign-up and sign-in each give the browser a device cookie, for the routes' mount point
    // (sign-in and the second factor's answer).
    for reply in [&signed_up, &signed_in] {
        let device = reply.cookie(DEVICE);
        device.assert_attributes("/api/auth", "Strict", true);
        assert_eq!(device.max_age(), Some(365 * 24 * 60 * 60), "{device:?}");
    }
    let device = format!("{DEVICE}={}", signed_in.cookie(DEVICE).value);
    let sign_in_on = |cookie: Option<&str>| {
        let request = server
            .post("/api/auth/sign-in")
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}));
        match cookie {
            Some(cookie) => request.cookie(cookie),
            None => request,
        }
        .send()
    };
    // A stranger tries 200 wrong passwords, each past the back-off (the last failure moved an
    // hour back), and locks the email for untrusted clients at the hundredth.
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let reply = server.sign_in("ada@example.com", "wrong password").await;
        *answers
            .entry(reply.json()["error"].to_string())
            .or_insert(0) += 1;
        exec(
            &mut db.conn().await,
            "UPDATE sign_in_failures SET last_failed_at = last_failed_at - interval '1 hour'",
        )
        .await;
    }
    assert_eq!(
        answers,
        [
            ("\"account_locked\"".to_owned(), 100),
            ("\"invalid_credentials\"".to_owned(), 100)
        ]
        .into()
    );
    // A new browser with the right password: locked out, as the stranger is.
    let locked = sign_in_on(None).await;
    locked.assert_error(StatusCode::TOO_MANY_REQUESTS, "account_locked");
    locked.assert_no_cookies();
    let tampered = format!("{device}x");
    sign_in_on(Some(&tampered))
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "account_locked");
    // Ada's browser signs in, and its device cookie is renewed.
    let again = sign_in_on(Some(&device)).await;
    again.assert_ok();
    again.tokens();
    assert_ne!(format!("{DEVICE}={}", again.cookie(DEVICE).value), device);
    server.assert_no_secrets(&[PASSWORD]);
}
