//! Accounts: sign-up (with its enumeration-safe form when verification is required) and sign-in.

use std::net::IpAddr;

use chrono::Utc;
use tracing::{Instrument as _, instrument};

use super::observe::{self, Revoked};
use super::session::{RequestContext, SignedIn};
use super::two_factor::SignIn;
use super::{Auth, AuthError, input, internal};
use crate::limits::LimitedRoute;
use crate::mail::Mail;
use crate::model::{TokenPurpose, User};
use crate::password::PasswordError;
use crate::store::StoreError;
use crate::token::new_id;

/// The outcome of a sign-up.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per sign-up and matched at once"
)]
pub enum SignUp {
    /// The account and its first session, written together.
    SignedIn(SignedIn),
    /// [`Options::require_email_verification`](super::Options::require_email_verification) is
    /// on: no session was opened, and the answer is the same, after the same work, whether the
    /// address was new or already had an account.
    ///
    /// The account is written after this answer, off the request path (so that a new address
    /// does not take a disk flush longer than a taken one): a new address then gets a
    /// verification link, the owner of a taken one a notice
    /// ([`Auth::flush_background`] waits for both). What the answer cannot promise follows: a
    /// store failure at that point is logged (without the address), no account is made and no
    /// mail is sent; the person, who got no link, signs up again.
    VerificationSent,
}

impl SignUp {
    /// The session a sign-up opened; [`AuthError::EmailNotVerified`] for
    /// [`VerificationSent`](Self::VerificationSent), where no session opens until the address is
    /// verified.
    ///
    /// # Errors
    /// [`AuthError::EmailNotVerified`], as said.
    pub fn signed_in(self) -> Result<SignedIn, AuthError> {
        match self {
            Self::SignedIn(signed_in) => Ok(signed_in),
            Self::VerificationSent => Err(AuthError::EmailNotVerified),
        }
    }
}

impl Auth {
    /// Makes an account and its first session, written together. `context` says whether the
    /// session is remembered (if not, it lives at most
    /// [`Options::short_session_lifetime`](super::Options::short_session_lifetime) and its
    /// cookies end with the browser session), and gives the client's user agent and address,
    /// which the user sees in their list of sessions and the sign-up rate limit counts.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a bad email, password (a common one too) or name
    /// (checked first); [`AuthError::TooManyRequests`] over the client's rate limit;
    /// [`AuthError::Busy`] when the hashing queue is full; [`AuthError::EmailTaken`];
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`]. With
    /// [`Options::require_email_verification`](super::Options::require_email_verification) on,
    /// never [`AuthError::EmailTaken`], and no store error from writing the account (see
    /// [`SignUp::VerificationSent`]).
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: &str,
        context: &RequestContext,
    ) -> Result<SignUp, AuthError> {
        let signed_up = self.sign_up_counted(email, password, name, context).await;
        observe::sign_up(match &signed_up {
            Ok(outcome) => Ok(matches!(outcome, SignUp::SignedIn(_))),
            Err(err) => Err(err),
        });
        signed_up
    }

    /// [`sign_up`](Self::sign_up), whose every outcome its caller counts.
    async fn sign_up_counted(
        &self,
        email: &str,
        password: &str,
        name: &str,
        context: &RequestContext,
    ) -> Result<SignUp, AuthError> {
        let email = input::email(email)?;
        self.check_new_password(password)?;
        let name = input::name(name)?;
        // The address first, counted even when the queue then refuses: a flooding address is
        // told 429 and leaves the queue to the others.
        if let Some(client) = context.ip_address {
            self.check_rate_limit(LimitedRoute::SignUp, client).await?;
        }
        let admission = self.admit_hashing()?;

        let password_hash = self.inner.hashing.hash(password).await?;
        drop(admission);
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
        if self.settings().require_email_verification {
            return Ok(self.sign_up_unverified(user, context.ip_address));
        }
        let (session, tokens) = self.new_session(&user.id, now, context)?;
        let device = self.device_cookie(&user.email, context)?;
        tracing::Span::current()
            .record("user.id", &user.id)
            .record("session.id", &session.id);
        self.inner
            .store
            .create_user_with_session(&user, &session)
            .await?;
        tracing::info!("signed up");
        Ok(SignUp::SignedIn(SignedIn {
            user,
            session,
            tokens,
            device,
            trusted_device: None,
        }))
    }

    /// Sign-up while verification is required: nothing before the answer tells a new address
    /// from a taken one. Both have had the same work done (the checks and one hash); the insert,
    /// whose commit costs a new address a disk flush that a taken one (refused by the unique
    /// index) does not pay, and the mail happen on a task of their own: a verification link to
    /// a new address, a notice to the owner of a taken one, and for a store failure a log line
    /// (no address in it) and no mail. Either mail counts on the mail limits of the address and
    /// of the client; over one, the mail is skipped (logged), the answer being already given.
    fn sign_up_unverified(&self, user: User, client: Option<IpAddr>) -> SignUp {
        // The id the account gets if the address is new, so that the lines below can be told
        // apart from another sign-up's.
        tracing::Span::current().record("user.id", &user.id);
        let auth = self.clone();
        let work = async move {
            match auth.inner.store.create_user(&user).await {
                Ok(()) if !auth.mail_within_limits(&user.email, client, false).await => {
                    tracing::info!("signed up, not verified");
                }
                Ok(()) => {
                    tracing::info!("signed up, not verified");
                    match auth
                        .issue_token(&user, TokenPurpose::VerifyEmail, Some(&user.email))
                        .await
                    {
                        Ok(token) => auth.send_verification(&user.email, &token),
                        Err(err) => tracing::warn!(error = %err, "verification link not sent"),
                    }
                }
                Err(StoreError::DuplicateEmail) => {
                    if auth.mail_within_limits(&user.email, client, true).await {
                        auth.mail(user.email, &Mail::SignUpAttempted);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "sign-up not stored: no account, no mail");
                }
            }
        };
        self.inner.background.spawn(work.in_current_span());
        SignUp::VerificationSent
    }

    /// Checks an email and password and opens a session, remembered or not as `context` says
    /// (see [`sign_up`](Self::sign_up)). With
    /// [`Options::max_sessions_per_user`](super::Options::max_sessions_per_user) set, the user's
    /// least recently used sessions beyond it end.
    ///
    /// An unknown email costs one password verification too (against a fixed dummy hash) and
    /// gives the same error as a wrong password.
    ///
    /// Consecutive failures per email slow further attempts down, then lock them
    /// ([`Options::sign_in_throttle`](super::Options::sign_in_throttle)), whether or not the
    /// email has an account; a refused attempt checks no password. An attempt with a device
    /// cookie from an earlier sign-in to the email ([`RequestContext::device`]) is counted on
    /// that device alone, untouched by other clients' failures; a success gives the client a new
    /// one ([`SignedIn::device`]). The failure that locks the email mails its owner a notice
    /// with a reset link.
    ///
    /// An account with a second factor opens no session here: the answer is
    /// [`SignIn::TwoFactorRequired`], whose challenge [`Auth::verify_two_factor`] answers, unless
    /// the request carries the trust of a browser the owner trusted
    /// ([`RequestContext::trusted_device`]).
    ///
    /// The session is written only if the password hash the password matched is still the
    /// account's: a sign-in that raced a reset or change of password fails as a wrong password.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed email or password; [`AuthError::InvalidCredentials`];
    /// [`AuthError::TooManyRequests`] over the client's rate limit or during the email's back-off;
    /// [`AuthError::AccountLocked`]; [`AuthError::Busy`] when the hashing queue is full;
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        context: &RequestContext,
    ) -> Result<SignIn, AuthError> {
        let signed_in = self.sign_in_counted(email, password, context).await;
        observe::sign_in(
            signed_in
                .as_ref()
                .map(|outcome| matches!(outcome, SignIn::TwoFactorRequired(_))),
        );
        signed_in
    }

    /// [`sign_in`](Self::sign_in), whose every outcome its caller counts.
    async fn sign_in_counted(
        &self,
        email: &str,
        password: &str,
        context: &RequestContext,
    ) -> Result<SignIn, AuthError> {
        let email = input::email(email)?;
        input::password(password, 0, self.settings().max_password_bytes)?;
        // Throttled, locked or busy: refused here, before any password work.
        let ticket = self.admit_sign_in(&email, context).await?;

        let hashing = &self.inner.hashing;
        let Some(user) = self.inner.store.get_user_by_email(&email).await? else {
            hashing.spend_one_verification(password).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let matches = match hashing.verify(password, user.password_hash.clone()).await {
            Ok(matches) => matches,
            // A hash this hasher cannot read (e.g. bcrypt from the Go library) fails at once:
            // spend a verification anyway, so that such accounts cannot be told apart by timing.
            Err(AuthError::Internal(err)) if err.is::<PasswordError>() => {
                tracing::warn!(user.id = %user.id, "stored password hash is not readable by the hasher");
                hashing.spend_one_verification(password).await?;
                false
            }
            Err(err) => return Err(err),
        };
        if !matches {
            ticket.failed(self, &user);
            return Err(AuthError::InvalidCredentials);
        }
        if self.settings().require_email_verification && !user.email_verified {
            // Answered as a wrong password, and counted as one: a stranger who signed the
            // address up with a password of their choosing would otherwise learn from this
            // answer (or from the throttle it clears) that the address had no account. The
            // owner gets a fresh link instead, within the mail limits.
            ticket.failed(self, &user);
            self.remind_to_verify(email);
            return Err(AuthError::InvalidCredentials);
        }
        let user = self.upgrade_password_hash(user, password).await;
        let (session, tokens) = self.new_session(&user.id, Utc::now(), context)?;
        tracing::Span::current().record("user.id", &user.id);
        // Only while the hash this sign-in verified is still the user's: a reset or change of
        // password committed since the password was checked leaves the old one dead.
        if !self
            .inner
            .store
            .create_session_verified(&session, &user.password_hash)
            .await?
        {
            tracing::info!("password changed during the sign-in; no session opened");
            return Err(AuthError::InvalidCredentials);
        }
        // The second factor is asked after the insert: a confirmation that committed before it
        // is seen here, one that commits after it ends this session with the others, so no
        // password-only session outlives a factor turned on meanwhile. The session, whose
        // tokens never left, then goes; the failures counted in advance stay counted until a
        // code proves the owner (a stolen password cannot reset the count while guessing).
        if let Some(challenge) = self.second_factor_challenge(&user, context).await? {
            self.inner.store.delete_session(&session.token).await?;
            tracing::info!("password right; waiting for the second factor");
            return Ok(SignIn::TwoFactorRequired(challenge));
        }
        ticket.succeeded(self).await?;
        let device = self.device_cookie(&user.email, context)?;
        tracing::Span::current().record("session.id", &session.id);
        if let Some(cap) = self.settings().max_sessions_per_user {
            let evicted = self.management()?.evict_sessions(&user.id, cap).await?;
            observe::revoked(Revoked::Evicted, evicted);
            if evicted > 0 {
                tracing::info!(evicted, "least recently used sessions ended by the cap");
            }
        }
        tracing::info!("signed in");
        Ok(SignIn::SignedIn(SignedIn {
            user,
            session,
            tokens,
            device,
            trusted_device: None,
        }))
    }
}
