//! The counters behind the rate limits and the sign-in throttle: a store capability.

use async_trait::async_trait;

use super::StoreError;
use crate::limits::{EmailDigest, RateLimit, SignInAttempt, SignInThrottle, WindowCount};

#[cfg(doc)]
use super::Store;

/// Counters shared by every instance: fixed-window request counts for the rate limits, and the
/// consecutive failures (and lock) of each email for the sign-in throttle. The engine needs it
/// for [`Options::rate_limits`](crate::Options::rate_limits) and
/// [`Options::sign_in_throttle`](crate::Options::sign_in_throttle) (both on by default); a store
/// offers it through [`Store::abuse_counters`].
#[async_trait]
pub trait AbuseCounters: Send + Sync {
    /// Counts one request against the rate-limit counter `key` in fixed windows of
    /// `limit.window`, atomically (concurrent calls from any instance each see the count their own
    /// request made), and returns the count with it and when the window ends. The caller refuses
    /// the request when the count is above `limit.max`.
    ///
    /// # Errors
    /// On database failure.
    async fn count_request(&self, key: &str, limit: &RateLimit) -> Result<WindowCount, StoreError>;

    /// Begins a sign-in attempt for the email `email`: atomically, either refuses it
    /// ([`SignInAttempt::Throttled`], [`SignInAttempt::Locked`]) as `throttle` says of the
    /// email's consecutive failures, or counts it as one more failure and allows it, so that of
    /// concurrent attempts past the free ones only one goes ahead. A correct password then calls
    /// [`clear_sign_in_failures`](Self::clear_sign_in_failures).
    ///
    /// # Errors
    /// On database failure.
    async fn begin_sign_in_attempt(
        &self,
        email: &EmailDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError>;

    /// Clears the failed sign-ins of `email`, a lock included; says whether there were any.
    /// Called after a correct password, by `Auth::unlock_account`, and by a completed password
    /// reset.
    ///
    /// # Errors
    /// On database failure.
    async fn clear_sign_in_failures(&self, email: &EmailDigest) -> Result<bool, StoreError>;

    /// Deletes, in bounded batches, the rate-limit counters whose window has ended and the
    /// failure counts past their [`SignInThrottle::forget_after`] (never a lock); returns how
    /// many went. The cleanup loop runs it after
    /// [`Store::cleanup_expired_sessions`].
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_rate_limits(&self) -> Result<u64, StoreError>;
}
