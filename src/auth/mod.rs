//! The engine, [`Auth`], by capability: accounts (sign-up, sign-in), sessions (lookup, refresh,
//! sign-out), managing sessions (listing and ending them, freshness, change of password),
//! recovery (email verification, password reset), change of email, abuse limits (rate limits,
//! failed sign-ins, load shedding) and common passwords, the cleanup loop, the hashing threads,
//! the input rules, the options and the error.

mod abuse;
mod account;
mod cleanup;
mod common_passwords;
mod email_change;
mod error;
mod hashing;
mod http_options;
mod input;
mod manage;
mod options;
mod recovery;
mod session;
mod upgrade;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio_util::task::TaskTracker;

pub use account::SignUp;
pub use common_passwords::is_common_password;
pub use error::AuthError;
pub use http_options::HttpOptions;
pub use options::{ConfigError, Options};
pub use session::{IssuedTokens, SessionRequest, SignedIn};

use self::cleanup::Cleanup;
use self::hashing::Hashing;
use crate::mail::Mailer;
use crate::password::{self, PasswordHasher};
use crate::store::{AbuseCounters, Capability, OneTimeTokens, SessionManagement, Store};

/// The authentication engine: the Rust counterpart of AuthInGo's `authingo.New(...)`.
///
/// Cheap to clone; clones share the store, the hashing threads and the cleanup loop. The loop
/// stops when the last clone is dropped, or on [`shutdown`](Self::shutdown).
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// The store's capabilities, `None` where it lacks one (see [`Store`]).
    management: Option<Arc<dyn SessionManagement>>,
    tokens: Option<Arc<dyn OneTimeTokens>>,
    counters: Option<Arc<dyn AbuseCounters>>,
    access_ttl: TimeDelta,
    refresh_ttl: TimeDelta,
    max_session_lifetime: Option<TimeDelta>,
    short_session_lifetime: TimeDelta,
    refresh_reuse_grace: TimeDelta,
    fresh_age: TimeDelta,
    max_sessions_per_user: Option<u32>,
    mailer: Arc<dyn Mailer>,
    reset_token_ttl: TimeDelta,
    verification_token_ttl: TimeDelta,
    require_email_verification: bool,
    /// Work done off the request path (mail, and what a request must not be seen to wait for).
    background: TaskTracker,
    min_password_chars: usize,
    max_password_bytes: usize,
    rate_limits: Option<crate::limits::RateLimits>,
    sign_in_throttle: Option<crate::limits::SignInThrottle>,
    reject_common_passwords: bool,
    http: HttpOptions,
    hashing: Hashing,
    cleanup: Cleanup,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("access_ttl", &self.inner.access_ttl)
            .field("refresh_ttl", &self.inner.refresh_ttl)
            .field("cleanup_sweeps", &self.cleanup_sweeps())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the engine and, unless `options` turned it off, starts the cleanup loop on the
    /// current tokio runtime.
    ///
    /// # Errors
    /// [`ConfigError`] for inconsistent options, or when the loop is on and no runtime runs.
    pub fn new(options: Options) -> Result<Self, ConfigError> {
        let access_ttl = ttl("access_ttl", options.access_ttl)?;
        let refresh_ttl = ttl("refresh_ttl", options.refresh_ttl)?;
        if refresh_ttl < access_ttl {
            return Err(ConfigError::RefreshShorterThanAccess {
                access: options.access_ttl,
                refresh: options.refresh_ttl,
            });
        }
        let max_session_lifetime = options
            .max_session_lifetime
            .map(|lifetime| ttl("max_session_lifetime", lifetime))
            .transpose()?;
        let short_session_lifetime = ttl("short_session_lifetime", options.short_session_lifetime)?;
        const HOUR: Duration = Duration::from_secs(60 * 60);
        if options.refresh_reuse_grace > HOUR {
            return Err(ConfigError::Bounds(
                "refresh_reuse_grace must be at most one hour",
            ));
        }
        let refresh_reuse_grace = TimeDelta::from_std(options.refresh_reuse_grace)
            .map_err(|_| ConfigError::Duration("refresh_reuse_grace"))?;
        let fresh_age = ttl("fresh_age", options.fresh_age)?;
        let reset_token_ttl = ttl("reset_token_ttl", options.reset_token_ttl)?;
        let verification_token_ttl = ttl("verification_token_ttl", options.verification_token_ttl)?;
        if options.max_sessions_per_user == Some(0) {
            return Err(ConfigError::Bounds(
                "max_sessions_per_user must be at least 1",
            ));
        }
        if !(options.cleanup_pace.pause_ratio.is_finite()
            && (0.0..=1000.0).contains(&options.cleanup_pace.pause_ratio))
        {
            return Err(ConfigError::Bounds(
                "cleanup_pace's pause_ratio must be between 0 and 1000",
            ));
        }
        if !(1..=100_000).contains(&options.cleanup_pace.batch_size) {
            return Err(ConfigError::Bounds(
                "cleanup_pace's batch_size must be between 1 and 100000",
            ));
        }
        if options.max_concurrent_hashes == 0 {
            return Err(ConfigError::Bounds(
                "max_concurrent_hashes must be at least 1",
            ));
        }
        if options.min_password_chars > options.max_password_bytes {
            return Err(ConfigError::Bounds(
                "the password minimum is above its maximum",
            ));
        }
        options.http.check()?;
        abuse::check(
            options.rate_limits.as_ref(),
            options.sign_in_throttle.as_ref(),
        )?;
        let management = options.store.clone().session_management();
        let tokens = options.store.clone().one_time_tokens();
        let counters = options.store.clone().abuse_counters();
        let needs = [
            (
                "max_sessions_per_user",
                options.max_sessions_per_user.is_some(),
                Capability::SessionManagement,
                management.is_some(),
            ),
            (
                "require_email_verification",
                options.require_email_verification,
                Capability::OneTimeTokens,
                tokens.is_some(),
            ),
            (
                "rate_limits",
                options.rate_limits.is_some(),
                Capability::AbuseCounters,
                counters.is_some(),
            ),
            (
                "sign_in_throttle",
                options.sign_in_throttle.is_some(),
                Capability::AbuseCounters,
                counters.is_some(),
            ),
        ];
        if let Some(&(option, _, capability, _)) =
            needs.iter().find(|(_, on, _, offered)| *on && !*offered)
        {
            return Err(ConfigError::Unsupported { option, capability });
        }
        let hasher: Arc<dyn PasswordHasher> = match options.hasher {
            Some(hasher) => hasher,
            None => password::default_hasher(options.argon2).map_err(ConfigError::Argon2)?,
        };
        let queued = options
            .max_queued_hashes
            .unwrap_or(abuse::QUEUED_PER_THREAD * options.max_concurrent_hashes);
        let hashing = Hashing::start(hasher, options.max_concurrent_hashes, queued)
            .map_err(ConfigError::HashThreads)?;
        let cleanup = match options.cleanup_interval {
            Some(interval) => {
                ttl("cleanup_interval", interval)?;
                ttl("cleanup_timeout", options.cleanup_timeout)?;
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(ConfigError::NoRuntime);
                }
                Cleanup::spawn(
                    cleanup::Sweeps {
                        store: options.store.clone(),
                        tokens: tokens.clone(),
                        counters: counters.clone(),
                    },
                    cleanup::Schedule {
                        interval,
                        first_delay: options.cleanup_first_delay,
                        timeout: options.cleanup_timeout,
                        pace: options.cleanup_pace,
                        rotation_grace: refresh_reuse_grace,
                    },
                )
            }
            None => Cleanup::off(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store: options.store,
                management,
                tokens,
                counters,
                access_ttl,
                refresh_ttl,
                max_session_lifetime,
                short_session_lifetime,
                refresh_reuse_grace,
                fresh_age,
                max_sessions_per_user: options.max_sessions_per_user,
                mailer: options.mailer,
                reset_token_ttl,
                verification_token_ttl,
                require_email_verification: options.require_email_verification,
                background: TaskTracker::new(),
                min_password_chars: options.min_password_chars,
                max_password_bytes: options.max_password_bytes,
                rate_limits: options.rate_limits,
                sign_in_throttle: options.sign_in_throttle,
                reject_common_passwords: options.reject_common_passwords,
                http: options.http,
                hashing,
                cleanup,
            }),
        })
    }

    /// The HTTP layer's settings.
    pub fn http_options(&self) -> &HttpOptions {
        &self.inner.http
    }

    /// The store the engine runs on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Whether the store has `capability`: without it, the methods that need it answer
    /// [`AuthError::Unsupported`].
    pub fn supports(&self, capability: Capability) -> bool {
        match capability {
            Capability::SessionManagement => self.inner.management.is_some(),
            Capability::OneTimeTokens => self.inner.tokens.is_some(),
            Capability::AbuseCounters => self.inner.counters.is_some(),
        }
    }

    fn management(&self) -> Result<&dyn SessionManagement, AuthError> {
        self.inner
            .management
            .as_deref()
            .ok_or(AuthError::Unsupported(Capability::SessionManagement))
    }

    fn tokens(&self) -> Result<&dyn OneTimeTokens, AuthError> {
        self.inner
            .tokens
            .as_deref()
            .ok_or(AuthError::Unsupported(Capability::OneTimeTokens))
    }

    fn counters(&self) -> Result<&dyn AbuseCounters, AuthError> {
        self.inner
            .counters
            .as_deref()
            .ok_or(AuthError::Unsupported(Capability::AbuseCounters))
    }

    /// Waits for the engine's start-up work: the dummy hash that a sign-in of an unknown email
    /// verifies against, made on the hashing threads as [`Auth::new`] returns (or now, if no
    /// runtime was running then). A readiness probe that awaits it reports ready once every
    /// failing sign-in costs what a wrong password costs.
    ///
    /// # Errors
    /// [`AuthError::Internal`] when the hash cannot be made.
    pub async fn ready(&self) -> Result<(), AuthError> {
        self.inner.hashing.dummy().await.map(drop)
    }
}

fn ttl(name: &'static str, value: Duration) -> Result<TimeDelta, ConfigError> {
    const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    if value.is_zero() || value > HUNDRED_YEARS {
        return Err(ConfigError::Duration(name));
    }
    TimeDelta::from_std(value).map_err(|_| ConfigError::Duration(name))
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AuthError {
    AuthError::Internal(Box::new(err))
}
