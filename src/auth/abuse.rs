//! Abuse limits in the engine: rate limits per client address, the failed-sign-in throttle per
//! email (and per trusted device, with the device cookies it hands out), and the admission that
//! sheds load when the hashing queue is full.

use std::net::IpAddr;

use chrono::{TimeDelta, Utc};
use tracing::{Instrument as _, instrument};

use super::device::DeviceCookie;
use super::hashing::Admission;
use super::observe::{self, Mailed, Throttled};
use super::session::RequestContext;
use super::{Auth, AuthError, input, internal};
use crate::limits::{
    DeviceDigest, EmailDigest, LimitedRoute, RateLimit, SignInAttempt, mail_account_key,
    mail_email_key,
};
use crate::mail::Mail;
use crate::model::{SessionWithUser, TokenPurpose, User};
use crate::password::PasswordError;

/// The default bound of the hashing queue, per hashing thread.
pub(super) const QUEUED_PER_THREAD: usize = 32;

/// An admitted sign-in: its place in the hashing queue, and the count it added to.
#[derive(Debug)]
pub(super) struct SignInTicket {
    /// Its place in the hashing queue; none for a second factor's code, which hashes nothing.
    _admission: Option<Admission>,
    counted: Counted,
    /// Whether this attempt, if it fails, locks the email.
    locks_if_failed: bool,
}

/// Which count an admitted sign-in added to.
#[derive(Debug)]
enum Counted {
    /// None: the throttle is off.
    Nothing,
    /// The email's untrusted clients'.
    Email(EmailDigest),
    /// One trusted device's, whose cookie came with the attempt.
    Device(DeviceDigest),
}

impl SignInTicket {
    /// The password was right: the failures counted in advance (of the device the attempt came
    /// from, or else of the email's untrusted clients) are cleared.
    pub(super) async fn succeeded(&self, auth: &Auth) -> Result<(), AuthError> {
        match &self.counted {
            Counted::Nothing => {}
            Counted::Email(email) => {
                auth.counters()?.clear_sign_in_failures(email).await?;
            }
            Counted::Device(device) => {
                auth.counters()?.clear_device_failures(device).await?;
            }
        }
        Ok(())
    }

    /// The password was wrong for `user`: if this failure locked the email, its owner is told,
    /// once, off the request path, with a link that resets the password (which unlocks it).
    pub(super) fn failed(&self, auth: &Auth, user: &User) {
        let (true, Some(throttle)) = (self.locks_if_failed, auth.settings().sign_in_throttle)
        else {
            return;
        };
        tracing::warn!(user.id = %user.id, "sign-ins locked for untrusted clients");
        let background = auth.inner.background.clone();
        let (auth, user) = (auth.clone(), user.clone());
        let work = async move {
            // Within the mail limits, as every mail a stranger can cause.
            if !auth.mail_within_limits(&user.email, None, false).await {
                return;
            }
            let settings = auth.settings();
            // A store without one-time tokens gets the notice without a link.
            let link = match auth.tokens() {
                Ok(_) => match auth
                    .issue_token(&user, TokenPurpose::ResetPassword, Some(&user.email))
                    .await
                {
                    Ok(token) => Some((
                        auth.link("reset-password", &token),
                        settings.reset_token_ttl,
                    )),
                    Err(err) => {
                        tracing::warn!(error = %err, "the lock notice goes without a reset link");
                        None
                    }
                },
                Err(_) => None,
            };
            auth.mail(
                user.email,
                &Mail::SignInsLocked {
                    failures: throttle.lock_after.unwrap_or_default(),
                    locked_for: TimeDelta::from_std(throttle.lock_for).unwrap_or(TimeDelta::MAX),
                    reset: link.as_ref().map(|(link, ttl)| (link.as_str(), *ttl)),
                },
            );
        };
        background.spawn(work.in_current_span());
    }
}

impl Auth {
    /// Counts one request of `client` against the rate limit of `route`
    /// ([`Options::rate_limits`](super::Options::rate_limits)). Sign-up, sign-in and refresh
    /// call it themselves with the address of their [`RequestContext`]; it is public for an
    /// application's own routes.
    ///
    /// # Errors
    /// [`AuthError::TooManyRequests`] over the limit; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(route = observe::route_limit(route)))]
    pub async fn check_rate_limit(
        &self,
        route: LimitedRoute,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let Some(limit) = self
            .settings()
            .rate_limits
            .and_then(|limits| limits.of(route))
        else {
            return Ok(());
        };
        self.count(&route.key(client), limit, observe::route_limit(route))
            .await
    }

    /// Counts one use of a mailed link's token by the client of `context`, if known, against
    /// [`RateLimits::token`](crate::RateLimits::token).
    pub(super) async fn check_token_rate_limit(
        &self,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        match context.ip_address {
            Some(client) => self.check_rate_limit(LimitedRoute::Token, client).await,
            None => Ok(()),
        }
    }

    /// Counts one mail asked by the account `user_id` against [`RateLimits::mail_per_account`](crate::RateLimits::mail_per_account).
    pub(super) async fn check_account_mail_limit(&self, user_id: &str) -> Result<(), AuthError> {
        match self.settings().rate_limits.and_then(|l| l.mail_per_account) {
            Some(limit) => {
                self.count(&mail_account_key(user_id), limit, "mail_per_account")
                    .await
            }
            None => Ok(()),
        }
    }

    /// Off the request path, where the answer is already given: whether a mail to `email` asked
    /// by `client` is within [`RateLimits::mail_per_email`](crate::RateLimits::mail_per_email) and
    /// [`RateLimits::mail_per_address`](crate::RateLimits::mail_per_address) (counting it). Over a limit, or when the counters cannot
    /// be reached, the mail is to be skipped, which is logged here (without the address).
    ///
    /// A notice (no link) counts on a budget of its own per address, as large as
    /// [`RateLimits::mail_per_email`](crate::RateLimits::mail_per_email): notices a stranger can trigger do not spend the owner's
    /// budget of links.
    pub(super) async fn mail_within_limits(
        &self,
        email: &str,
        client: Option<IpAddr>,
        notice: bool,
    ) -> bool {
        match self.count_mail(email, client, notice).await {
            Ok(()) => true,
            Err(AuthError::TooManyRequests { .. }) => {
                tracing::warn!("mail limit reached; mail skipped");
                observe::mail(Mailed::SkippedOverLimit);
                false
            }
            Err(err) => {
                tracing::warn!(error = %err, "mail limits not checked; mail skipped");
                false
            }
        }
    }

    /// Counts one password-reset or verification mail to `email` asked by `client` (if known),
    /// against [`RateLimits::mail_per_email`](crate::RateLimits::mail_per_email) and [`RateLimits::mail_per_address`](crate::RateLimits::mail_per_address): what the
    /// recovery and verification flows call before they send a mail. An email that has no
    /// account counts the same.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed email; [`AuthError::TooManyRequests`] over
    /// either limit; [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all)]
    pub async fn check_mail_rate_limit(
        &self,
        email: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let email = input::email(email)?;
        self.count_mail(&email, client, false).await
    }

    /// Counts one mail to `email` (normalised) asked by `client` on the client's limit and on
    /// the address's budget: of links, or of notices when `notice`.
    async fn count_mail(
        &self,
        email: &str,
        client: Option<IpAddr>,
        notice: bool,
    ) -> Result<(), AuthError> {
        if let Some(client) = client {
            self.check_rate_limit(LimitedRoute::Mail, client).await?;
        }
        if let Some(limit) = self.settings().rate_limits.and_then(|l| l.mail_per_email) {
            let key = mail_email_key(&EmailDigest::of(email));
            let (key, name) = if notice {
                (format!("notice:{key}"), "notices_per_email")
            } else {
                (key, "mail_per_email")
            };
            self.count(&key, limit, name).await?;
        }
        Ok(())
    }

    /// Counts one request on the counter `key`; over `limit`, refused and counted as a refusal
    /// of `name`.
    async fn count(
        &self,
        key: &str,
        limit: RateLimit,
        name: &'static str,
    ) -> Result<(), AuthError> {
        let count = self.counters()?.count_request(key, &limit).await?;
        if count.hits > limit.max {
            observe::rate_limited(name);
            return Err(AuthError::TooManyRequests {
                retry_after: count.resets_in,
            });
        }
        Ok(())
    }

    /// Unlocks an email locked by failed sign-ins and clears its count of failures; says whether
    /// it had any. For an application's support tooling; a completed password reset does the
    /// same through [`AbuseCounters::clear_sign_in_failures`](crate::AbuseCounters::clear_sign_in_failures).
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed email; [`AuthError::Unsupported`] when the
    /// store keeps no [`AbuseCounters`](crate::AbuseCounters); [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all)]
    pub async fn unlock_account(&self, email: &str) -> Result<bool, AuthError> {
        let email = input::email(email)?;
        Ok(self
            .counters()?
            .clear_sign_in_failures(&EmailDigest::of(&email))
            .await?)
    }

    /// Operations admitted to the hashing queue now (running or waiting): at most
    /// `max_concurrent_hashes + max_queued_hashes`.
    pub fn hashes_admitted(&self) -> usize {
        self.inner.hashing.admitted()
    }

    /// How many hashing jobs were skipped because their request had gone before their turn.
    pub fn hashes_skipped(&self) -> u64 {
        self.inner.hashing.skipped()
    }

    /// A place for a sign-up's or change of password's hash, or [`AuthError::Busy`].
    pub(super) fn admit_hashing(&self) -> Result<Admission, AuthError> {
        self.inner.hashing.admit()
    }

    /// The current password of the signed-in user, checked as a sign-in checks it: through the
    /// account's sign-in throttle (a wrong one counts as a failed sign-in, a right one clears
    /// the failures) and one verification on the hashing threads.
    ///
    /// Answers the admitted attempt, which holds its place in the hashing queue for whatever
    /// the caller hashes next.
    pub(super) async fn check_current_password(
        &self,
        current: &SessionWithUser,
        password: &str,
    ) -> Result<SignInTicket, AuthError> {
        let ticket = self
            .admit_sign_in(&current.user.email, &RequestContext::default())
            .await?;
        let matches = match self
            .inner
            .hashing
            .verify(password, current.user.password_hash.clone())
            .await
        {
            Ok(matches) => matches,
            // A hash this hasher cannot read matches no password.
            Err(AuthError::Internal(err)) if err.is::<PasswordError>() => false,
            Err(err) => return Err(err),
        };
        if !matches {
            ticket.failed(self, &current.user);
            return Err(AuthError::InvalidCredentials);
        }
        ticket.succeeded(self).await?;
        Ok(ticket)
    }

    /// What a sign-in of `email` (normalised) passes before its password is checked: the client
    /// address's rate limit (counted even when the queue then refuses, so that a flooding
    /// address is told 429 and leaves the queue to others), a place in the hashing queue, then
    /// the failures (which counts this attempt as one): of the device, when the
    /// request carries a device cookie this engine issued for the email and the device is still
    /// trusted; else of the email's untrusted clients.
    pub(super) async fn admit_sign_in(
        &self,
        email: &str,
        request: &RequestContext,
    ) -> Result<SignInTicket, AuthError> {
        // The address is counted before the queue is asked, so that a flooding address is told
        // 429 (its requests count even while the queue is full) and the others keep their share;
        // the email is counted after admission, so that a busy answer never adds a failure to
        // an owner's account.
        if let Some(client) = request.ip_address {
            self.check_rate_limit(LimitedRoute::SignIn, client).await?;
        }
        let admission = self.inner.hashing.admit()?;
        self.count_attempt(email, request, Some(admission)).await
    }

    /// What a second factor's code for `email` (normalised) passes before it is checked: the
    /// client address's sign-in rate limit, then the account's failures, as
    /// [`admit_sign_in`](Self::admit_sign_in) counts them (the code hashes nothing, so it takes
    /// no place in the hashing queue).
    pub(super) async fn admit_second_factor(
        &self,
        email: &str,
        request: &RequestContext,
    ) -> Result<SignInTicket, AuthError> {
        if let Some(client) = request.ip_address {
            self.check_rate_limit(LimitedRoute::SignIn, client).await?;
        }
        self.count_attempt(email, request, None).await
    }

    /// Counts an attempt on the failures of the request's trusted device, or else of the
    /// email's untrusted clients (a failure in advance, cleared by
    /// [`SignInTicket::succeeded`]); refused while throttled or locked.
    async fn count_attempt(
        &self,
        email: &str,
        request: &RequestContext,
        admission: Option<Admission>,
    ) -> Result<SignInTicket, AuthError> {
        let ticket = |counted, locks_if_failed| SignInTicket {
            _admission: admission,
            counted,
            locks_if_failed,
        };
        let Some(throttle) = self.settings().sign_in_throttle else {
            return Ok(ticket(Counted::Nothing, false));
        };
        let counters = self.counters()?;
        let digest = EmailDigest::of(email);
        if let Some(device) = self.trusted_device(&digest, request) {
            match counters
                .begin_device_sign_in_attempt(&device, &throttle)
                .await?
            {
                SignInAttempt::Allowed { .. } => return Ok(ticket(Counted::Device(device), false)),
                SignInAttempt::Throttled { retry_after } => {
                    observe::throttled(Throttled::DeviceBackOff);
                    return Err(AuthError::TooManyRequests { retry_after });
                }
                // Failed too often on its own: no longer trusted, counted as untrusted.
                SignInAttempt::Locked => {}
            }
        }
        match counters.begin_sign_in_attempt(&digest, &throttle).await? {
            SignInAttempt::Allowed { failures } => Ok(ticket(
                Counted::Email(digest),
                throttle.lock_after == Some(failures),
            )),
            SignInAttempt::Throttled { retry_after } => {
                observe::throttled(Throttled::BackOff);
                Err(AuthError::TooManyRequests { retry_after })
            }
            SignInAttempt::Locked => {
                observe::throttled(Throttled::Locked);
                Err(AuthError::AccountLocked)
            }
        }
    }

    /// The device of the request's device cookie, if this engine's key signed it for `email` and
    /// it is still alive.
    fn trusted_device(
        &self,
        email: &EmailDigest,
        request: &RequestContext,
    ) -> Option<DeviceDigest> {
        let settings = self.settings();
        let cookie = request.device.as_deref()?;
        settings
            .device_key
            .verify(cookie, email, Utc::now(), settings.device_lifetime)
    }

    /// A new device cookie for a browser that just proved the password of `email` (normalised),
    /// kept as long as the session it came with; none when the sign-in throttle is off, which
    /// then has nothing to count apart.
    pub(super) fn device_cookie(
        &self,
        email: &str,
        request: &RequestContext,
    ) -> Result<Option<DeviceCookie>, AuthError> {
        let settings = self.settings();
        if settings.sign_in_throttle.is_none() {
            return Ok(None);
        }
        settings
            .device_key
            .issue(
                &EmailDigest::of(email),
                Utc::now(),
                settings.device_lifetime,
                request.remember_me,
            )
            .map(Some)
            .map_err(internal)
    }
}
