//! Abuse limits as plain data: the per-route rate limits and the failed-sign-in throttle that
//! [`Options`](crate::Options) takes, and what a [`Store`](crate::Store) answers about them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

const MINUTE: Duration = Duration::from_secs(60);

/// At most `max` requests per key in each fixed window of `window`.
///
/// Windows are fixed, not sliding: a client can place `max` requests at the end of one window
/// and `max` more at the start of the next, so at most `2 × max` in any span of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (at least 1).
    pub max: u32,
    /// The window's length (at least one second).
    pub window: Duration,
}

impl RateLimit {
    /// `max` requests per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

/// The rate limits of the routes, each counted in PostgreSQL so that every instance of a
/// service shares one count. `None` turns one off; `Options::rate_limits(None)` all of them.
///
/// | limit | default | key |
/// |---|---|---|
/// | [`sign_in`](Self::sign_in) | 30 per 5 minutes | client address |
/// | [`sign_up`](Self::sign_up) | 30 per 5 minutes | client address |
/// | [`refresh`](Self::refresh) | 150 per 5 minutes | client address |
/// | [`mail_per_address`](Self::mail_per_address) | 10 per hour | client address |
/// | [`mail_per_email`](Self::mail_per_email) | 2 per hour | target email (its SHA-256) |
/// | [`mail_per_account`](Self::mail_per_account) | 5 per hour | the signed-in account asking (a change of email) |
/// | [`token`](Self::token) | 30 per 5 minutes | client address |
///
/// A client address is an IPv4 address, or the /64 network of an IPv6 address (what one
/// subscriber is usually given). A request with no known address (the app served without
/// `into_make_service_with_connect_info`, or an engine call without one) is not limited by
/// address; the failed-sign-in throttle still applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// Sign-ins per client address (GoTrue: 30 per 5 minutes).
    pub sign_in: Option<RateLimit>,
    /// Sign-ups per client address (GoTrue: 30 per 5 minutes, with sign-ins).
    pub sign_up: Option<RateLimit>,
    /// Refreshes per client address (GoTrue: 150 per 5 minutes).
    pub refresh: Option<RateLimit>,
    /// Password-reset and verification mails asked for per client address.
    pub mail_per_address: Option<RateLimit>,
    /// Password-reset and verification mails per target email (GoTrue: 2 mails an hour).
    pub mail_per_email: Option<RateLimit>,
    /// Changes of email asked per account, each of which mails a link to a new address: one
    /// account cannot mail any number of strangers.
    pub mail_per_account: Option<RateLimit>,
    /// Uses of a mailed link's token (verification, reset, change of email and its cancel) per
    /// client address, whatever the token (GoTrue: 30 verifications per 5 minutes).
    pub token: Option<RateLimit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            sign_in: Some(RateLimit::new(30, 5 * MINUTE)),
            sign_up: Some(RateLimit::new(30, 5 * MINUTE)),
            refresh: Some(RateLimit::new(150, 5 * MINUTE)),
            mail_per_address: Some(RateLimit::new(10, 60 * MINUTE)),
            mail_per_email: Some(RateLimit::new(2, 60 * MINUTE)),
            mail_per_account: Some(RateLimit::new(5, 60 * MINUTE)),
            token: Some(RateLimit::new(30, 5 * MINUTE)),
        }
    }
}

impl RateLimits {
    /// Sets [`sign_in`](Self::sign_in).
    #[must_use]
    pub fn sign_in(mut self, limit: Option<RateLimit>) -> Self {
        self.sign_in = limit;
        self
    }

    /// Sets [`sign_up`](Self::sign_up).
    #[must_use]
    pub fn sign_up(mut self, limit: Option<RateLimit>) -> Self {
        self.sign_up = limit;
        self
    }

    /// Sets [`refresh`](Self::refresh).
    #[must_use]
    pub fn refresh(mut self, limit: Option<RateLimit>) -> Self {
        self.refresh = limit;
        self
    }

    /// Sets [`mail_per_address`](Self::mail_per_address).
    #[must_use]
    pub fn mail_per_address(mut self, limit: Option<RateLimit>) -> Self {
        self.mail_per_address = limit;
        self
    }

    /// Sets [`mail_per_email`](Self::mail_per_email).
    #[must_use]
    pub fn mail_per_email(mut self, limit: Option<RateLimit>) -> Self {
        self.mail_per_email = limit;
        self
    }

    /// Sets [`mail_per_account`](Self::mail_per_account).
    #[must_use]
    pub fn mail_per_account(mut self, limit: Option<RateLimit>) -> Self {
        self.mail_per_account = limit;
        self
    }

    /// Sets [`token`](Self::token).
    #[must_use]
    pub fn token(mut self, limit: Option<RateLimit>) -> Self {
        self.token = limit;
        self
    }

    /// The limit of `route`.
    pub fn of(&self, route: LimitedRoute) -> Option<RateLimit> {
        match route {
            LimitedRoute::SignIn => self.sign_in,
            LimitedRoute::SignUp => self.sign_up,
            LimitedRoute::Refresh => self.refresh,
            LimitedRoute::Mail => self.mail_per_address,
            LimitedRoute::Token => self.token,
        }
    }
}

/// What a request counted by client address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitedRoute {
    /// `POST /sign-in`.
    SignIn,
    /// `POST /sign-up`.
    SignUp,
    /// `POST /refresh`.
    Refresh,
    /// A request that sends a password-reset or verification mail.
    Mail,
    /// A use of a mailed link's token: `POST /verify-email`, `/reset-password`,
    /// `/confirm-email`, `/cancel-email-change`.
    Token,
}

impl LimitedRoute {
    /// The counter of this route for `client`: `sign-in:ip:203.0.113.7`, and for IPv6 the /64
    /// network, `sign-in:ip:2001:db8:1:2::/64`.
    pub fn key(self, client: IpAddr) -> String {
        let route = match self {
            Self::SignIn => "sign-in",
            Self::SignUp => "sign-up",
            Self::Refresh => "refresh",
            Self::Mail => "mail",
            Self::Token => "token",
        };
        format!("{route}:ip:{}", address_key(client))
    }
}

/// An address as counters key it: IPv4 (an IPv4-mapped IPv6 address too) as itself, IPv6 as
/// its /64 network.
fn address_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{network}/64")
            }
        },
    }
}

/// The counter of the mails one account asked: `mail:account:<user id>`.
pub fn mail_account_key(user_id: &str) -> String {
    format!("mail:account:{user_id}")
}

/// The counter of the mails sent to one email: `mail:email:<SHA-256 of the normalised email>`.
pub fn mail_email_key(email: &EmailDigest) -> String {
    format!("mail:email:{}", email.as_str())
}

/// A rate-limit counter after one more request: how many the window holds with it, and when the
/// window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Requests in the window, this one included (a store may stop counting one past the limit).
    pub hits: u32,
    /// How long until the window ends and the count starts again.
    pub resets_in: Duration,
}

/// How failed sign-ins of one email are slowed down, then locked: after
/// [`free_failures`](Self::free_failures) consecutive failures each attempt waits
/// [`first_delay`](Self::first_delay) after the last failure, doubled with each further failure
/// up to [`max_delay`](Self::max_delay); after [`lock_after`](Self::lock_after) the email is
/// locked for [`lock_for`](Self::lock_for), or until unlocked. A correct password, or an unlock,
/// clears the count; so does a day without failure ([`forget_after`](Self::forget_after)) while
/// not locked.
///
/// That count is of *untrusted* clients. A browser that signed in to the email before holds a
/// device cookie (OWASP's "device cookies"): its attempts are counted on that device alone, with
/// the same free failures and delays, and are never slowed or locked by anyone else's failures;
/// after [`device_lock_after`](Self::device_lock_after) consecutive failures of its own its cookie
/// is no longer trusted (until a day without failure, or a sign-in that gives it a new one), and
/// its attempts count as untrusted.
///
/// | setting | default |
/// |---|---|
/// | `free_failures` | 5 |
/// | `first_delay` | 1 second (then 2 s, 4 s, 8 s…) |
/// | `max_delay` | 15 minutes |
/// | `lock_after` | 100 consecutive failures (NIST SP 800-63B §5.2.2); `None`: never |
/// | `lock_for` | 24 hours from the failure that locked |
/// | `forget_after` | 24 hours |
/// | `device_lock_after` | 10 consecutive failures of one device |
/// | `device_lifetime` | 365 days from the sign-in that issued the cookie |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignInThrottle {
    /// Consecutive failures allowed without delay.
    pub free_failures: u32,
    /// The delay after the first failure past the free ones.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Consecutive failures that lock the email for untrusted clients; `None`: never locked.
    pub lock_after: Option<u32>,
    /// How long a lock lasts, from the failure that reached it; then the count starts again.
    pub lock_for: Duration,
    /// How long after its last failure a count that has not locked is forgotten, and a device
    /// that is no longer trusted is trusted again.
    pub forget_after: Duration,
    /// Consecutive failures of one trusted device after which its cookie is no longer trusted.
    pub device_lock_after: u32,
    /// How long a device cookie is trusted after the sign-in that issued it.
    pub device_lifetime: Duration,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            free_failures: 5,
            first_delay: Duration::from_secs(1),
            max_delay: 15 * MINUTE,
            lock_after: Some(100),
            lock_for: 24 * 60 * MINUTE,
            forget_after: 24 * 60 * MINUTE,
            device_lock_after: 10,
            device_lifetime: 365 * 24 * 60 * MINUTE,
        }
    }
}

impl SignInThrottle {
    /// Sets [`free_failures`](Self::free_failures).
    #[must_use]
    pub fn free_failures(mut self, failures: u32) -> Self {
        self.free_failures = failures;
        self
    }

    /// Sets [`first_delay`](Self::first_delay) and [`max_delay`](Self::max_delay).
    #[must_use]
    pub fn delays(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max;
        self
    }

    /// Sets [`lock_after`](Self::lock_after).
    #[must_use]
    pub fn lock_after(mut self, failures: Option<u32>) -> Self {
        self.lock_after = failures;
        self
    }

    /// Sets [`lock_for`](Self::lock_for).
    #[must_use]
    pub fn lock_for(mut self, period: Duration) -> Self {
        self.lock_for = period;
        self
    }

    /// Sets [`forget_after`](Self::forget_after).
    #[must_use]
    pub fn forget_after(mut self, after: Duration) -> Self {
        self.forget_after = after;
        self
    }

    /// Sets [`device_lock_after`](Self::device_lock_after).
    #[must_use]
    pub fn device_lock_after(mut self, failures: u32) -> Self {
        self.device_lock_after = failures;
        self
    }

    /// Sets [`device_lifetime`](Self::device_lifetime).
    #[must_use]
    pub fn device_lifetime(mut self, lifetime: Duration) -> Self {
        self.device_lifetime = lifetime;
        self
    }
}

/// What the store says of a sign-in attempt, of an email's untrusted clients or of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignInAttempt {
    /// It may check the password; it is already counted as a failure, which a correct password
    /// clears.
    Allowed {
        /// The consecutive failures counted, this attempt's included: when it equals the lock
        /// threshold, a wrong password now locks.
        failures: u32,
    },
    /// Too soon after the last failure: wait `retry_after`.
    Throttled {
        /// How long until an attempt is allowed.
        retry_after: Duration,
    },
    /// Locked after too many failures: an email's untrusted clients until the lock ends or is
    /// cleared; a device, no longer trusted until its count is forgotten.
    Locked,
}

/// The SHA-256 (lower-case hex) of a normalised email: how the counters key an email, so that
/// their tables hold no address in clear. (A digest of a guessable address is no secret; it keeps
/// addresses out of casual reads and dumps.)
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailDigest(String);

impl EmailDigest {
    /// The digest of `email`, which must already be normalised (trimmed, NFC, lower-cased) as
    /// the engine stores emails.
    pub fn of(email: &str) -> Self {
        Self(hex::encode(Sha256::digest(email.as_bytes())))
    }

    /// The 64 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailDigest(..)")
    }
}

/// The SHA-256 (lower-case hex) of a device cookie's random nonce: how the counters key a
/// trusted device's failures. The cookie itself is never stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeviceDigest(String);

impl DeviceDigest {
    /// The digest of a device cookie's `nonce`.
    pub fn of(nonce: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(nonce)))
    }

    /// The 64 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_key_ipv4_as_is_and_ipv6_by_network() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(
            LimitedRoute::SignIn.key(ip("203.0.113.7")),
            "sign-in:ip:203.0.113.7"
        );
        assert_eq!(
            LimitedRoute::Refresh.key(ip("::ffff:203.0.113.7")),
            "refresh:ip:203.0.113.7"
        );
        assert_eq!(
            LimitedRoute::SignUp.key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "sign-up:ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            LimitedRoute::SignUp.key(ip("2001:db8:1:2::1")),
            LimitedRoute::SignUp.key(ip("2001:db8:1:2:ffff::9"))
        );
    }

    #[test]
    fn email_digests_are_hex_and_print_nothing() {
        let digest = EmailDigest::of("ada@example.com");
        assert_eq!(digest.as_str().len(), 64);
        assert!(digest.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(format!("{digest:?}"), "EmailDigest(..)");
        assert!(mail_email_key(&digest).starts_with("mail:email:"));
    }
}
