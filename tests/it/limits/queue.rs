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
                .await,
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
