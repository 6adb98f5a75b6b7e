//! Recovery and verification by mail: email verification and password reset, with single-use
//! tokens stored as digests, and mail sent off the request path (the change of email, which
//! uses them too, is in `email_change`).
//!
//! Nothing here tells a stranger whether an address has an account: a reset request, and a
//! request for a new verification link, answer the same and do the same work on the request path
//! whatever the address (the lookup, the token and the mail happen on a task of their own).

use chrono::Utc;
use tracing::{Instrument as _, instrument};

use super::observe::{self, Mailed};
use super::{Auth, AuthError, RequestContext, input, internal};
use crate::limits::EmailDigest;
use crate::mail::{Mail, Message};
use crate::model::{OneTimeToken, TokenPurpose, TokenUse, User};
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
        self.send_verification(&user.email, &token);
        Ok(())
    }

    /// Marks the address a verification link was sent to as verified, if it is still the
    /// user's; the link works once.
    ///
    /// # Errors
    /// [`AuthError::TooManyRequests`] over the client's rate limit for links
    /// ([`RateLimits::token`](crate::RateLimits::token), checked first); [`AuthError::InvalidToken`] for an unknown,
    /// expired, used or other-purpose token (a malformed one without a query); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn verify_email(
        &self,
        token: &str,
        context: &RequestContext,
    ) -> Result<User, AuthError> {
        self.check_token_rate_limit(context).await?;
        let token = one_time(token)?;
        let used = self
            .tokens()?
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
    /// it has an account), or of the client's address in `context`; [`AuthError::Unsupported`]
    /// when the store keeps no one-time tokens; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all)]
    pub async fn resend_verification(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        self.by_address(
            email,
            context.ip_address,
            "verification link not sent",
            |auth, email| async move { auth.send_verification_link(&email).await },
        )
        .await
    }

    /// Off the request path: a new verification link to `email`'s unverified account, unless
    /// the address's mail limit is spent (then nothing is sent).
    pub(super) fn remind_to_verify(&self, email: String) {
        let auth = self.clone();
        self.inner.background.spawn(async move {
            let sent = match auth.check_mail_rate_limit(&email, None).await {
                Ok(()) => auth.send_verification_link(&email).await,
                Err(err) => {
                    if matches!(err, AuthError::TooManyRequests { .. }) {
                        observe::mail(Mailed::SkippedOverLimit);
                    }
                    Err(err)
                }
            };
            if let Err(err) = sent {
                tracing::warn!(error = %err, "verification reminder not sent");
            }
        });
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
        self.send_verification(&user.email, &token);
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
    /// it has an account), or of the client's address in `context`; [`AuthError::Unsupported`]
    /// when the store keeps no one-time tokens; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        self.by_address(
            email,
            context.ip_address,
            "password reset not started",
            |auth, email| async move { auth.send_reset_link(&email).await },
        )
        .await
    }

    /// The request path of a request by address (a reset, a verification resend), the same for
    /// any address: the address checked and the mail limits counted. `send` then runs off the
    /// request path with the normalised address; its failure is logged as `failure`.
    async fn by_address<F, Fut>(
        &self,
        email: &str,
        client: Option<std::net::IpAddr>,
        failure: &'static str,
        send: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(Auth, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        // Refused before the answer, which would otherwise hide that no link can be issued.
        self.tokens()?;
        let email = input::email(email)?;
        self.check_mail_rate_limit(&email, client).await?;
        let auth = self.clone();
        let work = async move {
            if let Err(err) = send(auth, email).await {
                tracing::warn!(error = %err, "{failure}");
            }
        };
        self.inner.background.spawn(work.in_current_span());
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
        self.mail(
            user.email,
            &Mail::ResetPassword {
                link: &link,
                valid_for: self.settings().reset_token_ttl,
            },
        );
        Ok(())
    }

    /// Sets a new password with a reset link's token: the new one passes the sign-up rules;
    /// in the same transaction every session of the user ends, every other link mailed to the
    /// user stops working, and the address, which the link reached, is marked verified. Nobody
    /// is signed in, and the address gets a "your password was changed" notice.
    ///
    /// # Errors
    /// [`AuthError::TooManyRequests`] over the client's rate limit for links
    /// ([`RateLimits::token`](crate::RateLimits::token), checked first); [`AuthError::InvalidInput`] for a new
    /// password the rules refuse (a common one too);
    /// [`AuthError::Busy`] when the hashing queue is full; [`AuthError::InvalidToken`] (also for
    /// a link mailed to an address the account no longer has); [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        self.check_token_rate_limit(context).await?;
        let token = one_time(token)?;
        self.check_new_password(new_password)?;
        // Looked up before the hash: a random token costs one indexed read, not the hashing
        // queue every sign-in needs. The use below still decides.
        if !self
            .tokens()?
            .token_is_live(&token.digest(), TokenPurpose::ResetPassword)
            .await?
        {
            return Err(AuthError::InvalidToken);
        }
        let admission = self.admit_hashing()?;
        let password_hash = self.inner.hashing.hash(new_password).await?;
        drop(admission);
        let used = self
            .tokens()?
            .use_token(
                &token.digest(),
                TokenUse::ResetPassword {
                    password_hash: &password_hash,
                },
            )
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        // A reset is the way out of a lock by failed sign-ins (a store without counters keeps
        // no failures: the throttle is then off).
        if let Some(counters) = &self.inner.counters {
            counters
                .clear_sign_in_failures(&EmailDigest::of(&used.user.email))
                .await?;
        }
        tracing::info!("password reset; every session ended, failed sign-ins cleared");
        self.mail(used.user.email, &Mail::PasswordReset);
        Ok(())
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
    pub(super) fn mail(&self, to: String, mail: &Mail<'_>) {
        let rendered = self.inner.templates.render(mail);
        let message = Message {
            to,
            subject: rendered.subject,
            text: rendered.text,
            html: Some(rendered.html),
            link: mail.link().map(str::to_owned),
        };
        let mailer = self.inner.mailer.clone();
        let work = async move {
            let subject = message.subject.clone();
            match mailer.send(message).await {
                Ok(()) => observe::mail(Mailed::Sent),
                Err(err) => {
                    observe::mail(Mailed::Failed);
                    tracing::warn!(error = %err, subject, "mail not sent");
                }
            }
        };
        self.inner.background.spawn(work.in_current_span());
    }

    /// Mails `email` the link that verifies it with `token`.
    pub(super) fn send_verification(&self, email: &str, token: &Token) {
        let link = self.link("verify-email", token);
        self.mail(
            email.to_owned(),
            &Mail::VerifyAddress {
                link: &link,
                valid_for: self.settings().verification_token_ttl,
            },
        );
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
            TokenPurpose::ResetPassword => self.settings().reset_token_ttl,
            TokenPurpose::RemoveTwoFactor => super::two_factor::REMOVAL_LINK_TTL,
            _ => self.settings().verification_token_ttl,
        };
        self.tokens()?
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

    pub(super) fn link(&self, page: &str, token: &Token) -> String {
        format!(
            "{}/{page}?token={}",
            self.settings().http.app_url,
            token.expose()
        )
    }
}

/// A one-time token as sent, or [`AuthError::InvalidToken`] before any query.
pub(super) fn one_time(token: &str) -> Result<Token, AuthError> {
    Token::parse(token.trim(), TokenKind::OneTime).ok_or(AuthError::InvalidToken)
}
