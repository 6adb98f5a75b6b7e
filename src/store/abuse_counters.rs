//! The counters behind the rate limits and the sign-in throttle: a store capability.

use async_trait::async_trait;

use super::StoreError;
use crate::limits::{
    DeviceDigest, EmailDigest, RateLimit, SignInAttempt, SignInThrottle, WindowCount,
};

#[cfg(doc)]
use super::Store;

/// Counters shared by every instance: fixed-window request counts for the rate limits, and the
/// consecutive failures of the sign-in throttle: of each email's untrusted clients (with its
/// lock), and of each trusted device (a browser holding a device cookie), counted apart. The engine needs it
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

    /// Begins a sign-in attempt of an untrusted client for the email `email`: atomically, either
    /// refuses it ([`SignInAttempt::Throttled`], [`SignInAttempt::Locked`]) as `throttle` says of
    /// the email's consecutive failures, or counts it as one more failure and allows it
    /// ([`SignInAttempt::Allowed`] with the count, this attempt included), so that of concurrent
    /// attempts past the free ones only one goes ahead. A correct password then calls
    /// [`clear_sign_in_failures`](Self::clear_sign_in_failures).
    ///
    /// Past [`free_failures`](SignInThrottle::free_failures), an attempt waits
    /// `first_delay × 2^(failures − free_failures)` (at most `max_delay`) after the last failure.
    /// The failure that reaches [`lock_after`](SignInThrottle::lock_after) locks the email for
    /// [`lock_for`](SignInThrottle::lock_for); when the lock ends, the count starts again from
    /// zero, as a count that has not locked does [`forget_after`](SignInThrottle::forget_after)
    /// after its last failure.
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

    /// Begins a sign-in attempt from the trusted device `device` (the digest of a valid device
    /// cookie's nonce): as [`begin_sign_in_attempt`](Self::begin_sign_in_attempt), atomically,
    /// on the device's own count of consecutive failures, which nothing but this device's
    /// attempts changes, with the same free failures and delays. Once the count has reached
    /// [`device_lock_after`](SignInThrottle::device_lock_after) the device is no longer trusted:
    /// the answer is [`SignInAttempt::Locked`] and the attempt is not counted here (the engine
    /// then counts it as an untrusted client's), until the count is forgotten,
    /// [`forget_after`](SignInThrottle::forget_after) after its last failure. A correct password
    /// then calls [`clear_device_failures`](Self::clear_device_failures).
    ///
    /// # Errors
    /// On database failure.
    async fn begin_device_sign_in_attempt(
        &self,
        device: &DeviceDigest,
        throttle: &SignInThrottle,
    ) -> Result<SignInAttempt, StoreError>;

    /// Clears the failed sign-ins of the trusted device `device`; says whether there were any.
    /// Called after a correct password from that device.
    ///
    /// # Errors
    /// On database failure.
    async fn clear_device_failures(&self, device: &DeviceDigest) -> Result<bool, StoreError>;

    /// Deletes, in bounded batches, the rate-limit counters whose window has ended and the
    /// failure counts, of emails and of devices, past the time they are forgotten (for a lock,
    /// its end); returns how many went. The cleanup loop runs it after
    /// [`Store::cleanup_expired_sessions`].
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_rate_limits(&self) -> Result<u64, StoreError>;
}
