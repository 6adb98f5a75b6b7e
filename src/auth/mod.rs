//! The engine, [`Auth`], by capability: accounts (sign-up, sign-in), sessions (lookup, refresh,
//! sign-out), managing sessions (listing and ending them, freshness, change of password),
//! recovery (email verification, password reset), change of email, abuse limits (rate limits,
//! failed sign-ins, load shedding) and common passwords, the cleanup loop, the hashing threads,
//! the input rules, the options and the error.

mod abuse;
mod account;
mod cleanup;
mod common_passwords;
mod device;
mod email_change;
mod error;
mod hashing;
mod http_options;
mod input;
mod manage;
mod observe;
mod options;
mod recovery;
mod sealing;
mod session;
mod totp;
mod two_factor;
mod upgrade;

use std::fmt;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

pub use account::SignUp;
pub use common_passwords::is_common_password;
pub use device::DeviceCookie;
pub use error::AuthError;
pub use http_options::{ForwardedHeader, HttpOptions};
pub use options::{ConfigError, Options};
pub use sealing::{EncryptionKey, KeyError};
pub use totp::{RecoveryCodes, TotpEnrolment};
pub use two_factor::{
    SecondFactorCode, SignIn, TwoFactorChallenge, TwoFactorProof, TwoFactorStatus,
};

use self::options::Settings;
pub use session::{DeviceTrust, IssuedTokens, RequestContext, SignedIn};

use self::cleanup::Cleanup;
use self::hashing::Hashing;
use crate::mail::{MailTemplates, Mailer};
use crate::password::{self, PasswordHasher};
use crate::store::{
    AbuseCounters, Capability, OneTimeTokens, SecondFactors, SessionManagement, Store,
};

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
    second_factors: Option<Arc<dyn SecondFactors>>,
    /// The options, checked.
    settings: Settings,
    mailer: Arc<dyn Mailer>,
    templates: Arc<dyn MailTemplates>,
    /// Work done off the request path (mail, and what a request must not be seen to wait for).
    background: TaskTracker,
    hashing: Hashing,
    cleanup: Cleanup,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("access_ttl", &self.inner.settings.access_ttl)
            .field("refresh_ttl", &self.inner.settings.refresh_ttl)
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
        let settings = options.validate()?;
        let templates = options.templates();
        let hasher: Arc<dyn PasswordHasher> = match options.hasher {
            Some(hasher) => hasher,
            None => password::default_hasher(options.argon2).map_err(ConfigError::Argon2)?,
        };
        let queued = options
            .max_queued_hashes
            .unwrap_or(abuse::QUEUED_PER_THREAD * options.max_concurrent_hashes);
        let hashing = Hashing::start(hasher, options.max_concurrent_hashes, queued)
            .map_err(ConfigError::HashThreads)?;
        let management = options.store.clone().session_management();
        let tokens = options.store.clone().one_time_tokens();
        let counters = options.store.clone().abuse_counters();
        let second_factors = options.store.clone().second_factors();
        let cleanup = match options.cleanup_interval {
            Some(interval) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(ConfigError::NoRuntime);
                }
                Cleanup::spawn(
                    cleanup::Sweeps {
                        store: options.store.clone(),
                        tokens: tokens.clone(),
                        counters: counters.clone(),
                        second_factors: second_factors.clone(),
                    },
                    cleanup::Schedule {
                        interval,
                        first_delay: options.cleanup_first_delay,
                        timeout: options.cleanup_timeout,
                        pace: options.cleanup_pace,
                        rotation_grace: settings.refresh_reuse_grace,
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
                second_factors,
                settings,
                templates,
                mailer: options.mailer,
                background: TaskTracker::new(),
                hashing,
                cleanup,
            }),
        })
    }

    /// The HTTP layer's settings.
    pub fn http_options(&self) -> &HttpOptions {
        &self.inner.settings.http
    }

    /// The options [`Auth::new`] checked.
    fn settings(&self) -> &Settings {
        &self.inner.settings
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
            Capability::SecondFactors => self.inner.second_factors.is_some(),
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

    fn second_factors(&self) -> Result<&dyn SecondFactors, AuthError> {
        self.inner
            .second_factors
            .as_deref()
            .ok_or(AuthError::Unsupported(Capability::SecondFactors))
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

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AuthError {
    AuthError::Internal(Box::new(err))
}
