//! The bounded hashing queue: busy at once when full, a dropped request's hash skipped.

use super::*;
use crate::support::{EngineBuilder, Gated, PASSWORD, TestDb, rows};
use authingo::{RequestContext, SignUp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_at_once_and_a_dropped_requests_hash_is_skipped() {
    let db = TestDb::new().await;
    let hasher = Gated::new();
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(None)
        .sign_in_throttle(None)
        .hasher(hasher.clone())
        .with(|options| options.max_concurrent_hashes(1).max_queued_hashes(1))
        .ready()
        .await;
    let dummy = hasher.hashes.load(Ordering::SeqCst);
    hasher.set(false);
    // One hashing, held at the gate; one waiting behind it.
    let running = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "ada@example.com",
                PASSWORD,
                "Ada",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
        }
    });
    while hasher.entered.load(Ordering::SeqCst) == dummy {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let waiting = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "bob@example.com",
                PASSWORD,
                "Bob",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
        }
    });
    while auth.hashes_admitted() < 2 {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    // Full: refused at once, whatever the operation.
    let refused = tokio::time::timeout(StdDuration::from_secs(5), async {
        (
            auth.sign_up(
                "eve@example.com",
                PASSWORD,
                "Eve",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in),
            auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
        )
    })
    .await
    .expect("a full queue answers at once");
    assert!(matches!(refused.0, Err(AuthError::Busy)), "{:?}", refused.0);
    assert!(matches!(refused.1, Err(AuthError::Busy)), "{:?}", refused.1);
    // The waiting request goes away (its client hung up): its place is free, its job skipped.
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert_eq!(auth.hashes_admitted(), 1);
    hasher.set(true);
    running.await.unwrap().unwrap();
    for _ in 0..2000 {
        if auth.hashes_skipped() == 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert_eq!(auth.hashes_skipped(), 1);
    assert_eq!(
        hasher.hashes.load(Ordering::SeqCst),
        dummy + 1,
        "only Ada's hash ran"
    );
    assert_eq!(rows(&db, "users").await, 1);
    assert_eq!(auth.hashes_admitted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_full_queue_a_flooding_address_is_told_429_and_others_busy() {
    let db = TestDb::new().await;
    let hasher = Gated::new();
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(
            sign_ins(2).sign_up(Some(RateLimit::new(2, FIVE_MINUTES))),
        ))
        .hasher(hasher.clone())
        .with(|options| options.max_concurrent_hashes(1).max_queued_hashes(0))
        .ready()
        .await;
    let dummy = hasher.hashes.load(Ordering::SeqCst);
    hasher.set(false);
    // One sign-up holds the only place, at the gate.
    let running = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "ada@example.com",
                PASSWORD,
                "Ada",
                &RequestContext::default(),
            )
            .await
        }
    });
    while hasher.entered.load(Ordering::SeqCst) == dummy {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    // The flooding address: its first two attempts find the queue full, and they count...
    let flood = from("198.51.100.9");
    for _ in 0..2 {
        let busy = auth
            .sign_in("eve@example.com", PASSWORD, &flood)
            .await
            .and_then(authingo::SignIn::signed_in);
        assert!(matches!(busy, Err(AuthError::Busy)), "{busy:?}");
    }
    // ...so the third, and its sign-ups past their own limit, are told to slow down.
    retry_after(
        auth.sign_in("eve@example.com", PASSWORD, &flood)
            .await
            .and_then(authingo::SignIn::signed_in),
    );
    for _ in 0..2 {
        let busy = auth.sign_up("x@example.com", PASSWORD, "X", &flood).await;
        assert!(matches!(busy, Err(AuthError::Busy)), "{busy:?}");
    }
    retry_after(auth.sign_up("x@example.com", PASSWORD, "X", &flood).await);
    // Another address is only busy, and no email was counted by a busy answer.
    let other = auth
        .sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(other, Err(AuthError::Busy)), "{other:?}");
    assert_eq!(
        crate::support::sign_in_failures(&db, "eve@example.com").await,
        0
    );
    hasher.set(true);
    running.await.unwrap().unwrap();
}
