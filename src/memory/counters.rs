//! The abuse counters in memory: fixed rate-limit windows and the failed sign-ins of each email
//! and of each trusted device, computed as `rate_limit_hit.sql`, `sign_in_attempt.sql` and
//! `sign_in_device_attempt.sql` compute them.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;

use super::{Counter, Failures, MemoryStore, check_text, later, now, span};
use crate::limits::{
    DeviceDigest, EmailDigest, RateLimit, SignInAttempt, SignInThrottle, WindowCount,
};
use crate::store::{AbuseCounters, StoreError};

/// The most a count holds: PostgreSQL's `INTEGER`.
const INT_MAX: u32 = i32::MAX as u32;

/// The wait a count of `failures` imposes after its last failure: `first_delay` doubled with each
/// failure past the free ones (the exponent at most 60), at most `max_delay`.
fn delay(failures: i64, free: i64, throttle: &SignInThrottle) -> TimeDelta {
    let doublings = i32::try_from((failures - free).min(60)).unwrap_or(i32::MIN);
    let secs = throttle.first_delay.as_secs_f64() * 2f64.powi(doublings);
    let secs = secs.min(throttle.max_delay.as_secs_f64());
    // Past what a `Duration` holds (the float's rounding of `max_delay` at its largest): the longest.
    span(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// One sign-in attempt against the count of `key` in `counts`: refused while the count's delay
/// runs or while it is locked, else counted and allowed. `lock`: the failures that lock (none:
/// never); `lock_for`: how long the failure that reaches it keeps the count (otherwise it is
/// forgotten `forget_after` after its last failure).
fn attempt<K: Hash + Eq + Clone>(
    counts: &mut HashMap<K, Failures>,
    key: &K,
    throttle: &SignInThrottle,
    lock: Option<i64>,
    lock_for: TimeDelta,
) -> SignInAttempt {
    let free = i64::from(throttle.free_failures.min(INT_MAX));
    let now = now();
    let kept = |failures: i64| match lock {
        Some(lock) if failures >= lock => lock_for,
        _ => span(throttle.forget_after),
    };
    let count = counts.entry(key.clone()).or_insert(Failures {
        failures: 0,
        last_failed_at: now,
        forget_at: now,
    });
    // A new count is one that was forgotten.
    let forgotten = count.forget_at <= now;
    let wait_until = later(count.last_failed_at, delay(count.failures, free, throttle));
    let unlocked = lock.is_none_or(|lock| count.failures < lock);
    if forgotten || (unlocked && (count.failures < free || wait_until <= now)) {
        // Counted before the password is checked: a correct one clears it.
        let failures = if forgotten { 0 } else { count.failures } + 1;
        *count = Failures {
            failures,
            last_failed_at: now,
            forget_at: later(now, kept(failures)),
        };
        return SignInAttempt::Allowed {
            failures: u32::try_from(failures).unwrap_or(INT_MAX),
        };
    }
    if unlocked {
        SignInAttempt::Throttled {
            retry_after: (wait_until - now).to_std().unwrap_or_default(),
        }
    } else {
        SignInAttempt::Locked
    }
}

#[async_trait]
impl AbuseCounters for MemoryStore {
    async fn count_request(&self, key: &str, limit: &RateLimit) -> Result<WindowCount, StoreError> {
        check_text("key", key)?;
        // One past the limit is where the count stops.
        let max = limit.max.min(INT_MAX - 1);
        let window = span(limit.window);
        let mut state = self.enter()?;
        let now = now();
        let counter = state.counters.entry(key.to_owned()).or_insert(Counter {
            hits: 0,
            window_ends_at: now,
        });
        if counter.window_ends_at <= now {
            // A window that has ended starts a new one with this request.
            counter.hits = 1;
            counter.window_ends_at = later(now, window);
        } else {
            counter.hits = counter.hits.saturating_add(1).min(max + 1);
        }
        Ok(WindowCount {
            hits: counter.hits,
            resets_in: (counter.window_ends_at - now).to_std().unwrap_or_default(),
        })
    }

    async fn begin_sign_in_attempt(
        &self,
        email: &EmailDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError> {
        let lock = throttle.lock_after.map(|lock| i64::from(lock.min(INT_MAX)));
        let mut state = self.enter()?;
        Ok(attempt(
            &mut state.failures,
            email,
            throttle,
            lock,
            span(throttle.lock_for),
        ))
    }

    async fn begin_device_sign_in_attempt(
        &self,
        device: &DeviceDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError> {
        let lock = i64::from(throttle.device_lock_after.min(INT_MAX));
        let mut state = self.enter()?;
        // A device no longer trusted is trusted again when its count is forgotten.
        Ok(attempt(
            &mut state.device_failures,
            device,
            throttle,
            Some(lock),
            span(throttle.forget_after),
        ))
    }

    async fn clear_device_failures(&self, device: &DeviceDigest) -> Result<bool, StoreError> {
        Ok(self.enter()?.device_failures.remove(device).is_some())
    }

    async fn clear_sign_in_failures(&self, email: &EmailDigest) -> Result<bool, StoreError> {
        Ok(self.enter()?.failures.remove(email).is_some())
    }

    /// Deletes the windows that have ended and the counts, of emails and devices, past their
    /// time to be forgotten (for a lock, its end), all at once; returns how many rows went.
    async fn cleanup_rate_limits(&self) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let now = now();
        let held = |state: &super::State| {
            state.counters.len() + state.failures.len() + state.device_failures.len()
        };
        let before = held(&state);
        state
            .counters
            .retain(|_, counter| counter.window_ends_at >= now);
        state.failures.retain(|_, count| count.forget_at >= now);
        state
            .device_failures
            .retain(|_, count| count.forget_at >= now);
        Ok((before - held(&state)) as u64)
    }
}
