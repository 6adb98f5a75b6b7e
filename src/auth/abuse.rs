//! Abuse limits in the engine: rate limits per client address, the failed-sign-in throttle per
//! email, and the admission that sheds load when the hashing queue is full.

use std::net::IpAddr;

use super::hashing::Admission;
use super::session::RequestContext;
use super::{Auth, AuthError, input};
use crate::limits::{
    EmailDigest, LimitedRoute, RateLimit, SignInAttempt, mail_account_key, mail_email_key,
};
use crate::model::SessionWithUser;
use crate::password::PasswordError;

/// The default bound of the hashing queue, per hashing thread.
pub(super) const QUEUED_PER_THREAD: usize = 32;

/// An admitted sign-in: its place in the hashing queue, and the email whose failure count it
/// added to (none when the throttle is off).
#[derive(Debug)]
pub(super) struct SignInTicket {
    _admission: Admission,
    counted: Option<EmailDigest>,
}

impl SignInTicket {
    /// The password was right: the email's failures, counted in advance, are cleared.
    pub(super) async fn succeeded(&self, auth: &Auth) -> Result<(), AuthError> {
        if let Some(email) = &self.counted {
            auth.counters()?.clear_sign_in_failures(email).await?;
        }
        Ok(())
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
        self.count(&route.key(client), limit).await
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
            Some(limit) => self.count(&mail_account_key(user_id), limit).await,
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
        let checked = if notice {
            self.check_notice_limit(email, client).await
        } else {
            self.check_mail_rate_limit(email, client).await
        };
        match checked {
            Ok(()) => true,
            Err(AuthError::TooManyRequests { .. }) => {
                tracing::warn!("mail limit reached; mail skipped");
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
    pub async fn check_mail_rate_limit(
        &self,
        email: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let email = input::email(email)?;
        if let Some(client) = client {
            self.check_rate_limit(LimitedRoute::Mail, client).await?;
        }
        if let Some(limit) = self.settings().rate_limits.and_then(|l| l.mail_per_email) {
            self.count(&mail_email_key(&EmailDigest::of(&email)), limit)
                .await?;
        }
        Ok(())
    }

    async fn check_notice_limit(
        &self,
        email: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        if let Some(client) = client {
            self.check_rate_limit(LimitedRoute::Mail, client).await?;
        }
        if let Some(limit) = self.settings().rate_limits.and_then(|l| l.mail_per_email) {
            let key = format!("notice:{}", mail_email_key(&EmailDigest::of(email)));
            self.count(&key, limit).await?;
        }
        Ok(())
    }

    async fn count(&self, key: &str, limit: RateLimit) -> Result<(), AuthError> {
        let count = self.counters()?.count_request(key, &limit).await?;
        if count.hits > limit.max {
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
            return Err(AuthError::InvalidCredentials);
        }
        ticket.succeeded(self).await?;
        Ok(ticket)
    }

    /// What a sign-in of `email` (normalised) passes before its password is checked, cheapest
    /// refusal first: a place in the hashing queue (no database work, so that a flood is shed
    /// without loading the pool that every other request needs), the client address's rate
    /// limit, then the email's failures (which counts this attempt as one).
    pub(super) async fn admit_sign_in(
        &self,
        email: &str,
        request: &RequestContext,
    ) -> Result<SignInTicket, AuthError> {
        let admission = self.inner.hashing.admit()?;
        if let Some(client) = request.ip_address {
            self.check_rate_limit(LimitedRoute::SignIn, client).await?;
        }
        let Some(throttle) = self.settings().sign_in_throttle else {
            return Ok(SignInTicket {
                _admission: admission,
                counted: None,
            });
        };
        let digest = EmailDigest::of(email);
        match self
            .counters()?
            .begin_sign_in_attempt(&digest, &throttle)
            .await?
        {
            SignInAttempt::Allowed => Ok(SignInTicket {
                _admission: admission,
                counted: Some(digest),
            }),
            SignInAttempt::Throttled { retry_after } => {
                Err(AuthError::TooManyRequests { retry_after })
            }
            SignInAttempt::Locked => Err(AuthError::AccountLocked),
        }
    }
}
