//! The abuse counters on PostgreSQL: rate-limit windows and failed sign-ins, each checked by one
//! atomic statement from a commented `.sql` file beside the store's.

use std::time::Duration;

use async_trait::async_trait;
use diesel::sql_types::BigInt;
use diesel::{OptionalExtension as _, Queryable, QueryableByName};
use diesel_async::RunQueryDsl;
use tracing::instrument;

use super::{BATCH_SIZE, PgStore, Retry, seconds};
use crate::limits::{
    DeviceDigest, EmailDigest, RateLimit, SignInAttempt, SignInThrottle, WindowCount,
};
use crate::postgres::error::check_text;
use crate::postgres::fixed::{
    BeginDeviceSignInAttempt, BeginSignInAttempt, ClearDeviceFailures, ClearSignInFailures,
    RateLimitHit,
};
use crate::postgres::observe;
use crate::postgres::prepared::Prepared;
use crate::store::{AbuseCounters, StoreError};
use crate::telemetry::STORE_SPAN;

/// A row of `rate_limit_hit.sql`, read by position.
#[derive(Queryable)]
struct CountRow {
    hits: i32,
    resets_in_secs: f64,
}

/// A row of `sign_in_attempt.sql` or `sign_in_device_attempt.sql`, read by position: whether
/// the attempt may go ahead, the count, whether the email is locked (the device no longer
/// trusted), and the seconds to wait.
#[derive(Queryable)]
struct AttemptRow {
    allowed: bool,
    failures: i32,
    locked: bool,
    retry_after_secs: f64,
}

/// What a row of an attempt's statement says, `None` for no row: refused on a row a concurrent
/// attempt made after the statement's snapshot, so that attempt is the one going ahead.
fn attempt(row: Option<AttemptRow>, throttle: &SignInThrottle) -> SignInAttempt {
    match row {
        Some(row) if row.allowed => SignInAttempt::Allowed {
            failures: u32::try_from(row.failures).unwrap_or(0),
        },
        Some(row) if row.locked => SignInAttempt::Locked,
        Some(row) => SignInAttempt::Throttled {
            retry_after: duration(row.retry_after_secs),
        },
        None => SignInAttempt::Throttled {
            retry_after: throttle.first_delay,
        },
    }
}

#[derive(QueryableByName)]
struct DeletedRows {
    #[diesel(sql_type = BigInt)]
    counters: i64,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = BigInt)]
    devices: i64,
}

/// A count of seconds from the database as a duration; anything not a positive finite number is
/// zero.
fn duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO)
}

/// A count as PostgreSQL's `INTEGER` holds it.
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl AbuseCounters for PgStore {
    #[instrument(name = STORE_SPAN, skip_all, fields(op = "count_request"))]
    async fn count_request(&self, key: &str, limit: &RateLimit) -> Result<WindowCount, StoreError> {
        let _timed = observe::timed("count_request");
        check_text("key", key)?;
        // One past the limit is where the count stops: kept below INTEGER's maximum.
        let max = int(limit.max.min(i32::MAX as u32 - 1));
        let window = seconds(limit.window);
        // Not repeated: a repeat after a first run that counted would count the request twice.
        let row = run!(self, Retry::Never, |conn| async move {
            RateLimitHit { key, window, max }
                .get_result::<CountRow>(conn)
                .await
        })?;
        Ok(WindowCount {
            hits: u32::try_from(row.hits).unwrap_or(0),
            resets_in: duration(row.resets_in_secs),
        })
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "begin_sign_in_attempt"))]
    async fn begin_sign_in_attempt(
        &self,
        email: &EmailDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError> {
        let _timed = observe::timed("begin_sign_in_attempt");
        let digest = email.as_str();
        let (free, lock) = (int(throttle.free_failures), throttle.lock_after.map(int));
        let (first, max, forget, lock_for) = (
            seconds(throttle.first_delay),
            seconds(throttle.max_delay),
            seconds(throttle.forget_after),
            seconds(throttle.lock_for),
        );
        // A fixed statement, as `rate_limit_hit.sql`: every sign-in runs it.
        let row = run!(self, Retry::Never, |conn| async move {
            BeginSignInAttempt {
                email_digest: digest,
                free_failures: free,
                first_delay: first,
                max_delay: max,
                lock_after: lock,
                forget_after: forget,
                lock_for,
            }
            .get_result::<AttemptRow>(conn)
            .await
            .optional()
        })?;
        Ok(attempt(row, throttle))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "begin_device_sign_in_attempt"))]
    async fn begin_device_sign_in_attempt(
        &self,
        device: &DeviceDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError> {
        let _timed = observe::timed("begin_device_sign_in_attempt");
        let digest = device.as_str();
        let (free, lock) = (int(throttle.free_failures), int(throttle.device_lock_after));
        let (first, max, forget) = (
            seconds(throttle.first_delay),
            seconds(throttle.max_delay),
            seconds(throttle.forget_after),
        );
        // Not repeated, as the email's attempt: a repeat would count the attempt twice.
        let row = run!(self, Retry::Never, |conn| async move {
            BeginDeviceSignInAttempt {
                device_digest: digest,
                free_failures: free,
                first_delay: first,
                max_delay: max,
                lock_after: lock,
                forget_after: forget,
            }
            .get_result::<AttemptRow>(conn)
            .await
            .optional()
        })?;
        Ok(attempt(row, throttle))
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "clear_device_failures"))]
    async fn clear_device_failures(&self, device: &DeviceDigest) -> Result<bool, StoreError> {
        let _timed = observe::timed("clear_device_failures");
        let digest = device.as_str();
        // Not repeated, as `clear_sign_in_failures`.
        let deleted = run!(self, Retry::Never, |conn| async move {
            ClearDeviceFailures {
                device_digest: digest,
            }
            .execute(conn)
            .await
        })?;
        Ok(deleted > 0)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "clear_sign_in_failures"))]
    async fn clear_sign_in_failures(&self, email: &EmailDigest) -> Result<bool, StoreError> {
        let _timed = observe::timed("clear_sign_in_failures");
        let digest = email.as_str();
        // Not repeated, as `delete_session`: a repeat after a first run that deleted would say
        // `false`.
        let deleted = run!(self, Retry::Never, |conn| async move {
            ClearSignInFailures {
                email_digest: digest,
            }
            .execute(conn)
            .await
        })?;
        Ok(deleted > 0)
    }

    #[instrument(name = STORE_SPAN, skip_all, fields(op = "cleanup_rate_limits"))]
    async fn cleanup_rate_limits(&self) -> Result<u64, StoreError> {
        let _timed = observe::timed("cleanup_rate_limits");
        let mut total = 0;
        loop {
            // A batch deletes only counters past their time: repeating one is harmless.
            let row = run!(self, Retry::Idempotent, |conn| async move {
                Prepared(
                    diesel::sql_query(include_str!("../cleanup_rate_limits.sql"))
                        .bind::<BigInt, _>(BATCH_SIZE as i64),
                )
                .get_result::<DeletedRows>(conn)
                .await
            })?;
            total += u64::try_from(row.counters + row.failures + row.devices).unwrap_or(0);
            if row.counters.max(row.failures).max(row.devices) < BATCH_SIZE as i64 {
                return Ok(total);
            }
        }
    }
}
