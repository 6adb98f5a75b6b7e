//! The second factor: enrolment of an authenticator app, the sign-in's challenge and its
//! answer (a TOTP code or a recovery code), trusted browsers, and turning it off.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::instrument;

use super::abuse::SignInTicket;
use super::observe;
use super::session::{DeviceTrust, RequestContext, SignedIn};
use super::totp::{self, RecoveryCodes, TotpEnrolment};
use super::{Auth, AuthError, internal};
use crate::mail::Mail;
use crate::model::{
    SecondFactorProof, SessionWithUser, SignInChallenge, TokenPurpose, TokenUse, TotpSecret,
    TrustedDevice, User,
};
use crate::store::SecondFactors;
use crate::token::{Token, TokenKind};

/// How long a sign-in waits for its second factor.
const CHALLENGE_TTL: TimeDelta = TimeDelta::minutes(5);
/// Wrong codes a challenge takes before it ends.
const MAX_CHALLENGE_FAILURES: u32 = 5;
/// How long the link mailed when a factor is added can remove it: long enough for an owner who
/// reads mail weekly, since a thief who added it keeps the account until then.
pub(super) const REMOVAL_LINK_TTL: TimeDelta = TimeDelta::days(7);

/// The outcome of a sign-in whose password was right.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per sign-in and matched at once"
)]
pub enum SignIn {
    /// The session is open.
    SignedIn(SignedIn),
    /// The account has a second factor: no session yet. The client answers the challenge with
    /// [`Auth::verify_two_factor`] within 5 minutes.
    TwoFactorRequired(TwoFactorChallenge),
}

impl SignIn {
    /// The session a sign-in opened; [`AuthError::TwoFactorRequired`] when it waits for the
    /// second factor.
    ///
    /// # Errors
    /// [`AuthError::TwoFactorRequired`], as said.
    pub fn signed_in(self) -> Result<SignedIn, AuthError> {
        match self {
            Self::SignedIn(signed_in) => Ok(signed_in),
            Self::TwoFactorRequired(_) => Err(AuthError::TwoFactorRequired),
        }
    }
}

/// A sign-in waiting for its second factor: the token the client holds (cookie
/// `authingo_two_factor`, only its digest is stored), single use. `Debug` shows no token.
#[derive(Clone)]
pub struct TwoFactorChallenge {
    token: Token,
    expires_at: DateTime<Utc>,
}

impl fmt::Debug for TwoFactorChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwoFactorChallenge")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl TwoFactorChallenge {
    /// The token, for the challenge cookie.
    pub fn expose(&self) -> &str {
        self.token.expose()
    }

    /// When it stops being accepted.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// What answers a sign-in's challenge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorCode<'a> {
    /// The six digits the authenticator app shows.
    Totp(&'a str),
    /// One of the recovery codes, used up by this sign-in.
    RecoveryCode(&'a str),
}

impl fmt::Debug for SecondFactorCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Totp(<redacted>)",
            Self::RecoveryCode(_) => "RecoveryCode(<redacted>)",
        })
    }
}

/// What proves the owner when the second factor is turned off.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorProof<'a> {
    /// The account's password.
    Password(&'a str),
    /// A code of the authenticator app.
    Totp(&'a str),
}

impl fmt::Debug for TwoFactorProof<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Password(<redacted>)",
            Self::Totp(_) => "Totp(<redacted>)",
        })
    }
}

/// Whether an account has a second factor, and how many recovery codes it has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoFactorStatus {
    /// A confirmed second factor protects the account.
    pub enabled: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
}

impl Auth {
    /// Starts enrolling an authenticator app for the signed-in user: needs a fresh session and
    /// the current password (counted on the account's sign-in throttle, as a sign-in). Answers a
    /// new secret (160 bits), its `otpauth://` URI and QR code, once; nothing protects the
    /// account until [`confirm_two_factor`](Self::confirm_two_factor) proves the app holds it.
    /// The secret is stored sealed under [`Options::encryption_key`](super::Options::encryption_key).
    /// Asking again replaces a pending enrolment.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoEncryptionKey`];
    /// [`AuthError::TwoFactorAlreadyEnabled`]; [`AuthError::InvalidCredentials`] (and
    /// [`AuthError::TooManyRequests`] or [`AuthError::AccountLocked`] as for a sign-in);
    /// [`AuthError::Busy`]; [`AuthError::Unsupported`]; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn enable_two_factor(
        &self,
        current: &SessionWithUser,
        current_password: &str,
    ) -> Result<TotpEnrolment, AuthError> {
        self.require_fresh(&current.session)?;
        let second_factors = self.second_factors()?;
        let keyring = &self.settings().keyring;
        if !keyring.can_seal() {
            return Err(AuthError::NoEncryptionKey);
        }
        self.check_password_input(current_password)?;
        self.check_current_password(current, current_password)
            .await?;
        let user = &current.user;
        let secret = totp::new_secret().map_err(internal)?;
        let sealed = keyring.seal(&user.id, &secret).map_err(internal)?;
        let stored = TotpSecret {
            user_id: user.id.clone(),
            key_id: sealed.key_id,
            ciphertext: sealed.ciphertext,
            confirmed_at: None,
            last_used_step: None,
        };
        if !second_factors.begin_totp(&stored).await? {
            return Err(AuthError::TwoFactorAlreadyEnabled);
        }
        tracing::info!("second factor enrolment started");
        totp::enrolment(&secret, &self.settings().issuer, &user.email).map_err(internal)
    }

    /// Confirms the pending enrolment with a code of the app: from then on every sign-in of the
    /// account needs a code (or a recovery code). Every other session of the user ends (they
    /// were opened with the password alone), and the owner is mailed a notice. Answers the ten
    /// recovery codes, once. Needs a fresh session.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::TwoFactorNotEnabled`] without a
    /// pending enrolment; [`AuthError::TwoFactorAlreadyEnabled`]; [`AuthError::InvalidCode`];
    /// [`AuthError::NoEncryptionKey`]; [`AuthError::Unsupported`]; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn confirm_two_factor(
        &self,
        current: &SessionWithUser,
        code: &str,
    ) -> Result<RecoveryCodes, AuthError> {
        self.require_fresh(&current.session)?;
        let second_factors = self.second_factors()?;
        let user = &current.user;
        let Some(secret) = second_factors.totp_secret(&user.id).await? else {
            return Err(AuthError::TwoFactorNotEnabled);
        };
        if secret.confirmed_at.is_some() {
            return Err(AuthError::TwoFactorAlreadyEnabled);
        }
        // Counted on the account's throttle like every code: a stolen session must not guess
        // its way to the recovery codes.
        let ticket = self
            .admit_second_factor(&user.email, &RequestContext::default())
            .await?;
        let plain = self.open_secret(&secret)?;
        let Some(step) = totp::matching_step(&plain, code, Utc::now()) else {
            ticket.failed(self, user);
            return Err(AuthError::InvalidCode);
        };
        ticket.succeeded(self).await?;
        let (codes, digests) = totp::new_recovery_codes().map_err(internal)?;
        if !second_factors
            .confirm_totp(
                &user.id,
                &secret.ciphertext,
                step,
                &digests,
                &current.session.id,
            )
            .await?
        {
            // Replaced by another enrolment, or confirmed by another request, meanwhile.
            return Err(AuthError::InvalidCode);
        }
        tracing::info!("second factor enabled");
        self.mail_factor_added(user).await;
        Ok(codes)
    }

    /// Follows the link mailed when a second factor was added, for an owner who did not add it:
    /// the factor goes (secret, recovery codes, trusted browsers), and so do every session and
    /// every other link of the account; the owner is mailed a notice. The link works once, for
    /// 7 days, while the account keeps the address it was mailed to.
    ///
    /// # Errors
    /// [`AuthError::TooManyRequests`] over the client's rate limit for links;
    /// [`AuthError::InvalidToken`]; [`AuthError::Unsupported`]; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn remove_two_factor_by_link(
        &self,
        token: &str,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        self.check_token_rate_limit(context).await?;
        let token = super::recovery::one_time(token)?;
        let used = self
            .tokens()?
            .use_token(&token.digest(), TokenUse::RemoveTwoFactor)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        tracing::warn!("second factor removed by its owner's link; every session ended");
        self.mail(used.user.email.clone(), &Mail::TwoFactorDisabled);
        Ok(())
    }

    /// The notice of a factor just added, with the link that removes it (when the store keeps
    /// one-time tokens and one could be issued).
    async fn mail_factor_added(&self, user: &User) {
        // A store without one-time tokens gets the notice without a link.
        let link = match self.tokens() {
            Ok(_) => match self
                .issue_token(user, TokenPurpose::RemoveTwoFactor, Some(&user.email))
                .await
            {
                Ok(token) => Some(self.link("remove-two-factor", &token)),
                Err(err) => {
                    tracing::warn!(error = %err, "the notice goes without a removal link");
                    None
                }
            },
            Err(_) => None,
        };
        self.mail(
            user.email.clone(),
            &Mail::TwoFactorEnabled {
                remove: link.as_deref().map(|link| (link, REMOVAL_LINK_TTL)),
            },
        );
    }

    /// Turns the second factor off (the secret, the recovery codes and the trusted browsers go),
    /// proved by the password or by a code of the app; the owner is mailed a notice. Needs a
    /// fresh session. A wrong password or code counts as a failed sign-in of the account.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::TwoFactorNotEnabled`];
    /// [`AuthError::InvalidCredentials`] for a wrong password, [`AuthError::InvalidCode`] for a
    /// wrong code (and [`AuthError::TooManyRequests`] or [`AuthError::AccountLocked`] as for a
    /// sign-in); [`AuthError::Busy`]; [`AuthError::NoEncryptionKey`]; [`AuthError::Unsupported`];
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn disable_two_factor(
        &self,
        current: &SessionWithUser,
        proof: TwoFactorProof<'_>,
    ) -> Result<(), AuthError> {
        self.require_fresh(&current.session)?;
        let second_factors = self.second_factors()?;
        let user = &current.user;
        let Some(secret) = second_factors.totp_secret(&user.id).await? else {
            return Err(AuthError::TwoFactorNotEnabled);
        };
        match proof {
            TwoFactorProof::Password(password) => {
                self.check_password_input(password)?;
                self.check_current_password(current, password).await?;
            }
            TwoFactorProof::Totp(code) => {
                if secret.confirmed_at.is_none() {
                    return Err(AuthError::TwoFactorNotEnabled);
                }
                self.accept_code(second_factors, user, &secret, code)
                    .await?;
            }
        }
        if !second_factors.remove_second_factor(&user.id).await? {
            return Err(AuthError::TwoFactorNotEnabled);
        }
        if secret.confirmed_at.is_some() {
            tracing::info!("second factor disabled");
            self.mail(user.email.clone(), &Mail::TwoFactorDisabled);
        }
        Ok(())
    }

    /// New recovery codes in place of the old ones (which stop working), proved by a code of the
    /// app; answered once. Needs a fresh session.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::TwoFactorNotEnabled`];
    /// [`AuthError::InvalidCode`] (counted as a failed sign-in: [`AuthError::TooManyRequests`],
    /// [`AuthError::AccountLocked`]); [`AuthError::NoEncryptionKey`]; [`AuthError::Unsupported`];
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn regenerate_recovery_codes(
        &self,
        current: &SessionWithUser,
        code: &str,
    ) -> Result<RecoveryCodes, AuthError> {
        self.require_fresh(&current.session)?;
        let second_factors = self.second_factors()?;
        let user = &current.user;
        let secret = second_factors
            .totp_secret(&user.id)
            .await?
            .filter(|secret| secret.confirmed_at.is_some())
            .ok_or(AuthError::TwoFactorNotEnabled)?;
        let ticket = self
            .admit_second_factor(&user.email, &RequestContext::default())
            .await?;
        let plain = self.open_secret(&secret)?;
        let (codes, digests) = totp::new_recovery_codes().map_err(internal)?;
        let replaced = match totp::matching_step(&plain, code, Utc::now()) {
            Some(step) => {
                second_factors
                    .replace_recovery_codes(&user.id, step, &digests)
                    .await?
            }
            None => false,
        };
        if !replaced {
            ticket.failed(self, user);
            return Err(AuthError::InvalidCode);
        }
        ticket.succeeded(self).await?;
        tracing::info!("recovery codes replaced");
        Ok(codes)
    }

    /// Whether the account `user_id` has a second factor, and its recovery codes left; off for a
    /// store without [`SecondFactors`].
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    pub async fn two_factor_status(&self, user_id: &str) -> Result<TwoFactorStatus, AuthError> {
        let Some(second_factors) = self.inner.second_factors.as_deref() else {
            return Ok(TwoFactorStatus {
                enabled: false,
                recovery_codes_left: 0,
            });
        };
        let enabled = self.two_factor_enabled(user_id).await?;
        let recovery_codes_left = if enabled {
            second_factors.recovery_codes_left(user_id).await?
        } else {
            0
        };
        Ok(TwoFactorStatus {
            enabled,
            recovery_codes_left,
        })
    }

    /// Whether the account `user_id` has a confirmed second factor (one statement; `false` for a
    /// store without [`SecondFactors`]): what `GET /session` shows.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    pub async fn two_factor_enabled(&self, user_id: &str) -> Result<bool, AuthError> {
        let Some(second_factors) = self.inner.second_factors.as_deref() else {
            return Ok(false);
        };
        Ok(second_factors
            .totp_secret(user_id)
            .await?
            .is_some_and(|secret| secret.confirmed_at.is_some()))
    }

    /// Answers a sign-in's challenge (the token of [`SignIn::TwoFactorRequired`]) with a TOTP
    /// code or a recovery code and opens the session, remembered as the sign-in asked. With
    /// `trust_device`, the browser skips the code at its sign-ins for
    /// [`Options::trusted_device_lifetime`](super::Options::trusted_device_lifetime)
    /// ([`SignedIn::trusted_device`]).
    ///
    /// A code is accepted once: the step it matched is recorded by the statement that opens the
    /// session, and of concurrent answers to one challenge, or with one code, at most one opens a
    /// session. Codes are counted on the account's sign-in throttle like passwords (on the
    /// browser's device cookie if it has one); a challenge ends after 5 wrong codes. Using a
    /// recovery code mails the owner a notice.
    ///
    /// # Errors
    /// [`AuthError::InvalidChallenge`]; [`AuthError::InvalidCode`];
    /// [`AuthError::TooManyRequests`] or [`AuthError::AccountLocked`] as for a sign-in (no code
    /// was checked); [`AuthError::NoEncryptionKey`] for a TOTP code sealed under a key no
    /// longer configured (a recovery code still works); [`AuthError::Unsupported`];
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn verify_two_factor(
        &self,
        challenge: &str,
        code: SecondFactorCode<'_>,
        trust_device: bool,
        context: &RequestContext,
    ) -> Result<SignedIn, AuthError> {
        let outcome = self
            .verify_two_factor_counted(challenge, code, trust_device, context)
            .await;
        observe::two_factor(&outcome.as_ref().map(|_| match code {
            SecondFactorCode::Totp(_) => "totp",
            SecondFactorCode::RecoveryCode(_) => "recovery_code",
        }));
        outcome
    }

    /// [`verify_two_factor`](Self::verify_two_factor), whose every outcome its caller counts.
    async fn verify_two_factor_counted(
        &self,
        challenge: &str,
        code: SecondFactorCode<'_>,
        trust_device: bool,
        context: &RequestContext,
    ) -> Result<SignedIn, AuthError> {
        let second_factors = self.second_factors()?;
        let digest = Token::parse(challenge, TokenKind::OneTime)
            .ok_or(AuthError::InvalidChallenge)?
            .digest();
        let challenge = second_factors
            .get_challenge(&digest)
            .await?
            .ok_or(AuthError::InvalidChallenge)?;
        let user = self
            .inner
            .store
            .get_user(&challenge.user_id)
            .await?
            .ok_or(AuthError::InvalidChallenge)?;
        tracing::Span::current().record("user.id", &user.id);
        let ticket = self.admit_second_factor(&user.email, context).await?;
        let recovery_digest;
        let proof = match code {
            SecondFactorCode::Totp(code) => {
                let secret = second_factors
                    .totp_secret(&user.id)
                    .await?
                    .filter(|secret| secret.confirmed_at.is_some())
                    .ok_or(AuthError::InvalidChallenge)?;
                let plain = self.open_secret(&secret)?;
                match totp::matching_step(&plain, code, Utc::now()) {
                    Some(step) => {
                        self.reseal_if_old(second_factors, &secret, &plain).await;
                        SecondFactorProof::Totp { step }
                    }
                    None => {
                        return Err(self
                            .wrong_code(second_factors, &ticket, &user, &digest)
                            .await);
                    }
                }
            }
            SecondFactorCode::RecoveryCode(code) => match totp::recovery_code_digest(code) {
                Some(found) => {
                    recovery_digest = found;
                    SecondFactorProof::RecoveryCode(&recovery_digest)
                }
                None => {
                    return Err(self
                        .wrong_code(second_factors, &ticket, &user, &digest)
                        .await);
                }
            },
        };
        let opening = context.clone().remember_me(challenge.persistent);
        let (session, tokens) = self.new_session(&user.id, Utc::now(), &opening)?;
        let Some(recovery_codes_left) = second_factors
            .complete_challenge(&digest, proof, &session)
            .await?
        else {
            // The code's step was already used, the recovery code spent, or the challenge taken
            // by a concurrent answer.
            return Err(self
                .wrong_code(second_factors, &ticket, &user, &digest)
                .await);
        };
        tracing::Span::current().record("session.id", &session.id);
        ticket.succeeded(self).await?;
        if let SecondFactorProof::RecoveryCode(_) = proof {
            tracing::info!(recovery_codes_left, "recovery code used");
            self.mail(
                user.email.clone(),
                &Mail::RecoveryCodeUsed {
                    left: recovery_codes_left,
                },
            );
        }
        let trusted_device = if trust_device {
            Some(self.trust_device(second_factors, &user.id).await?)
        } else {
            None
        };
        if let Some(cap) = self.settings().max_sessions_per_user {
            self.management()?.evict_sessions(&user.id, cap).await?;
        }
        let device = self.device_cookie(&user.email, &opening)?;
        tracing::info!("signed in with a second factor");
        Ok(SignedIn {
            user,
            session,
            tokens,
            device,
            trusted_device,
        })
    }

    /// After a right password for `user`: `None` when the account has no second factor or the
    /// request comes from a browser it trusts; otherwise the challenge the client must answer.
    pub(super) async fn second_factor_challenge(
        &self,
        user: &User,
        context: &RequestContext,
    ) -> Result<Option<TwoFactorChallenge>, AuthError> {
        let Some(second_factors) = self.inner.second_factors.as_deref() else {
            return Ok(None);
        };
        let enabled = second_factors
            .totp_secret(&user.id)
            .await?
            .is_some_and(|secret| secret.confirmed_at.is_some());
        if !enabled {
            return Ok(None);
        }
        if let Some(trusted) = context
            .trusted_device
            .as_deref()
            .and_then(|cookie| Token::parse(cookie, TokenKind::OneTime))
            && second_factors
                .is_trusted_device(&trusted.digest(), &user.id)
                .await?
        {
            return Ok(None);
        }
        let token = Token::generate(TokenKind::OneTime).map_err(internal)?;
        let expires_at = Utc::now() + CHALLENGE_TTL;
        second_factors
            .create_challenge(&SignInChallenge {
                digest: token.digest(),
                user_id: user.id.clone(),
                persistent: context.remember_me,
                failures: 0,
                expires_at,
            })
            .await?;
        Ok(Some(TwoFactorChallenge { token, expires_at }))
    }

    /// Checks `code` for `user`'s confirmed `secret` and records its step (once), counted on the
    /// account's sign-in throttle.
    async fn accept_code(
        &self,
        second_factors: &dyn SecondFactors,
        user: &User,
        secret: &TotpSecret,
        code: &str,
    ) -> Result<(), AuthError> {
        let ticket = self
            .admit_second_factor(&user.email, &RequestContext::default())
            .await?;
        let plain = self.open_secret(secret)?;
        let accepted = match totp::matching_step(&plain, code, Utc::now()) {
            Some(step) => second_factors.accept_totp_step(&user.id, step).await?,
            None => false,
        };
        if !accepted {
            ticket.failed(self, user);
            return Err(AuthError::InvalidCode);
        }
        ticket.succeeded(self).await
    }

    /// A wrong answer to the challenge `digest`: counted on the challenge (which ends at the
    /// fifth) and on the account's throttle. Answers the error to return.
    async fn wrong_code(
        &self,
        second_factors: &dyn SecondFactors,
        ticket: &SignInTicket,
        user: &User,
        digest: &crate::token::TokenDigest,
    ) -> AuthError {
        ticket.failed(self, user);
        match second_factors
            .fail_challenge(digest, MAX_CHALLENGE_FAILURES)
            .await
        {
            Ok(_) => AuthError::InvalidCode,
            Err(err) => err.into(),
        }
    }

    /// A new trust for this browser, stored by digest.
    async fn trust_device(
        &self,
        second_factors: &dyn SecondFactors,
        user_id: &str,
    ) -> Result<DeviceTrust, AuthError> {
        let token = Token::generate(TokenKind::OneTime).map_err(internal)?;
        let expires_at = Utc::now() + self.settings().trusted_device_lifetime;
        second_factors
            .trust_device(&TrustedDevice {
                digest: token.digest(),
                user_id: user_id.to_owned(),
                expires_at,
            })
            .await?;
        Ok(DeviceTrust { token, expires_at })
    }

    /// The secret in clear, opened with whichever configured key sealed it.
    fn open_secret(&self, secret: &TotpSecret) -> Result<Vec<u8>, AuthError> {
        self.settings()
            .keyring
            .open(&secret.user_id, &secret.key_id, &secret.ciphertext)
            .map_err(|err| match err {
                super::sealing::SealError::UnknownKey(_) | super::sealing::SealError::NoKey => {
                    tracing::error!(error = %err, "second factor secret cannot be opened");
                    AuthError::NoEncryptionKey
                }
                other => internal(other),
            })
    }

    /// Seals `secret` again under the newest key if an older one sealed it: key rotation
    /// completes as codes are used. A failure leaves the old sealing, which still opens.
    async fn reseal_if_old(
        &self,
        second_factors: &dyn SecondFactors,
        secret: &TotpSecret,
        plain: &[u8],
    ) {
        let keyring = &self.settings().keyring;
        if keyring.sealing_id() == Some(secret.key_id.as_str()) {
            return;
        }
        let Ok(sealed) = keyring.seal(&secret.user_id, plain) else {
            return;
        };
        match second_factors
            .reseal_totp(
                &secret.user_id,
                &secret.ciphertext,
                &sealed.key_id,
                &sealed.ciphertext,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(key.id = %sealed.key_id, "second factor sealed under the newest key")
            }
            Err(err) => tracing::warn!(error = %err, "second factor not sealed again"),
        }
    }

    /// The password field's shape, before any work.
    fn check_password_input(&self, password: &str) -> Result<(), AuthError> {
        super::input::password(password, 0, self.settings().max_password_bytes)
            .map_err(|err| err.for_field("current_password"))
    }
}
