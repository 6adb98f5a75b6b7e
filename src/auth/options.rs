//! Settings of the engine, with their defaults, and the error for those `Auth::new` refuses.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

use crate::limits::{RateLimits, SignInThrottle};
use crate::mail::{DefaultTemplates, DevMailer, MailTemplates, Mailer};
use crate::password::{Argon2Params, PasswordHasher};
use crate::store::{Capability, CleanupPace, Store};

use super::HttpOptions;
use super::device::{self, DeviceKey};
use super::sealing::{EncryptionKey, Keyring};

const DAY: u64 = 24 * 60 * 60;

/// How [`Auth`](super::Auth) behaves. Built from a store; every other setting has a default.
///
/// | setting | default |
/// |---|---|
/// | [`access_ttl`](Self::access_ttl) | 15 minutes |
/// | [`refresh_ttl`](Self::refresh_ttl) | 30 days, sliding: each refresh starts it again |
/// | [`max_session_lifetime`](Self::max_session_lifetime) | 30 days from sign-in, however often refreshed (`None`: unbounded) |
/// | [`short_session_lifetime`](Self::short_session_lifetime) | 1 day from sign-in, for a sign-in without "remember me" |
/// | [`refresh_reuse_grace`](Self::refresh_reuse_grace) | 10 seconds (zero: off, and reuse detection with it) |
/// | [`fresh_age`](Self::fresh_age) | 24 hours: how recent a sign-in sensitive operations need |
/// | [`max_sessions_per_user`](Self::max_sessions_per_user) | none (`Some(n)`: a sign-in ends the least recently used beyond `n`) |
/// | [`mailer`](Self::mailer) | [`DevMailer`](crate::mail::DevMailer): logs each message and its link at INFO |
/// | [`mail_templates`](Self::mail_templates) | [`DefaultTemplates`](crate::mail::DefaultTemplates): plain text and HTML, in English |
/// | [`product_name`](Self::product_name) | the host of [`HttpOptions::app_url`](crate::HttpOptions::app_url) (`localhost:8080` by default) |
/// | [`allow_dev_mailer`](Self::allow_dev_mailer) | only in a debug build: a release build refuses a mailer that logs its links |
/// | [`reset_token_ttl`](Self::reset_token_ttl) | 1 hour |
/// | [`verification_token_ttl`](Self::verification_token_ttl) | 24 hours (also a change of email's) |
/// | [`require_email_verification`](Self::require_email_verification) | off |
/// | [`cleanup_interval`](Self::cleanup_interval) | every 24 hours (`None`: no loop) |
/// | [`cleanup_first_delay`](Self::cleanup_first_delay) | first sweep at a random moment within 1 minute |
/// | [`cleanup_timeout`](Self::cleanup_timeout) | 1 hour per sweep |
/// | [`cleanup_pace`](Self::cleanup_pace) | [`CleanupPace::default`](crate::CleanupPace): batches of 1,000 rows, each followed by a pause 99 times as long: 1% of the time working |
/// | [`password_length`](Self::password_length) | 8 characters to 1024 bytes |
/// | [`argon2`](Self::argon2) | argon2id m=19456 KiB, t=2, p=1 |
/// | [`max_concurrent_hashes`](Self::max_concurrent_hashes) | CPU cores minus one (at least one) |
/// | [`max_queued_hashes`](Self::max_queued_hashes) | 32 per hashing thread; beyond, sign-up and sign-in answer "busy" at once |
/// | [`rate_limits`](Self::rate_limits) | on: see [`RateLimits`] (`None`: every rate limit off) |
/// | [`sign_in_throttle`](Self::sign_in_throttle) | on: see [`SignInThrottle`] (`None`: off) |
/// | [`device_cookie_key`](Self::device_cookie_key) | none: a random key per process (device cookies then last as long as the process and work on its instance only) |
/// | [`reject_common_passwords`](Self::reject_common_passwords) | `true` |
/// | [`encryption_key`](Self::encryption_key) | none: no second factor can be enrolled (those enrolled still ask for their code, and only recovery codes can answer it) |
/// | [`old_encryption_keys`](Self::old_encryption_keys) | none |
/// | [`trusted_device_lifetime`](Self::trusted_device_lifetime) | 30 days: how long a browser trusted at a second-factor sign-in skips the code |
#[derive(Clone)]
pub struct Options {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) max_session_lifetime: Option<Duration>,
    pub(crate) short_session_lifetime: Duration,
    pub(crate) refresh_reuse_grace: Duration,
    pub(crate) fresh_age: Duration,
    pub(crate) max_sessions_per_user: Option<u32>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) allow_dev_mailer: bool,
    pub(crate) mail_templates: Option<Arc<dyn MailTemplates>>,
    pub(crate) product_name: Option<String>,
    pub(crate) reset_token_ttl: Duration,
    pub(crate) verification_token_ttl: Duration,
    pub(crate) require_email_verification: bool,
    pub(crate) cleanup_interval: Option<Duration>,
    pub(crate) cleanup_first_delay: Duration,
    pub(crate) cleanup_timeout: Duration,
    pub(crate) cleanup_pace: CleanupPace,
    pub(crate) min_password_chars: usize,
    pub(crate) max_password_bytes: usize,
    pub(crate) argon2: Argon2Params,
    pub(crate) hasher: Option<Arc<dyn PasswordHasher>>,
    pub(crate) max_concurrent_hashes: usize,
    pub(crate) max_queued_hashes: Option<usize>,
    pub(crate) rate_limits: Option<RateLimits>,
    pub(crate) sign_in_throttle: Option<SignInThrottle>,
    pub(crate) device_cookie_key: Option<Vec<u8>>,
    pub(crate) reject_common_passwords: bool,
    pub(crate) encryption_key: Option<EncryptionKey>,
    pub(crate) old_encryption_keys: Vec<EncryptionKey>,
    pub(crate) trusted_device_lifetime: Duration,
    pub(crate) http: HttpOptions,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("max_session_lifetime", &self.max_session_lifetime)
            .field("short_session_lifetime", &self.short_session_lifetime)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field("fresh_age", &self.fresh_age)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("reset_token_ttl", &self.reset_token_ttl)
            .field("verification_token_ttl", &self.verification_token_ttl)
            .field(
                "require_email_verification",
                &self.require_email_verification,
            )
            .field("cleanup_interval", &self.cleanup_interval)
            .field("cleanup_first_delay", &self.cleanup_first_delay)
            .field("cleanup_timeout", &self.cleanup_timeout)
            .field("cleanup_pace", &self.cleanup_pace)
            .field("min_password_chars", &self.min_password_chars)
            .field("max_password_bytes", &self.max_password_bytes)
            .field("argon2", &self.argon2)
            .field("custom_hasher", &self.hasher.is_some())
            .field("max_concurrent_hashes", &self.max_concurrent_hashes)
            .field("max_queued_hashes", &self.max_queued_hashes)
            .field("rate_limits", &self.rate_limits)
            .field("sign_in_throttle", &self.sign_in_throttle)
            .field("device_cookie_key", &self.device_cookie_key.is_some())
            .field("reject_common_passwords", &self.reject_common_passwords)
            .field("allow_dev_mailer", &self.allow_dev_mailer)
            .field("product_name", &self.product_name)
            .field("encryption_key", &self.encryption_key)
            .field("old_encryption_keys", &self.old_encryption_keys)
            .field("trusted_device_lifetime", &self.trusted_device_lifetime)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Defaults over `store`.
    pub fn new(store: impl Store + 'static) -> Self {
        Self::with_shared_store(Arc::new(store))
    }

    /// Defaults over a store already behind an `Arc`.
    pub fn with_shared_store(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * DAY),
            // OWASP ASVS 7.3.2 asks for an absolute timeout; NIST SP 800-63B re-authenticates at
            // AAL1 at least every 30 days.
            max_session_lifetime: Some(Duration::from_secs(30 * DAY)),
            short_session_lifetime: Duration::from_secs(DAY),
            // Supabase's default reuse interval; Okta allows 30 s, Cognito up to 60 s.
            refresh_reuse_grace: Duration::from_secs(10),
            // As better-auth's default.
            fresh_age: Duration::from_secs(DAY),
            max_sessions_per_user: None,
            mailer: Arc::new(DevMailer),
            allow_dev_mailer: false,
            mail_templates: None,
            product_name: None,
            // OWASP's Forgot Password Cheat Sheet: short-lived reset tokens.
            reset_token_ttl: Duration::from_secs(60 * 60),
            verification_token_ttl: Duration::from_secs(DAY),
            require_email_verification: false,
            cleanup_interval: Some(Duration::from_secs(24 * 60 * 60)),
            cleanup_first_delay: Duration::from_secs(60),
            cleanup_timeout: Duration::from_secs(60 * 60),
            cleanup_pace: CleanupPace::default(),
            min_password_chars: 8,
            max_password_bytes: 1024,
            argon2: Argon2Params::default(),
            hasher: None,
            // One core left to the request path: on 2 cores this keeps GET /session's p99 during
            // flat-out sign-ins at about 2x idle instead of 5 to 7x, for up to half the sign-ins/s
            // (BENCHMARKS.md).
            max_concurrent_hashes: std::thread::available_parallelism()
                .map_or(1, usize::from)
                .saturating_sub(1)
                .max(1),
            max_queued_hashes: None,
            rate_limits: Some(RateLimits::default()),
            sign_in_throttle: Some(SignInThrottle::default()),
            device_cookie_key: None,
            reject_common_passwords: true,
            encryption_key: None,
            old_encryption_keys: Vec::new(),
            // As better-auth's trusted devices, and GitHub's "don't ask again on this device".
            trusted_device_lifetime: Duration::from_secs(30 * DAY),
            http: HttpOptions::default(),
        }
    }

    /// How long an access token is accepted.
    #[must_use]
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// How long a refresh token is accepted; at least the access TTL. Each refresh starts it
    /// again (an idle timeout), within [`max_session_lifetime`](Self::max_session_lifetime).
    #[must_use]
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// How long a session may live from its sign-in, however often it is refreshed; `None`
    /// lets refreshes extend it forever, as the Go library does. A session adopted from a Go
    /// database counts from its `created_at`.
    #[must_use]
    pub fn max_session_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_session_lifetime = lifetime;
        self
    }

    /// How long a session signed in without "remember me" may live (its cookies also end with
    /// the browser session); never longer than [`max_session_lifetime`](Self::max_session_lifetime).
    #[must_use]
    pub fn short_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.short_session_lifetime = lifetime;
        self
    }

    /// How long after a refresh the refresh token it replaced still answers with the same new
    /// pair, so that two tabs refreshing together, or a client retrying after a lost response,
    /// stay signed in, and the access token it replaced can still sign the session out. After
    /// the window, that refresh token coming back is taken as theft, as is any refresh token
    /// the session issued earlier, whenever it comes back: the session is revoked. The secret a
    /// rotation keeps for its replays is forgotten after the window. Zero turns replays off: the
    /// token replaced last is then simply refused (401), as upstream refuses the loser of a
    /// race; older ones still revoke.
    #[must_use]
    pub fn refresh_reuse_grace(mut self, grace: Duration) -> Self {
        self.refresh_reuse_grace = grace;
        self
    }

    /// How recent a session's sign-in (not its last refresh) must be for the operations that
    /// need a fresh session: changing the password or the email, and signing out everywhere.
    /// Older sessions get [`AuthError::ReauthenticationRequired`](super::AuthError).
    #[must_use]
    pub fn fresh_age(mut self, age: Duration) -> Self {
        self.fresh_age = age;
        self
    }

    /// At most this many sessions per user: a sign-in beyond it ends the user's least recently
    /// used sessions. `None` (the default): no cap.
    #[must_use]
    pub fn max_sessions_per_user(mut self, cap: Option<u32>) -> Self {
        self.max_sessions_per_user = cap;
        self
    }

    /// Where the engine's messages go: verification, reset and change-of-email links, and the
    /// notices. Every message is sent off the request path.
    #[must_use]
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// How long a password-reset link is accepted.
    #[must_use]
    pub fn reset_token_ttl(mut self, ttl: Duration) -> Self {
        self.reset_token_ttl = ttl;
        self
    }

    /// How long an email-verification or change-of-email link is accepted.
    #[must_use]
    pub fn verification_token_ttl(mut self, ttl: Duration) -> Self {
        self.verification_token_ttl = ttl;
        self
    }

    /// Whether an account must verify its address before it can sign in. When on, sign-up
    /// mails a verification link and opens no session, and answers the same whether the
    /// address is new or taken (the owner of a taken one gets a notice instead), so sign-up
    /// reveals nothing; a sign-in of an unverified account is refused exactly as a wrong
    /// password is ([`AuthError::InvalidCredentials`](super::AuthError), counted on the throttle),
    /// and with the right password a fresh link is mailed, within the mail limits: otherwise
    /// whoever signed a stranger's address up would learn from the answer whether it was new.
    #[must_use]
    pub fn require_email_verification(mut self, required: bool) -> Self {
        self.require_email_verification = required;
        self
    }

    /// How often the cleanup loop sweeps dead sessions (and expired one-time tokens and abuse
    /// counters, where the store keeps them); `None` starts no loop (call
    /// [`Store::cleanup_expired_sessions`],
    /// [`OneTimeTokens::cleanup_expired_tokens`](crate::OneTimeTokens::cleanup_expired_tokens) and
    /// [`AbuseCounters::cleanup_rate_limits`](crate::AbuseCounters::cleanup_rate_limits) from
    /// your own scheduler, and [`Store::clear_rotation_secrets`] every grace window, which the
    /// loop otherwise does).
    #[must_use]
    pub fn cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// The first sweep runs after a random delay up to this long, so that a fleet restarted
    /// together does not sweep at once.
    #[must_use]
    pub fn cleanup_first_delay(mut self, max_delay: Duration) -> Self {
        self.cleanup_first_delay = max_delay;
        self
    }

    /// How long one sweep may take before it is abandoned (the batches already done stay done).
    #[must_use]
    pub fn cleanup_timeout(mut self, timeout: Duration) -> Self {
        self.cleanup_timeout = timeout;
        self
    }

    /// How hard the cleanup loop's sweeps work (see [`CleanupPace`]); [`CleanupPace::UNTHROTTLED`]
    /// runs them flat out.
    #[must_use]
    pub fn cleanup_pace(mut self, pace: CleanupPace) -> Self {
        self.cleanup_pace = pace;
        self
    }

    /// Password bounds for sign-up: at least `min_chars` characters, at most `max_bytes` bytes.
    #[must_use]
    pub fn password_length(mut self, min_chars: usize, max_bytes: usize) -> Self {
        self.min_password_chars = min_chars;
        self.max_password_bytes = max_bytes;
        self
    }

    /// argon2id parameters for the default hasher.
    #[must_use]
    pub fn argon2(mut self, params: Argon2Params) -> Self {
        self.argon2 = params;
        self
    }

    /// Replaces the default hasher, [`password::default_hasher`](crate::password::default_hasher):
    /// argon2id, which with the `bcrypt` feature (on by default) also verifies, and has re-hashed,
    /// the bcrypt hashes of a database adopted from the Go library.
    #[must_use]
    pub fn password_hasher(mut self, hasher: Arc<dyn PasswordHasher>) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// How many hashes or verifications may run at once: the number of hashing threads, which
    /// run at the lowest scheduling priority. The rest wait their turn, so memory stays bounded
    /// under a burst of sign-ins.
    #[must_use]
    pub fn max_concurrent_hashes(mut self, threads: usize) -> Self {
        self.max_concurrent_hashes = threads;
        self
    }

    /// How many hashing operations may wait beyond those running. Past it, sign-up, sign-in and
    /// change of password answer [`AuthError::Busy`](super::AuthError::Busy) (HTTP 503 `busy`)
    /// at once instead of queueing without bound. By default 32 per hashing thread: at 11 to
    /// 18 ms a hash, the last in the queue waits about half a second.
    #[must_use]
    pub fn max_queued_hashes(mut self, queued: usize) -> Self {
        self.max_queued_hashes = Some(queued);
        self
    }

    /// The rate limits per client address (and per target email for mails), counted in the
    /// store so that every instance shares them; `None` turns them all off. See [`RateLimits`]
    /// for each limit and its default.
    #[must_use]
    pub fn rate_limits(mut self, limits: Option<RateLimits>) -> Self {
        self.rate_limits = limits;
        self
    }

    /// How consecutive failed sign-ins per email are slowed down and locked; `None` turns the
    /// throttle off. See [`SignInThrottle`] for the defaults.
    #[must_use]
    pub fn sign_in_throttle(mut self, throttle: Option<SignInThrottle>) -> Self {
        self.sign_in_throttle = throttle;
        self
    }

    /// The templates that write the engine's messages (see
    /// [`MailTemplates`](crate::mail::MailTemplates)); [`product_name`](Self::product_name) is
    /// then theirs to use or not.
    #[must_use]
    pub fn mail_templates(mut self, templates: Arc<dyn MailTemplates>) -> Self {
        self.mail_templates = Some(templates);
        self
    }

    /// The product the default templates name ("your Example App account").
    #[must_use]
    pub fn product_name(mut self, name: &str) -> Self {
        self.product_name = Some(name.to_owned());
        self
    }

    /// The secret device cookies are signed with (HMAC-SHA-256), at least 32 bytes of
    /// randomness; every instance of a service must share it, and keep it across restarts.
    ///
    /// A sign-up or sign-in gives the browser a device cookie for the email, which the sign-in
    /// throttle counts apart from every other client (see [`SignInThrottle`]): that is what keeps
    /// a stranger's failures from locking the owner out. Without a key (the default) each process
    /// draws a random one at start: its device cookies are trusted by that process only, until it
    /// stops, and after a restart, or on another instance, an owner's browser counts as untrusted
    /// until its next sign-in. Rotating the key has the same effect once.
    #[must_use]
    pub fn device_cookie_key(mut self, secret: &[u8]) -> Self {
        self.device_cookie_key = Some(secret.to_vec());
        self
    }

    /// The key that seals second-factor secrets at rest (AES-256-GCM); every instance of a
    /// service must share it and keep it across restarts. Without one, enrolling a second factor
    /// is refused ([`AuthError::NoEncryptionKey`](super::AuthError::NoEncryptionKey)). To
    /// rotate, make the new key this one and pass the old one to
    /// [`old_encryption_keys`](Self::old_encryption_keys): each secret is sealed again under the
    /// new key the next time its code is accepted. Needs a store with
    /// [`SecondFactors`](crate::SecondFactors).
    #[must_use]
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.encryption_key = Some(key);
        self
    }

    /// Older keys, which still open the secrets sealed under them (see
    /// [`encryption_key`](Self::encryption_key)).
    #[must_use]
    pub fn old_encryption_keys(mut self, keys: impl IntoIterator<Item = EncryptionKey>) -> Self {
        self.old_encryption_keys = keys.into_iter().collect();
        self
    }

    /// How long a browser trusted at a second-factor sign-in (`trust_device`) skips the code at
    /// its later sign-ins; the trust ends sooner with every session of the user (sign-out
    /// everywhere, a password reset) or with the second factor.
    #[must_use]
    pub fn trusted_device_lifetime(mut self, lifetime: Duration) -> Self {
        self.trusted_device_lifetime = lifetime;
        self
    }

    /// Whether a release build may run with a mailer that writes its links into the logs
    /// ([`Mailer::logs_links`](crate::mail::Mailer::logs_links), the default
    /// [`DevMailer`](crate::mail::DevMailer)): those links reset passwords, so by default only a
    /// debug build accepts one, and [`Auth::new`](super::Auth::new) refuses it otherwise with
    /// [`ConfigError::DevMailer`]. For a demo or a benchmark built in release.
    #[must_use]
    pub fn allow_dev_mailer(mut self, allow: bool) -> Self {
        self.allow_dev_mailer = allow;
        self
    }

    /// Whether a new password (sign-up, change, reset) on the compiled-in list of common
    /// passwords is refused (see [`is_common_password`](super::is_common_password)); on by
    /// default.
    #[must_use]
    pub fn reject_common_passwords(mut self, reject: bool) -> Self {
        self.reject_common_passwords = reject;
        self
    }
}

impl Options {
    /// Cookie and request settings of the HTTP layer (the `axum` feature).
    #[must_use]
    pub fn http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

/// The options, checked by [`Options::validate`]: what the engine reads of them on each request.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) access_ttl: TimeDelta,
    pub(super) refresh_ttl: TimeDelta,
    pub(super) max_session_lifetime: Option<TimeDelta>,
    pub(super) short_session_lifetime: TimeDelta,
    pub(super) refresh_reuse_grace: TimeDelta,
    pub(super) fresh_age: TimeDelta,
    pub(super) max_sessions_per_user: Option<u32>,
    pub(super) reset_token_ttl: TimeDelta,
    pub(super) verification_token_ttl: TimeDelta,
    pub(super) require_email_verification: bool,
    pub(super) min_password_chars: usize,
    pub(super) max_password_bytes: usize,
    pub(super) rate_limits: Option<RateLimits>,
    pub(super) sign_in_throttle: Option<SignInThrottle>,
    /// The configured device-cookie key, or this process's random one.
    pub(super) device_key: DeviceKey,
    /// How long a device cookie is trusted.
    pub(super) device_lifetime: TimeDelta,
    pub(super) reject_common_passwords: bool,
    /// The keys second-factor secrets are sealed with.
    pub(super) keyring: Keyring,
    pub(super) trusted_device_lifetime: TimeDelta,
    /// The product name authenticator apps show beside the account.
    pub(super) issuer: String,
    pub(super) http: HttpOptions,
}

impl Options {
    /// Every check [`Auth::new`](super::Auth::new) makes of the options, in one place: bounds,
    /// durations, and the store capabilities the options need.
    pub(super) fn validate(&self) -> Result<Settings, ConfigError> {
        let access_ttl = ttl("access_ttl", self.access_ttl)?;
        let refresh_ttl = ttl("refresh_ttl", self.refresh_ttl)?;
        if refresh_ttl < access_ttl {
            return Err(ConfigError::RefreshShorterThanAccess {
                access: self.access_ttl,
                refresh: self.refresh_ttl,
            });
        }
        let max_session_lifetime = self
            .max_session_lifetime
            .map(|lifetime| ttl("max_session_lifetime", lifetime))
            .transpose()?;
        const HOUR: Duration = Duration::from_secs(60 * 60);
        if self.refresh_reuse_grace > HOUR {
            return Err(ConfigError::Bounds(
                "refresh_reuse_grace must be at most one hour",
            ));
        }
        let refresh_reuse_grace = TimeDelta::from_std(self.refresh_reuse_grace)
            .map_err(|_| ConfigError::Duration("refresh_reuse_grace"))?;
        if self.max_sessions_per_user == Some(0) {
            return Err(ConfigError::Bounds(
                "max_sessions_per_user must be at least 1",
            ));
        }
        if !(self.cleanup_pace.pause_ratio.is_finite()
            && (0.0..=1000.0).contains(&self.cleanup_pace.pause_ratio))
        {
            return Err(ConfigError::Bounds(
                "cleanup_pace's pause_ratio must be between 0 and 1000",
            ));
        }
        if !(1..=100_000).contains(&self.cleanup_pace.batch_size) {
            return Err(ConfigError::Bounds(
                "cleanup_pace's batch_size must be between 1 and 100000",
            ));
        }
        if self.max_concurrent_hashes == 0 {
            return Err(ConfigError::Bounds(
                "max_concurrent_hashes must be at least 1",
            ));
        }
        if self.min_password_chars > self.max_password_bytes {
            return Err(ConfigError::Bounds(
                "the password minimum is above its maximum",
            ));
        }
        if let Some(interval) = self.cleanup_interval {
            ttl("cleanup_interval", interval)?;
            ttl("cleanup_timeout", self.cleanup_timeout)?;
        }
        if refuses_mailer(
            self.mailer.logs_links(),
            cfg!(debug_assertions),
            self.allow_dev_mailer,
        ) {
            return Err(ConfigError::DevMailer);
        }
        self.http.check()?;
        if self.encryption_key.is_none() && !self.old_encryption_keys.is_empty() {
            // Old keys only open: sealing new secrets under a retired key is what rotation
            // means to stop.
            return Err(ConfigError::Bounds(
                "old_encryption_keys need an encryption_key to seal new secrets with",
            ));
        }
        check_limits(self.rate_limits.as_ref(), self.sign_in_throttle.as_ref())?;
        self.check_capabilities()?;
        let device_key = match &self.device_cookie_key {
            Some(secret) if secret.len() < device::MIN_KEY_BYTES => {
                return Err(ConfigError::Bounds(
                    "device_cookie_key must be at least 32 bytes",
                ));
            }
            Some(secret) => DeviceKey::new(secret),
            None => DeviceKey::random().map_err(|err| ConfigError::Randomness(Box::new(err)))?,
        };
        let device_lifetime = self
            .sign_in_throttle
            .map(|throttle| ttl("device_lifetime", throttle.device_lifetime))
            .transpose()?
            .unwrap_or_default();
        Ok(Settings {
            access_ttl,
            refresh_ttl,
            max_session_lifetime,
            short_session_lifetime: ttl("short_session_lifetime", self.short_session_lifetime)?,
            refresh_reuse_grace,
            fresh_age: ttl("fresh_age", self.fresh_age)?,
            max_sessions_per_user: self.max_sessions_per_user,
            reset_token_ttl: ttl("reset_token_ttl", self.reset_token_ttl)?,
            verification_token_ttl: ttl("verification_token_ttl", self.verification_token_ttl)?,
            require_email_verification: self.require_email_verification,
            min_password_chars: self.min_password_chars,
            max_password_bytes: self.max_password_bytes,
            rate_limits: self.rate_limits,
            sign_in_throttle: self.sign_in_throttle,
            device_key,
            device_lifetime,
            reject_common_passwords: self.reject_common_passwords,
            keyring: Keyring::new(
                self.encryption_key.clone(),
                self.old_encryption_keys.clone(),
            ),
            trusted_device_lifetime: ttl("trusted_device_lifetime", self.trusted_device_lifetime)?,
            issuer: self.product(),
            http: self.http.clone(),
        })
    }

    /// Refuses an option whose store capability is missing: nothing falls back to "allow
    /// everything".
    fn check_capabilities(&self) -> Result<(), ConfigError> {
        let store = &self.store;
        let needs = [
            (
                "max_sessions_per_user",
                self.max_sessions_per_user.is_some(),
                Capability::SessionManagement,
            ),
            (
                "require_email_verification",
                self.require_email_verification,
                Capability::OneTimeTokens,
            ),
            (
                "rate_limits",
                self.rate_limits.is_some(),
                Capability::AbuseCounters,
            ),
            (
                "sign_in_throttle",
                self.sign_in_throttle.is_some(),
                Capability::AbuseCounters,
            ),
            (
                "encryption_key",
                self.encryption_key.is_some(),
                Capability::SecondFactors,
            ),
        ];
        let offered = |capability| match capability {
            Capability::SessionManagement => store.clone().session_management().is_some(),
            Capability::OneTimeTokens => store.clone().one_time_tokens().is_some(),
            Capability::AbuseCounters => store.clone().abuse_counters().is_some(),
            Capability::SecondFactors => store.clone().second_factors().is_some(),
        };
        match needs
            .into_iter()
            .find(|&(_, on, capability)| on && !offered(capability))
        {
            Some((option, _, capability)) => Err(ConfigError::Unsupported { option, capability }),
            None => Ok(()),
        }
    }
}

fn ttl(name: &'static str, value: Duration) -> Result<TimeDelta, ConfigError> {
    const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    if value.is_zero() || value > HUNDRED_YEARS {
        return Err(ConfigError::Duration(name));
    }
    TimeDelta::from_std(value).map_err(|_| ConfigError::Duration(name))
}

/// The longest window or delay accepted: a day for windows and delays, a year for forgetting.
const LIMIT_DAY: Duration = Duration::from_secs(DAY);

/// Refuses limits that cannot work: a zero count or duration, windows over a day, a longest
/// delay below the first.
fn check_limits(
    limits: Option<&RateLimits>,
    throttle: Option<&SignInThrottle>,
) -> Result<(), ConfigError> {
    if let Some(limits) = limits {
        let all = [
            limits.sign_in,
            limits.sign_up,
            limits.refresh,
            limits.mail_per_address,
            limits.mail_per_email,
            limits.mail_per_account,
            limits.token,
        ];
        for limit in all.into_iter().flatten() {
            if limit.max == 0 || limit.window < Duration::from_secs(1) || limit.window > LIMIT_DAY {
                return Err(ConfigError::Bounds(
                    "a rate limit needs a max of at least 1 and a window of 1 s to 1 day",
                ));
            }
        }
    }
    if let Some(throttle) = throttle
        && (throttle.first_delay.is_zero()
            || throttle.max_delay < throttle.first_delay
            || throttle.max_delay > LIMIT_DAY
            || throttle.lock_after == Some(0)
            || throttle.device_lock_after == 0
            || [throttle.forget_after, throttle.lock_for]
                .iter()
                .any(|period| period.is_zero() || *period > 365 * LIMIT_DAY))
    {
        return Err(ConfigError::Bounds(
            "the sign-in throttle needs 0 < first_delay <= max_delay <= 1 day, \
             lock_after and device_lock_after of at least 1, and forget_after and lock_for of up \
             to a year",
        ));
    }
    Ok(())
}

impl Options {
    /// The templates the engine renders its messages with.
    pub(super) fn templates(&self) -> Arc<dyn MailTemplates> {
        if let Some(templates) = &self.mail_templates {
            return templates.clone();
        }
        Arc::new(DefaultTemplates::new(&self.product()))
    }

    /// The product's name: [`product_name`](Self::product_name), or the application's host.
    fn product(&self) -> String {
        match &self.product_name {
            Some(name) => name.clone(),
            None => url::Url::parse(&self.http.app_url)
                .ok()
                .and_then(|url| {
                    let host = url.host_str()?.to_owned();
                    Some(match url.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
                })
                .unwrap_or_else(|| self.http.app_url.clone()),
        }
    }
}

/// Whether a mailer that logs its links is refused: in a release build, unless allowed.
fn refuses_mailer(logs_links: bool, debug_build: bool, allowed: bool) -> bool {
    logs_links && !debug_build && !allowed
}

/// A setting [`Auth::new`](super::Auth::new) refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The refresh TTL is shorter than the access TTL.
    #[error("refresh_ttl ({refresh:?}) is shorter than access_ttl ({access:?})")]
    RefreshShorterThanAccess {
        /// The access TTL.
        access: Duration,
        /// The refresh TTL.
        refresh: Duration,
    },
    /// A duration is zero or too large to add to the current time.
    #[error("{0} must be positive and at most 100 years")]
    Duration(&'static str),
    /// `max_concurrent_hashes` is zero, the password bounds are empty, or a rate limit or the
    /// sign-in throttle is out of range.
    #[error("{0}")]
    Bounds(&'static str),
    /// argon2 refuses the parameters.
    #[error("invalid argon2 parameters")]
    Argon2(#[source] crate::password::PasswordError),
    /// The operating system gave no randomness for the process's device-cookie key.
    #[error("no randomness for the device-cookie key")]
    Randomness(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The password hashing threads could not be started.
    #[error("cannot start the password hashing threads")]
    HashThreads(#[source] std::io::Error),
    /// An option needs a capability the store lacks (see [`Store`]).
    #[error("{option} needs a store with {capability}, which this store does not offer")]
    Unsupported {
        /// The option, e.g. `"rate_limits"`.
        option: &'static str,
        /// What the store lacks.
        capability: crate::store::Capability,
    },
    /// A release build was given a mailer that writes live links into the logs (the default
    /// [`DevMailer`](crate::mail::DevMailer)), without [`Options::allow_dev_mailer`].
    #[error(
        "the development mailer writes live reset and verification links into the logs: set a \
         real mailer with Options::mailer, or opt in with Options::allow_dev_mailer(true)"
    )]
    DevMailer,
    /// The cleanup loop needs a tokio runtime and none is running.
    #[error("Auth::new must be called inside a tokio runtime when the cleanup loop is on")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{MailError, Mailer, Message};

    struct Delivering;

    #[async_trait::async_trait]
    impl Mailer for Delivering {
        async fn send(&self, _message: Message) -> Result<(), MailError> {
            Ok(())
        }
    }

    #[test]
    fn a_release_build_refuses_a_mailer_that_logs_links_unless_allowed() {
        let dev = DevMailer.logs_links();
        assert!(dev);
        assert!(!Delivering.logs_links());
        assert!(refuses_mailer(dev, false, false));
        assert!(!refuses_mailer(dev, false, true));
        assert!(!refuses_mailer(dev, true, false));
        assert!(!refuses_mailer(Delivering.logs_links(), false, false));
        let message = ConfigError::DevMailer.to_string();
        assert!(
            message.contains("Options::allow_dev_mailer(true)"),
            "{message}"
        );
    }
}
