//! Recovery and verification by mail: email verification, password reset and change of email,
//! with single-use tokens stored as digests, and mail sent off the request path.
//!
//! Nothing here tells a stranger whether an address has an account: a reset request answers the
//! same and does the same work on the request path whatever the address (the lookup, the token
//! and the mail happen on a task of their own).

use chrono::Utc;
use tracing::instrument;

use super::session::SessionRequest;
use super::{Auth, AuthError, input, internal};
use crate::limits::EmailDigest;
use crate::mail::Message;
use crate::model::{OneTimeToken, SessionWithUser, TokenPurpose, TokenUse, User};
use crate::password::PasswordError;
use crate::store::StoreError;
use crate::token::{Token, TokenKind};

impl Auth {
    /// Mails the signed-in user a link that verifies their address (valid
    /// [`Options::verification_token_ttl`](super::Options::verification_token_ttl)); a newer
    /// link voids an older one. Does nothing for an address already verified.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %user.id))]
    pub async fn send_verification_email(&self, user: &User) -> Result<(), AuthError> {
        if user.email_verified {
            return Ok(());
        }
        self.check_mail_rate_limit(&user.email, None).await?;
        let token = self
            .issue_token(user, TokenPurpose::VerifyEmail, Some(&user.email))
            .await?;
        self.mail(self.verification_message(&user.email, &token));
        Ok(())
    }

    /// Marks the address a verification link was sent to as verified, if it is still the
    /// user's; the link works once.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for an unknown, expired, used or other-purpose token (a
    /// malformed one without a query); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn verify_email(&self, token: &str) -> Result<User, AuthError> {
        let token = one_time(token)?;
        let used = self
            .inner
            .store
            .use_token(&token.digest(), TokenUse::VerifyEmail)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        tracing::info!("email verified");
        Ok(used.user)
    }

    /// Mails a new verification link to `email` if it belongs to an account whose address is
    /// not verified yet: the way out for a user whose link expired while sign-in waits for it
    /// ([`Options::require_email_verification`](super::Options::require_email_verification)),
    /// without a session. As [`request_password_reset`](Self::request_password_reset), the
    /// answer and the work done before it are the same for any address: the lookup, the token
    /// and the mail happen off the request path.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed address (the same for any address);
    /// [`AuthError::TooManyRequests`] past the mail limit of the address (counted whether or not
    /// it has an account); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    pub async fn resend_verification(&self, email: &str) -> Result<(), AuthError> {
        self.resend_verification_from(email, None).await
    }

    /// [`resend_verification`](Self::resend_verification) asked by `client`, which the
    /// per-address mail limit counts too.
    ///
    /// # Errors
    /// As for [`resend_verification`](Self::resend_verification).
    pub async fn resend_verification_from(
        &self,
        email: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<(), AuthError> {
        let email = input::email(email)?;
        self.check_mail_rate_limit(&email, client).await?;
        let auth = self.clone();
        self.inner.background.spawn(async move {
            if let Err(err) = auth.send_verification_link(&email).await {
                tracing::warn!(error = %err, "verification link not sent");
            }
        });
        Ok(())
    }

    async fn send_verification_link(&self, email: &str) -> Result<(), AuthError> {
        let Some(user) = self.inner.store.get_user_by_email(email).await? else {
            return Ok(());
        };
        if user.email_verified {
            return Ok(());
        }
        let token = self
            .issue_token(&user, TokenPurpose::VerifyEmail, Some(&user.email))
            .await?;
        self.mail(self.verification_message(&user.email, &token));
        Ok(())
    }

    /// Starts a password reset for `email`: if it has an account, its owner gets a link (valid
    /// [`Options::reset_token_ttl`](super::Options::reset_token_ttl)). The answer, and the work
    /// done before it, are the same whether or not the address has an account: the lookup, the
    /// token and the mail happen off the request path.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed address (the same for any address);
    /// [`AuthError::TooManyRequests`] past the mail limit of the address (counted whether or not
    /// it has an account); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    pub async fn request_password_reset(&self, email: &str) -> Result<(), AuthError> {
        self.request_password_reset_from(email, None).await
    }

    /// [`request_password_reset`](Self::request_password_reset) asked by `client`, which the
    /// per-address mail limit counts too.
    ///
    /// # Errors
    /// As for [`request_password_reset`](Self::request_password_reset).
    pub async fn request_password_reset_from(
        &self,
        email: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<(), AuthError> {
        let email = input::email(email)?;
        self.check_mail_rate_limit(&email, client).await?;
        let auth = self.clone();
        self.inner.background.spawn(async move {
            if let Err(err) = auth.send_reset_link(&email).await {
                tracing::warn!(error = %err, "password reset not started");
            }
        });
        Ok(())
    }

    async fn send_reset_link(&self, email: &str) -> Result<(), AuthError> {
        let Some(user) = self.inner.store.get_user_by_email(email).await? else {
            return Ok(());
        };
        // Bound to the address it goes to: refused if the account's address changes meanwhile.
        let token = self
            .issue_token(&user, TokenPurpose::ResetPassword, Some(&user.email))
            .await?;
        let link = self.link("reset-password", &token);
        self.mail(Message {
            to: user.email,
            subject: "Reset your password".to_owned(),
            text: format!(
                "Someone asked to reset the password of your account. If it was you, follow this \
                 link within {} to choose a new one:\n\n{link}\n\nIf it was not, ignore this \
                 message: your password stays as it is.",
                duration_words(self.inner.reset_token_ttl)
            ),
            link: Some(link),
        });
        Ok(())
    }

    /// Sets a new password with a reset link's token: the new one passes the sign-up rules;
    /// in the same transaction every session of the user ends, every other link mailed to the
    /// user stops working, and the address, which the link reached, is marked verified. Nobody
    /// is signed in, and the address gets a "your password was changed" notice.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a new password the rules refuse (a common one too);
    /// [`AuthError::Busy`] when the hashing queue is full; [`AuthError::InvalidToken`] (also for
    /// a link mailed to an address the account no longer has); [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), AuthError> {
        let token = one_time(token)?;
        self.check_new_password(new_password)?;
        let admission = self.admit_hashing()?;
        let password_hash = self.inner.hashing.hash(new_password).await?;
        drop(admission);
        let used = self
            .inner
            .store
            .use_token(
                &token.digest(),
                TokenUse::ResetPassword {
                    password_hash: &password_hash,
                },
            )
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        // A reset is the way out of a lock by failed sign-ins.
        self.inner
            .store
            .clear_sign_in_failures(&EmailDigest::of(&used.user.email))
            .await?;
        tracing::info!("password reset; every session ended, failed sign-ins cleared");
        self.mail(Message {
            to: used.user.email,
            subject: "Your password was changed".to_owned(),
            text: "The password of your account was just changed with a reset link, and every \
                   session of the account was signed out. If this was not you, reset your \
                   password again at once and check your mailbox's security."
                .to_owned(),
            link: None,
        });
        Ok(())
    }

    /// Asks to move the signed-in user to `new_email`: needs a fresh session and the current
    /// password (one verification, which passes the account's sign-in throttle as a sign-in
    /// does: a wrong one counts as a failed sign-in, and a locked account cannot change its
    /// address). A link goes to the new address, and the change happens when it is followed
    /// ([`confirm_email_change`](Self::confirm_email_change)); the current address is told at
    /// once, with the new one masked and a link that cancels the change
    /// ([`cancel_email_change`](Self::cancel_email_change)). Whether the new address is taken is
    /// not said here: confirming then answers [`AuthError::EmailTaken`].
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::InvalidInput`] for a malformed
    /// address (field `new_email`) or password (field `current_password`);
    /// [`AuthError::InvalidCredentials`] for a wrong password; [`AuthError::TooManyRequests`]
    /// during the account's back-off or past the mail limit of the new address;
    /// [`AuthError::AccountLocked`]; [`AuthError::Busy`] when the hashing queue is full;
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id))]
    pub async fn request_email_change(
        &self,
        current: &SessionWithUser,
        current_password: &str,
        new_email: &str,
    ) -> Result<(), AuthError> {
        self.require_fresh(&current.session)?;
        let new_email = input::email(new_email).map_err(|err| err.for_field("new_email"))?;
        input::password(current_password, 0, self.inner.max_password_bytes)
            .map_err(|err| err.for_field("current_password"))?;
        self.check_current_password(current, current_password)
            .await?;
        if new_email == current.user.email {
            return Ok(());
        }
        self.check_mail_rate_limit(&new_email, None).await?;
        let cancel = self
            .issue_token(
                &current.user,
                TokenPurpose::CancelEmailChange,
                Some(&current.user.email),
            )
            .await?;
        let token = self
            .issue_token(&current.user, TokenPurpose::ChangeEmail, Some(&new_email))
            .await?;
        let ttl = duration_words(self.inner.verification_token_ttl);
        let cancel_link = self.link("cancel-email-change", &cancel);
        self.mail(Message {
            to: current.user.email.clone(),
            subject: "A change of your address was asked".to_owned(),
            text: format!(
                "Someone signed in to your account asked to change its address to {}. The \
                 change happens only if that address confirms it within {ttl}. If it was not \
                 you, follow this link to cancel it, then reset your password:\n\n\
                 {cancel_link}\n\nIf it was you, you need not do anything.",
                masked(&new_email)
            ),
            link: Some(cancel_link),
        });
        let link = self.link("confirm-email", &token);
        self.mail(Message {
            to: new_email,
            subject: "Confirm your new address".to_owned(),
            text: format!(
                "Follow this link within {ttl} to make this the address of your account:\n\n\
                 {link}\n\nIf you did not ask for this, ignore this message."
            ),
            link: Some(link),
        });
        Ok(())
    }

    /// The current password of the signed-in user, checked as a sign-in checks it: through the
    /// account's sign-in throttle (a wrong one counts as a failed sign-in, a right one clears
    /// the failures) and one verification on the hashing threads.
    async fn check_current_password(
        &self,
        current: &SessionWithUser,
        password: &str,
    ) -> Result<(), AuthError> {
        let ticket = self
            .admit_sign_in(&current.user.email, &SessionRequest::default())
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
        ticket.succeeded(self).await
    }

    /// Cancels a pending change of email with the link mailed to the current address when it
    /// was asked: the link to the new address stops working. The link works once, and only
    /// while the address it was mailed to is still the account's.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for an unknown, expired, used or other-purpose token, or one
    /// whose change was already confirmed; [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn cancel_email_change(&self, token: &str) -> Result<(), AuthError> {
        let token = one_time(token)?;
        let used = self
            .inner
            .store
            .use_token(&token.digest(), TokenUse::CancelEmailChange)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        tracing::info!("change of email cancelled");
        Ok(())
    }

    /// Moves the user to the address a change-of-email link was sent to, and marks it verified;
    /// every other link mailed to the user stops working, and the old address gets a notice.
    /// The link works once.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`]; [`AuthError::EmailTaken`] if the address was taken
    /// meanwhile (the link stays usable); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn confirm_email_change(&self, token: &str) -> Result<User, AuthError> {
        let token = one_time(token)?;
        let used = self
            .inner
            .store
            .use_token(&token.digest(), TokenUse::ChangeEmail)
            .await
            .map_err(|err| match err {
                StoreError::DuplicateEmail => AuthError::EmailTaken,
                other => other.into(),
            })?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        tracing::info!("email changed");
        self.mail(Message {
            to: used.previous_email,
            subject: "Your address was changed".to_owned(),
            text: format!(
                "The address of your account was just changed to {}. If this was not you, \
                 reset your password at once.",
                used.user.email
            ),
            link: None,
        });
        Ok(used.user)
    }

    /// Waits until the work started off the request path so far (mail, reset links) is done:
    /// for tests, and for a shutdown that must not lose a message.
    pub async fn flush_background(&self) {
        let tracker = &self.inner.background;
        tracker.close();
        tracker.wait().await;
        tracker.reopen();
    }

    /// Sends `message` off the request path; a failure is logged, without the message's link.
    pub(super) fn mail(&self, message: Message) {
        let mailer = self.inner.mailer.clone();
        self.inner.background.spawn(async move {
            let subject = message.subject.clone();
            if let Err(err) = mailer.send(message).await {
                tracing::warn!(error = %err, subject, "mail not sent");
            }
        });
    }

    /// The mail that asks `email` to verify itself with `token`.
    pub(super) fn verification_message(&self, email: &str, token: &Token) -> Message {
        let link = self.link("verify-email", token);
        Message {
            to: email.to_owned(),
            subject: "Verify your address".to_owned(),
            text: format!(
                "Follow this link within {} to verify the address of your account:\n\n{link}\n\n\
                 If you did not sign up, ignore this message: no account is used with this \
                 address until it is verified.",
                duration_words(self.inner.verification_token_ttl)
            ),
            link: Some(link),
        }
    }

    /// Makes and stores a token of `purpose` for `user`, voiding its earlier ones of that
    /// purpose; the raw token goes only into the mail.
    pub(super) async fn issue_token(
        &self,
        user: &User,
        purpose: TokenPurpose,
        email: Option<&str>,
    ) -> Result<Token, AuthError> {
        let token = Token::generate(TokenKind::OneTime).map_err(internal)?;
        let ttl = match purpose {
            TokenPurpose::ResetPassword => self.inner.reset_token_ttl,
            _ => self.inner.verification_token_ttl,
        };
        self.inner
            .store
            .issue_token(&OneTimeToken {
                token: token.digest(),
                user_id: user.id.clone(),
                purpose,
                email: email.map(str::to_owned),
                expires_at: Utc::now() + ttl,
            })
            .await?;
        Ok(token)
    }

    fn link(&self, page: &str, token: &Token) -> String {
        format!(
            "{}/{page}?token={}",
            self.inner.http.app_url,
            token.expose()
        )
    }
}

/// A one-time token as sent, or [`AuthError::InvalidToken`] before any query.
fn one_time(token: &str) -> Result<Token, AuthError> {
    Token::parse(token.trim(), TokenKind::OneTime).ok_or(AuthError::InvalidToken)
}

/// An address as a notice to another address shows it: the first character of the local part,
/// of the domain's first label, and the rest of the domain from its last dot
/// (`thief@evil.example` → `t***@e***.example`), enough for the owner to recognise an address of
/// their own, too little to tell a stranger where to write.
fn masked(email: &str) -> String {
    let first = |part: &str| part.chars().next().map(String::from).unwrap_or_default();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return format!("{}***", first(email));
    };
    let domain = match domain.rsplit_once('.') {
        Some((name, tld)) => format!("{}***.{tld}", first(name)),
        None => format!("{}***", first(domain)),
    };
    format!("{}***@{domain}", first(local))
}

/// "1 hour", "24 hours", "30 minutes": a lifetime as a message says it.
fn duration_words(ttl: chrono::TimeDelta) -> String {
    let (n, unit) = if ttl.num_hours() >= 1 && ttl.num_minutes() % 60 == 0 {
        (ttl.num_hours(), "hour")
    } else {
        (ttl.num_minutes().max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
