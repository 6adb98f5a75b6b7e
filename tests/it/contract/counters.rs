//! The abuse counters: fixed rate-limit windows, and the sign-in throttle from its free failures
//! through its back-off to the lock, its end and its clearing, and the same for a trusted device
//! on its own count; the sweep of all.

use std::time::Duration;

use authingo::limits::{DeviceDigest, EmailDigest, SignInAttempt};
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

/// Two free failures, then 10 s doubled up to 40 s, locked at the fifth for a day, forgotten
/// after an hour; a device untrusted at its fourth.
fn throttle() -> SignInThrottle {
    SignInThrottle::default()
        .free_failures(2)
        .delays(Duration::from_secs(10), Duration::from_secs(40))
        .lock_after(Some(5))
        .lock_for(Duration::from_secs(24 * 60 * 60))
        .forget_after(Duration::from_secs(60 * 60))
        .device_lock_after(4)
}

/// An allowed attempt, the count with it being `failures`.
fn allowed(failures: u32) -> SignInAttempt {
    SignInAttempt::Allowed { failures }
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

async fn sign_ins_are_free_then_slowed_then_locked_for_a_while_or_until_cleared(backend: &Backend) {
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
    assert_eq!(attempt(&ada).await, allowed(1));
    assert_eq!(attempt(&ada).await, allowed(2));
    // Past the free ones: 10 s after the last failure, then 20, then 40 (the longest).
    for (n, (wait, passed)) in [(10, 10), (20, 20), (40, 40)].into_iter().enumerate() {
        throttled_for(attempt(&ada).await, wait);
        throttled_for(attempt(&ada).await, wait);
        backend.pass_time(TimeDelta::seconds(passed - 1)).await;
        throttled_for(attempt(&ada).await, 1);
        backend.pass_time(TimeDelta::seconds(1)).await;
        assert_eq!(attempt(&ada).await, allowed(n as u32 + 3), "after {wait} s");
    }
    // The fifth failure locked the email for its day: no wait within it ends it, nor does the
    // sweep.
    assert_eq!(attempt(&ada).await, SignInAttempt::Locked);
    backend.pass_time(TimeDelta::hours(23)).await;
    counters.cleanup_rate_limits().await.unwrap();
    assert_eq!(attempt(&ada).await, SignInAttempt::Locked);
    // Another email has its own count.
    assert_eq!(attempt(&bob).await, allowed(1));
    // The day over, the count starts again from zero.
    backend.pass_time(TimeDelta::hours(1)).await;
    assert_eq!(attempt(&ada).await, allowed(1));

    assert!(counters.clear_sign_in_failures(&ada).await.unwrap());
    assert_eq!(attempt(&ada).await, allowed(1));
    assert_eq!(attempt(&ada).await, allowed(2));
    throttled_for(attempt(&ada).await, 10);
    assert!(counters.clear_sign_in_failures(&ada).await.unwrap());
    assert!(!counters.clear_sign_in_failures(&ada).await.unwrap());
}

async fn an_unlocked_count_is_forgotten_after_its_time_and_a_lock_at_its_end(backend: &Backend) {
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
    assert_eq!(attempt(&ada, &throttle).await, allowed(1));
    assert_eq!(attempt(&ada, &throttle).await, allowed(2));
    throttled_for(attempt(&ada, &throttle).await, 10);
    let at_once = throttle.lock_after(Some(1));
    assert_eq!(attempt(&locked, &at_once).await, allowed(1));
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Locked);

    // An hour on, the count starts again from zero: two free failures, then the first delay.
    backend.pass_time(TimeDelta::minutes(61)).await;
    assert_eq!(attempt(&ada, &throttle).await, allowed(1));
    assert_eq!(attempt(&ada, &throttle).await, allowed(2));
    throttled_for(attempt(&ada, &throttle).await, 10);
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Locked);

    // The sweep: a forgotten count goes, a lock stays until its end.
    backend.pass_time(TimeDelta::minutes(61)).await;
    assert_eq!(counters.cleanup_rate_limits().await.unwrap(), 1);
    assert!(!counters.clear_sign_in_failures(&ada).await.unwrap());
    assert_eq!(attempt(&locked, &at_once).await, SignInAttempt::Locked);
    backend.pass_time(TimeDelta::hours(23)).await;
    assert_eq!(counters.cleanup_rate_limits().await.unwrap(), 1);
    assert!(!counters.clear_sign_in_failures(&locked).await.unwrap());
}

async fn a_device_is_counted_on_its_own_then_no_longer_trusted_until_forgotten(backend: &Backend) {
    let counters = backend.counters();
    let throttle = throttle();
    let (laptop, phone) = (DeviceDigest::of(b"laptop"), DeviceDigest::of(b"phone"));
    let ada = EmailDigest::of("ada@example.com");
    let attempt = async |device: &DeviceDigest| {
        counters
            .begin_device_sign_in_attempt(device, &throttle)
            .await
            .unwrap()
    };
    // The email's untrusted clients, locked, touch no device's count.
    let at_once = throttle.lock_after(Some(1));
    counters
        .begin_sign_in_attempt(&ada, &at_once)
        .await
        .unwrap();
    assert_eq!(attempt(&laptop).await, allowed(1));
    assert_eq!(attempt(&laptop).await, allowed(2));
    // The same back-off as the email's.
    throttled_for(attempt(&laptop).await, 10);
    assert_eq!(attempt(&phone).await, allowed(1));
    backend.pass_time(TimeDelta::seconds(10)).await;
    assert_eq!(attempt(&laptop).await, allowed(3));
    backend.pass_time(TimeDelta::seconds(20)).await;
    assert_eq!(attempt(&laptop).await, allowed(4));
    // At its fourth failure the device is no longer trusted, whatever the wait, and the refusal
    // is not counted...
    backend.pass_time(TimeDelta::minutes(59)).await;
    assert_eq!(attempt(&laptop).await, SignInAttempt::Locked);
    assert_eq!(attempt(&laptop).await, SignInAttempt::Locked);
    // ...until its count is forgotten, an hour after its last failure; the sweep takes it then.
    backend.pass_time(TimeDelta::minutes(1)).await;
    assert_eq!(counters.cleanup_rate_limits().await.unwrap(), 2);
    assert_eq!(attempt(&laptop).await, allowed(1));
    assert!(counters.clear_device_failures(&laptop).await.unwrap());
    assert!(!counters.clear_device_failures(&laptop).await.unwrap());
    assert_eq!(attempt(&laptop).await, allowed(1));
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
    sign_ins_are_free_then_slowed_then_locked_for_a_while_or_until_cleared,
    an_unlocked_count_is_forgotten_after_its_time_and_a_lock_at_its_end,
    a_device_is_counted_on_its_own_then_no_longer_trusted_until_forgotten,
    the_sweep_deletes_the_windows_that_have_ended,
}
