//! The engine: sign-up, sign-in, session lookup, refresh, sign-out, and the cleanup loop.

mod error;
mod hashing;
mod input;
mod options;

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;
use tracing::instrument;

pub use error::{AuthError, InputReason};
pub use options::{ConfigError, HttpOptions, Options};

use self::hashing::HashPool;
use crate::cleanup::{self, Schedule};
use crate::model::{Session, SessionRotation, SessionWithUser, User};
use crate::password::{Argon2id, PasswordError, PasswordHasher};
use crate::store::Store;
use crate::token::{Token, TokenKind, new_id};

/// The raw tokens handed to the client, with their expiries. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// The access token (cookie `authingo_session`).
    pub access_token: Token,
    /// When the access token expires.
    pub access_expires_at: DateTime<Utc>,
    /// The refresh token (cookie `authingo_refresh`).
    pub refresh_token: Token,
    /// When the refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
}

/// The outcome of a sign-up, sign-in or refresh: the user, the session and its new tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// The session, as stored (token digests only).
    pub session: Session,
    /// The raw tokens for the client; the store never saw them.
    pub tokens: IssuedTokens,
}

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
    access_ttl: TimeDelta,
    refresh_ttl: TimeDelta,
    min_password_chars: usize,
    max_password_bytes: usize,
    http: HttpOptions,
    hashing: HashPool,
    /// A hash of no password, verified against when the email is unknown, so that sign-in costs
    /// the same whether or not the account exists. Made on first need, off the async workers.
    dummy_hash: OnceCell<String>,
    stop: watch::Sender<bool>,
    cleanup: Mutex<Option<JoinHandle<()>>>,
    sweeps: Arc<AtomicU64>,
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

fn ttl(name: &'static str, value: Duration) -> Result<TimeDelta, ConfigError> {
    const HUNDRED_YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    if value.is_zero() || value > HUNDRED_YEARS {
        return Err(ConfigError::Duration(name));
    }
    TimeDelta::from_std(value).map_err(|_| ConfigError::Duration(name))
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
        let http = &options.http;
        if !HttpOptions::valid_cookie_name(&http.session_cookie)
            || !HttpOptions::valid_cookie_name(&http.refresh_cookie)
            || http.session_cookie == http.refresh_cookie
        {
            return Err(ConfigError::Bounds(
                "cookie names must be two different RFC 6265 tokens",
            ));
        }
        let hasher: Arc<dyn PasswordHasher> = match options.hasher {
            Some(hasher) => hasher,
            None => Arc::new(Argon2id::new(options.argon2).map_err(ConfigError::Argon2)?),
        };
        let hashing = HashPool::start(hasher, options.max_concurrent_hashes)
            .map_err(ConfigError::HashThreads)?;
        let (stop, stopped) = watch::channel(false);
        let sweeps = Arc::new(AtomicU64::new(0));
        let cleanup = match options.cleanup_interval {
            Some(interval) => {
                ttl("cleanup_interval", interval)?;
                ttl("cleanup_timeout", options.cleanup_timeout)?;
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(ConfigError::NoRuntime);
                }
                let schedule = Schedule {
                    interval,
                    first_delay: options.cleanup_first_delay,
                    timeout: options.cleanup_timeout,
                };
                Some(cleanup::spawn(
                    options.store.clone(),
                    schedule,
                    sweeps.clone(),
                    stopped,
                ))
            }
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store: options.store,
                access_ttl,
                refresh_ttl,
                min_password_chars: options.min_password_chars,
                max_password_bytes: options.max_password_bytes,
                http: options.http,
                hashing,
                dummy_hash: OnceCell::new(),
                stop,
                cleanup: Mutex::new(cleanup),
                sweeps,
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

    /// Makes an account and its first session, written together.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a bad email, password or name (checked first);
    /// [`AuthError::EmailTaken`]; [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<SignedIn, AuthError> {
        let email = input::email(email)?;
        input::password(
            password,
            self.inner.min_password_chars,
            self.inner.max_password_bytes,
        )?;
        let name = input::name(name)?;

        let password_hash = self.hash(password).await?;
        let now = Utc::now();
        let user = User {
            id: new_id("usr_").map_err(internal)?,
            email,
            name,
            password_hash,
            email_verified: false,
            created_at: Some(now),
            updated_at: Some(now),
        };
        let (session, tokens) = self.new_session(&user.id, now)?;
        tracing::Span::current()
            .record("user.id", &user.id)
            .record("session.id", &session.id);
        self.inner
            .store
            .create_user_with_session(&user, &session)
            .await?;
        tracing::info!("signed up");
        Ok(SignedIn {
            user,
            session,
            tokens,
        })
    }

    /// Checks an email and password and opens a session.
    ///
    /// An unknown email costs one password verification too (against a fixed dummy hash) and
    /// gives the same error as a wrong password.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed email or password; [`AuthError::InvalidCredentials`];
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignedIn, AuthError> {
        let email = input::email(email)?;
        input::password(password, 0, self.inner.max_password_bytes)?;

        let Some(user) = self.inner.store.get_user_by_email(&email).await? else {
            self.spend_one_verification(password).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let matches = match self.verify(password, user.password_hash.clone()).await {
            Ok(matches) => matches,
            // A hash this hasher cannot read (e.g. bcrypt from the Go library) fails at once:
            // spend a verification anyway, so that such accounts cannot be told apart by timing.
            Err(AuthError::Internal(err)) if err.is::<PasswordError>() => {
                tracing::warn!(user.id = %user.id, "stored password hash is not readable by the hasher");
                self.spend_one_verification(password).await?;
                false
            }
            Err(err) => return Err(err),
        };
        if !matches {
            return Err(AuthError::InvalidCredentials);
        }
        let (session, tokens) = self.new_session(&user.id, Utc::now())?;
        tracing::Span::current()
            .record("user.id", &user.id)
            .record("session.id", &session.id);
        self.inner.store.create_session(&session).await?;
        tracing::info!("signed in");
        Ok(SignedIn {
            user,
            session,
            tokens,
        })
    }

    /// The live session of an access token, with its user; `None` for a token that is unknown,
    /// expired, or not shaped like one of ours (refused without a query).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    pub async fn get_session(
        &self,
        access_token: &str,
    ) -> Result<Option<SessionWithUser>, AuthError> {
        let Some(token) = Token::parse(access_token, TokenKind::Access) else {
            return Ok(None);
        };
        Ok(self.inner.store.get_session(&token.digest()).await?)
    }

    /// Exchanges a refresh token for a new pair; the old access and refresh tokens stop working.
    /// Of concurrent refreshes with one token, one succeeds.
    ///
    /// # Errors
    /// [`AuthError::InvalidSession`] for an unknown, expired or already used token;
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, AuthError> {
        let old = Token::parse(refresh_token, TokenKind::Refresh)
            .ok_or(AuthError::InvalidSession)?
            .digest();
        let now = Utc::now();
        let tokens = self.new_tokens(now)?;
        let rotation = SessionRotation {
            token: tokens.access_token.digest(),
            refresh_token: tokens.refresh_token.digest(),
            expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
        };
        let rotated = self
            .inner
            .store
            .refresh_session(&old, &rotation)
            .await?
            .ok_or(AuthError::InvalidSession)?;
        tracing::Span::current()
            .record("user.id", &rotated.user.id)
            .record("session.id", &rotated.session.id);
        Ok(SignedIn {
            user: rotated.user,
            session: rotated.session,
            tokens,
        })
    }

    /// Ends the session of an access token or a refresh token; says whether one was ended.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    pub async fn sign_out(&self, token: &str) -> Result<bool, AuthError> {
        let parsed = Token::parse(token, TokenKind::Access)
            .or_else(|| Token::parse(token, TokenKind::Refresh));
        match parsed {
            Some(token) => Ok(self.inner.store.delete_session(&token.digest()).await?),
            None => Ok(false),
        }
    }

    /// How many cleanup sweeps have finished (whatever their outcome).
    pub fn cleanup_sweeps(&self) -> u64 {
        self.inner.sweeps.load(Ordering::Relaxed)
    }

    /// Whether the cleanup loop is running.
    pub fn is_cleanup_running(&self) -> bool {
        self.inner
            .cleanup
            .lock()
            .map(|task| task.as_ref().is_some_and(|task| !task.is_finished()))
            .unwrap_or(false)
    }

    /// Stops the cleanup loop, waiting for a sweep in progress to finish. The engine keeps
    /// working otherwise; calling it again does nothing.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let task = self
            .inner
            .cleanup
            .lock()
            .map(|mut task| task.take())
            .unwrap_or(None);
        if let Some(task) = task {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "cleanup loop ended abnormally");
            }
        }
    }

    fn new_tokens(&self, now: DateTime<Utc>) -> Result<IssuedTokens, AuthError> {
        Ok(IssuedTokens {
            access_token: Token::generate(TokenKind::Access).map_err(internal)?,
            access_expires_at: now + self.inner.access_ttl,
            refresh_token: Token::generate(TokenKind::Refresh).map_err(internal)?,
            refresh_expires_at: now + self.inner.refresh_ttl,
        })
    }

    fn new_session(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Session, IssuedTokens), AuthError> {
        let tokens = self.new_tokens(now)?;
        let session = Session {
            id: new_id("ses_").map_err(internal)?,
            user_id: user_id.to_owned(),
            token: tokens.access_token.digest(),
            refresh_token: tokens.refresh_token.digest(),
            expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
            created_at: Some(now),
        };
        Ok((session, tokens))
    }

    /// Runs `work` with the hasher on the hashing threads (see [`hashing`]).
    async fn with_hasher<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        self.inner.hashing.run(work).await.map_err(internal)
    }

    async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.with_hasher(move |hasher| hasher.hash(&password))
            .await?
            .map_err(internal)
    }

    async fn verify(&self, password: &str, hash: String) -> Result<bool, AuthError> {
        let password = password.to_owned();
        self.with_hasher(move |hasher| hasher.verify(&password, &hash))
            .await?
            .map_err(internal)
    }

    /// Costs what one verification costs, for sign-ins that have no usable hash to check: a
    /// verification against the dummy hash or, the first time, making it (one hash with the same
    /// parameters costs the same).
    async fn spend_one_verification(&self, password: &str) -> Result<(), AuthError> {
        if let Some(dummy) = self.inner.dummy_hash.get() {
            self.verify(password, dummy.clone()).await?;
            return Ok(());
        }
        self.inner
            .dummy_hash
            .get_or_try_init(|| self.hash("authingo: no such account"))
            .await
            .map(drop)
    }
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AuthError {
    AuthError::Internal(Box::new(err))
}
