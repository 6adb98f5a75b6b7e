//! The abuse counters: fixed rate-limit windows, and the sign-in throttle from its free failures
//! through its back-off to the lock and its clearing; the sweep of both.

use std::time::Duration;

use authingo::limits::{EmailDigest, SignInAttempt};
use authingo::{RateLimit, SignInThrottle, StoreError};
use chrono::TimeDelta;

use super::{Backend, contract};

const MINUTE: Duration = Duration::from_secs(60);

async fn requests_are_counted_in_fixed_windows(backend: &Backend) {
    let counters = backend.counters();
    let limit = RateLimit::new(3, MINUTE);
    let mut hits = Vec::new();
    for _ in 0..5 {
        let count = counters
            .count_request("sign-in:ip:192.0.2.1", &limit)
            .await
            .unwrap();
        assert!(count.resets_in <= MINUTE, "{count:?}");
        assert!(
            count.resets_in > MINUTE - Duration::from_secs(10),
            "{count:?}"
        );
        hits.push(count.hits);
    }
    // The count stops one past the limit.
    assert_eq!(hits, [1, 2, 3, 4, 4]);
    // Another key has its own count.
    let other = counters
        .count_request("sign-in:ip:192.0.2.2", &limit)
        .await
        .unwrap();
    assert_eq!(other.hits, 1);

    // Forty seconds on, the same window; a minute on, a new one.
    backend.pass_time(TimeDelta::seconds(40)).await;
    let count = counters
        .count_request("sign-in:ip:192.0.2.1", &limit)
        .await
        .unwrap();
    assert_eq!(count.hits, 4);
    assert!(count.resets_in <= Duration::from_secs(20), "{count:?}");
    backend.pass_time(TimeDelta::seconds(20)).await;
    let count = counters
        .count_request("sign-in:ip:192.0.2.1", &limit)
        .await
        .unwrap();
    assert_eq!(count.hits, 1);
    assert!(
        count.resets_in > MINUTE - Duration::from_secs(10),
        "{count:?}"
    );

    let err = counters.count_request("key\0", &limit).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput { field: "key", .. }),
        "{err:?}"
    );
}

/// Two free failures, then 10 s doubled up to 40 s, locked at the fifth, forgotten after an hour.
fn throttle() -> SignInThrottle {
    SignInThrottle::default()
        .free_failures(2)
        .delays(Duration::from_secs(10), Duration::from_secs(40))
        .lock_after(Some(5))
        .forget_after(Duration::from_secs(60 * 60))
}

/// A refusal that asks for a wait of `secs` seconds (less the time the test took).
fn throttled_for(attempt: SignInAttempt, secs: u64) {
    match attempt {
        SignInAttempt::Throttled { retry_after } => assert!(
            retry_after <= Duration::from_secs(secs)
                && retry_after > Duration::from_secs(secs).saturating_sub(Duration::from_secs(5)),
            "{retry_after:?} for {secs} s"
        ),
        other => panic!("{other:?} for {secs} s"),
    }
}

async fn sign_ins_are_free_then_slowed_then_locked_until_cleared(backend: &Backend) {
    let counters = backend.counters();
    let (ada, bob) = (
        EmailDigest::of("ada@example.com"),
        EmailDigest::of("bob@example.com"),
    );
    let throttle = throttle();
    let attempt = async |email: &EmailDigest| {
        counters
            .begin_sign_in_attempt(email, &throttle)
            .await
            .unwrap()
    };
    assert_eq!(attempt(&ada).await, SignInAttempt::Allowed);
    assert_eq!(attempt(&ada).await, SignInAttempt::Allowed);
    // Past the free ones: 10 s after the last failure, then 20, then 40 (the longest).
    for (wait, passed) in [(10, 10), (20, 20), (40, 40)] {
        throttled_for(attempt(&ada).await, wait);
        throttled_for(attempt(&ada).await, wait);
        backend.pass_time(TimeDelta::seconds(passed - 1)).await;
        throttled_for(attempt(&ada).await, 1);
        backend.pass_time(TimeDelta::seconds(1)).await;
        assert_eq!(
            attempt(&ada).await,
            SignInAttempt::Allowed,
            "after {wait} s"
        );
    }
    // The fifth failure locked the email, for good: no wait ends it, nor does the sweep.
    assert_eq!(attempt(&ada).await, SignInAttempt::Locked);
    backend.pass_time(TimeDelta::days(2)).await;
    counters.cleanup_rate_limits().await.unwrap();
    assert_eq!(attempt(&ada).await, SignInAttempt::Locked);
    // Another email has its own count.
    assert_eq!(attempt(&bob).await, SignInAttempt::Allowed);

    assert!(counters.clear_sign_in_failures(&ada).await.unwrap());
    assert_eq!(attempt(&ada).await, SignInAttempt::Allowed);
    assert_eq!(attempt(&ada).await, SignInAttempt::Allowed);
    throttled_for(attempt(&ada).await, 10);
    assert!(counters.clear_sign_in_failures(&ada).await.unwrap());
    assert!(!counters.clear_sign_in_failures(&ada).await.unwrap());
}

async fn an_unlocked_count_is_forgotten_after_its_time_and_a_lock_is_not(backend: &Backend) {
    let counters = backend.counters();
    let throttle = throttle();
    let (ada, locked) = (
        EmailDigest::of("ada@example.com"),
        EmailDigest::of("locked@example.com"),
    );
    let attempt = async |email: &EmailDigest, throttle: &SignInThrottle| {
        counters
            .begin_sign_in_attempt(email, throttle)
            .await
            .unwrap()
    };
    assert_eq!(attempt(&ada, &throttle).await, SignInAttempt::Allowed);
    assert_eq!(attempt(&ada, &throttle).await, SignInAttempt::Allowed);
    throttled_for(attempt(&ada, &throttle).await, 10);
    let at_once = throttle.lock_after(Some(1));
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Allowed);
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Locked);

    // An hour on, the count starts again from zero: two free failures, then the first delay.
    backend.pass_time(TimeDelta::minutes(61)).await;
    assert_eq!(attempt(&ada, &throttle).await, SignInAttempt::Allowed);
    assert_eq!(attempt(&ada, &throttle).await, SignInAttempt::Allowed);
    throttled_for(attempt(&ada, &throttle).await, 10);
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Locked);

    // The sweep: a forgotten count goes, a lock stays.
    backend.pass_time(TimeDelta::minutes(61)).await;
    assert_eq!(counters.cleanup_rate_limits().await.unwrap(), 1);
    assert!(!counters.clear_sign_in_failures(&ada).await.unwrap());
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Locked);
    assert!(counters.clear_sign_in_failures(&locked).await.unwrap());
}

async fn the_sweep_deletes_the_windows_that_have_ended(backend: &Backend) {
    let counters = backend.counters();
    let minute = RateLimit::new(3, MINUTE);
    let hour = RateLimit::new(3, 60 * MINUTE);
    for key in ["a", "b"] {
        counters.count_request(key, &minute).await.unwrap();
        counters.count_request(key, &minute).await.unwrap();
    }
    counters.count_request("long", &hour).await.unwrap();
    backend.pass_time(TimeDelta::minutes(2)).await;
    assert_eq!(counters.cleanup_rate_limits().await.unwrap(), 2);
    assert_eq!(counters.cleanup_rate_limits().await.unwrap(), 0);
    assert_eq!(counters.count_request("a", &minute).await.unwrap().hits, 1);
    assert_eq!(counters.count_request("long", &hour).await.unwrap().hits, 2);
}

contract! {
    requests_are_counted_in_fixed_windows,
    sign_ins_are_free_then_slowed_then_locked_until_cleared,
    an_unlocked_count_is_forgotten_after_its_time_and_a_lock_is_not,
    the_sweep_deletes_the_windows_that_have_ended,
}
