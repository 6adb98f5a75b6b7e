//! The engine's metrics, counted exactly: each test installs a `DebuggingRecorder` as this
//! thread's recorder, and runs on the current-thread runtime of `#[tokio::test]`, so that the
//! engine's tasks record to it too and no other test's counts mix in.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use authingo::limits::{RateLimit, RateLimits, SignInThrottle};
use authingo::mail::{CapturingMailer, MailError, Mailer, Message};
use authingo::telemetry::{
    CLEANUP_DURATION_SECONDS, CLEANUP_ROWS_TOTAL, HASH_QUEUE_DEPTH, HASH_QUEUE_REFUSALS_TOTAL,
    HASH_QUEUE_WAIT_SECONDS, MAIL_TOTAL, POOL_CHECKOUTS_WAITING, POOL_CONNECTIONS_IN_USE,
    POOL_CONNECTIONS_OPEN, RATE_LIMIT_REFUSALS_TOTAL, REFRESHES_TOTAL, SESSIONS_REVOKED_TOTAL,
    SIGN_INS_TOTAL, SIGN_UPS_TOTAL, STORE_OPERATION_SECONDS, THROTTLE_REFUSALS_TOTAL,
};
use authingo::token::{Token, TokenKind};
use authingo::{AuthError, RequestContext, SignUp, SignedIn, Store as _};
use chrono::Duration;
use metrics_util::debugging::DebuggingRecorder;

use super::{Recorded, by};
use crate::support::{EngineBuilder, Gated, PASSWORD, TestDb, current, exec, session, user};

fn from(address: &str) -> RequestContext {
    RequestContext::default().ip_address(Some(address.parse::<IpAddr>().unwrap()))
}

fn refresh_of(signed_in: &SignedIn) -> String {
    signed_in.tokens.refresh_token.expose().to_owned()
}

#[tokio::test]
async fn sign_ups_and_sign_ins_are_counted_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db).await.ready().await;
    // Counted from here: the dummy hash made at start is not the test's.
    Recorded::take(&snapshots);
    let context = RequestContext::default();

    auth.sign_up("ada@example.com", PASSWORD, "Ada", &context)
        .await
        .unwrap();
    let taken = auth
        .sign_up("ADA@example.com", PASSWORD, "Ada", &context)
        .await;
    assert!(matches!(taken, Err(AuthError::EmailTaken)));
    let malformed = auth
        .sign_up("not an address", PASSWORD, "Ada", &context)
        .await;
    assert!(matches!(malformed, Err(AuthError::InvalidInput { .. })));
    auth.sign_in("ada@example.com", PASSWORD, &context)
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    for (email, password) in [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let refused = auth
            .sign_in(email, password, &context)
            .await
            .and_then(authingo::SignIn::signed_in);
        assert!(matches!(refused, Err(AuthError::InvalidCredentials)));
    }

    let recorded = Recorded::take(&snapshots);
    assert_eq!(
        recorded.counts(SIGN_UPS_TOTAL),
        by(&[("success", 1), ("email_taken", 1), ("invalid_input", 1)])
    );
    assert_eq!(
        recorded.counts(SIGN_INS_TOTAL),
        by(&[("success", 1), ("invalid_credentials", 2)])
    );
    // Two hashes (the taken address's too) and three verifications (the unknown address's
    // against the dummy hash), each timed in the queue.
    assert_eq!(
        recorded.sample_counts(HASH_QUEUE_WAIT_SECONDS),
        by(&[("", 5)])
    );
    assert_eq!(recorded.gauge(HASH_QUEUE_DEPTH), Some(0.0));
    let store_ops = recorded.sample_counts(STORE_OPERATION_SECONDS);
    assert_eq!(store_ops["create_user_with_session"], 2);
    assert_eq!(store_ops["get_user_by_email"], 3);
    assert_eq!(store_ops["create_session_verified"], 1);
    assert!(
        recorded
            .samples(STORE_OPERATION_SECONDS, &[("op", "get_user_by_email")])
            .iter()
            .all(|seconds| *seconds > 0.0 && *seconds < 60.0)
    );
}

#[tokio::test]
async fn refreshes_and_ended_sessions_are_counted_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db).await.ready().await;
    let context = RequestContext::default();
    let first = auth
        .sign_up("ada@example.com", PASSWORD, "Ada", &context)
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    Recorded::take(&snapshots);

    let rotated = auth.refresh(&refresh_of(&first), &context).await.unwrap();
    // A second tab within the grace window: the same pair again.
    auth.refresh(&refresh_of(&first), &context).await.unwrap();
    auth.refresh(&refresh_of(&rotated), &context).await.unwrap();
    // Two rotations on, the first token is a theft signal: the session ends.
    let reused = auth.refresh(&refresh_of(&first), &context).await;
    assert!(matches!(reused, Err(AuthError::InvalidSession)));
    let unknown = Token::generate(TokenKind::Refresh).unwrap();
    for token in ["garbage", unknown.expose()] {
        let refused = auth.refresh(token, &context).await;
        assert!(matches!(refused, Err(AuthError::InvalidSession)));
    }

    let ada = auth
        .sign_in("ada@example.com", PASSWORD, &context)
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert!(
        auth.sign_out(ada.tokens.access_token.expose())
            .await
            .unwrap()
    );
    // Nothing left to end: not counted.
    assert!(
        !auth
            .sign_out(ada.tokens.access_token.expose())
            .await
            .unwrap()
    );
    let mut signed_in = Vec::new();
    for _ in 0..4 {
        signed_in.push(
            auth.sign_in("ada@example.com", PASSWORD, &context)
                .await
                .and_then(authingo::SignIn::signed_in)
                .unwrap(),
        );
    }
    let here = current(&signed_in[3]);
    assert!(
        auth.revoke_session(&here.user, &signed_in[0].session.id)
            .await
            .unwrap()
    );
    assert_eq!(auth.revoke_other_sessions(&here).await.unwrap(), 2);
    assert_eq!(auth.revoke_all_sessions(&here).await.unwrap(), 1);

    let recorded = Recorded::take(&snapshots);
    assert_eq!(
        recorded.counts(REFRESHES_TOTAL),
        by(&[
            ("rotated", 2),
            ("grace_replay", 1),
            ("reuse_detected", 1),
            ("invalid", 2)
        ])
    );
    assert_eq!(
        recorded.counts(SESSIONS_REVOKED_TOTAL),
        by(&[
            ("reuse_detected", 1),
            ("sign_out", 1),
            ("revoked", 1),
            ("others", 2),
            ("everywhere", 1)
        ])
    );
}

#[tokio::test]
async fn refusals_are_counted_by_limit_and_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new().await;
    let hasher = Gated::new();
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(Some(
            RateLimits::default().refresh(Some(RateLimit::new(1, StdDuration::from_secs(300)))),
        ))
        // No failure is free, and the next attempt waits a minute.
        .sign_in_throttle(Some(
            SignInThrottle::default()
                .free_failures(0)
                .delays(StdDuration::from_secs(60), StdDuration::from_secs(60)),
        ))
        .with(|options| options.max_concurrent_hashes(1).max_queued_hashes(0))
        .ready()
        .await;
    let context = RequestContext::default();
    let ada = auth
        .sign_up("ada@example.com", PASSWORD, "Ada", &context)
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    Recorded::take(&snapshots);

    // The refresh limit: one per address and window.
    let client = from("203.0.113.7");
    auth.refresh(&refresh_of(&ada), &client).await.unwrap();
    let refused = auth.refresh(&refresh_of(&ada), &client).await;
    assert!(matches!(refused, Err(AuthError::TooManyRequests { .. })));

    // A trusted device's own back-off, then the email's, then a lock.
    let device = ada.device.as_ref().unwrap().expose();
    let trusted = RequestContext::default().device(Some(device));
    let wrong = auth
        .sign_in("ada@example.com", "wrong password", &trusted)
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    let waits = auth
        .sign_in("ada@example.com", PASSWORD, &trusted)
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(waits, Err(AuthError::TooManyRequests { .. })));
    let wrong = auth
        .sign_in("ada@example.com", "wrong password", &context)
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    let waits = auth
        .sign_in("ada@example.com", PASSWORD, &context)
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(waits, Err(AuthError::TooManyRequests { .. })));
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 100, forget_at = NULL",
    )
    .await;
    let locked = auth
        .sign_in("ada@example.com", PASSWORD, &context)
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(locked, Err(AuthError::AccountLocked)));

    // The hashing queue: one place, taken by a sign-up held at the gate.
    hasher.set(false);
    let holding = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "bob@example.com",
                PASSWORD,
                "Bob",
                &RequestContext::default(),
            )
            .await
        }
    });
    while auth.hashes_admitted() == 0 {
        tokio::task::yield_now().await;
    }
    let busy = auth
        .sign_up("eve@example.com", PASSWORD, "Eve", &context)
        .await;
    assert!(matches!(busy, Err(AuthError::Busy)));
    hasher.set(true);
    holding.await.unwrap().unwrap();

    let recorded = Recorded::take(&snapshots);
    assert_eq!(
        recorded.counts(RATE_LIMIT_REFUSALS_TOTAL),
        by(&[("refresh", 1)])
    );
    assert_eq!(
        recorded.counts(THROTTLE_REFUSALS_TOTAL),
        by(&[("device_back_off", 1), ("back_off", 1), ("locked", 1)])
    );
    assert_eq!(recorded.count(HASH_QUEUE_REFUSALS_TOTAL), 1);
    assert_eq!(
        recorded.counts(SIGN_INS_TOTAL),
        by(&[
            ("invalid_credentials", 2),
            ("too_many_requests", 2),
            ("account_locked", 1)
        ])
    );
    assert_eq!(
        recorded.counts(SIGN_UPS_TOTAL),
        by(&[("success", 1), ("busy", 1)])
    );
}

/// A mailer that refuses every message.
struct Refusing;

#[async_trait]
impl Mailer for Refusing {
    async fn send(&self, _message: Message) -> Result<(), MailError> {
        Err(MailError("the relay is down".into()))
    }
}

#[tokio::test]
async fn mail_is_counted_sent_failed_and_skipped_over_a_limit() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    // One link and one notice per address and window.
    let limits =
        RateLimits::default().mail_per_email(Some(RateLimit::new(1, StdDuration::from_secs(300))));
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .verification_required()
        .rate_limits(Some(limits))
        .ready()
        .await;
    Recorded::take(&snapshots);
    // A new address gets a link; the second sign-up a notice to its owner; the third is over
    // the notices' limit, and its notice is skipped.
    for _ in 0..3 {
        let answer = auth
            .sign_up(
                "ada@example.com",
                PASSWORD,
                "Ada",
                &RequestContext::default(),
            )
            .await
            .unwrap();
        assert!(matches!(answer, SignUp::VerificationSent));
        auth.flush_background().await;
    }
    assert_eq!(mail.len(), 2);

    let refusing = EngineBuilder::over(&db)
        .await
        .mailer(Arc::new(Refusing))
        .ready()
        .await;
    refusing
        .request_password_reset("ada@example.com", &RequestContext::default())
        .await
        .unwrap();
    refusing.flush_background().await;

    let recorded = Recorded::take(&snapshots);
    assert_eq!(
        recorded.counts(MAIL_TOTAL),
        by(&[("sent", 2), ("skipped_over_limit", 1), ("failed", 1)])
    );
    assert_eq!(
        recorded.counts(RATE_LIMIT_REFUSALS_TOTAL),
        by(&[("notices_per_email", 1)])
    );
    assert_eq!(
        recorded.counts(SIGN_UPS_TOTAL),
        by(&[("verification_sent", 3)])
    );
}

#[tokio::test]
async fn the_cleanup_loop_reports_the_rows_it_deleted_and_how_long_it_took() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new().await;
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    for _ in 0..3 {
        let (dead, _) = session(&ada, Duration::days(-2), Duration::days(-1));
        store.create_session(&dead).await.unwrap();
    }
    let auth = EngineBuilder::on(store)
        .with(|options| {
            options
                .cleanup_interval(Some(StdDuration::from_secs(3600)))
                .cleanup_first_delay(StdDuration::ZERO)
        })
        .build();
    // The sweep runs on this thread's runtime: yielding lets it go on.
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while auth.cleanup_sweeps() == 0 {
        assert!(Instant::now() < deadline, "no sweep within 20 s");
        tokio::task::yield_now().await;
    }
    auth.shutdown().await;

    let recorded = Recorded::take(&snapshots);
    assert_eq!(recorded.counts(CLEANUP_ROWS_TOTAL), by(&[("sessions", 3)]));
    let took = recorded.samples(CLEANUP_DURATION_SECONDS, &[("outcome", "ok")]);
    assert_eq!(took.len(), 1);
    assert!(took[0] > 0.0 && took[0] < 20.0, "{took:?}");
    assert_eq!(
        recorded.sample_counts(CLEANUP_DURATION_SECONDS),
        by(&[("ok", 1)])
    );
}

#[tokio::test]
async fn the_pool_reports_connections_in_use_and_callers_waiting() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let db = TestDb::new().await;
    let store = db.one_connection_store().await;
    let auth = EngineBuilder::on(store.clone()).ready().await;
    let signed_in = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let recorded = Recorded::take(&snapshots);
    // Sampled before each checkout: nothing else was in use.
    assert_eq!(recorded.gauge(POOL_CONNECTIONS_IN_USE), Some(0.0));
    assert_eq!(recorded.gauge(POOL_CONNECTIONS_OPEN), Some(1.0));
    assert_eq!(recorded.gauge(POOL_CHECKOUTS_WAITING), Some(0.0));

    // The pool's one connection held: a lookup waits for it.
    let held = store.pool().get().await.unwrap();
    let access = signed_in.tokens.access_token.expose().to_owned();
    let lookup = tokio::spawn({
        let auth = auth.clone();
        async move { auth.get_session(&access).await }
    });
    // Until the lookup's checkout has begun (and waits, on this thread's runtime).
    let deadline = Instant::now() + StdDuration::from_secs(5);
    loop {
        tokio::task::yield_now().await;
        let recorded = Recorded::take(&snapshots);
        // Each snapshot resets the gauges: zero until the lookup has begun.
        if let Some(waiting) = recorded.gauge(POOL_CHECKOUTS_WAITING)
            && waiting != 0.0
        {
            assert_eq!(waiting, 1.0);
            assert_eq!(recorded.gauge(POOL_CONNECTIONS_IN_USE), Some(1.0));
            assert_eq!(recorded.gauge(POOL_CONNECTIONS_OPEN), Some(1.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lookup never asked for a connection"
        );
    }
    drop(held);
    assert!(lookup.await.unwrap().unwrap().is_some());
    let recorded = Recorded::take(&snapshots);
    assert_eq!(
        recorded.sample_counts(STORE_OPERATION_SECONDS),
        by(&[("get_session", 1)])
    );
}
