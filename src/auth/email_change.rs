//! The change of email: asked with the current password, told at once to the current address
//! with a link that cancels it, confirmed by a link to the new one.

use chrono::Utc;
use tracing::instrument;

use super::recovery::one_time;
use super::{Auth, AuthError, RequestContext, input, internal};
use crate::mail::messages;
use crate::model::{OneTimeToken, SessionWithUser, TokenPurpose, TokenUse, User};
use crate::store::StoreError;
use crate::token::{Token, TokenKind};

impl Auth {
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
    /// during the account's back-off, or past the mail limits of the account
    /// ([`RateLimits::mail_per_account`](crate::RateLimits::mail_per_account)), of the client
    /// in `context` or of the new address;
    /// [`AuthError::AccountLocked`]; [`AuthError::Busy`] when the hashing queue is full;
    /// [`AuthError::InvalidSession`] if the session ended or the password changed during the
    /// request (nothing is then issued); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id))]
    pub async fn request_email_change(
        &self,
        current: &SessionWithUser,
        current_password: &str,
        new_email: &str,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        self.require_fresh(&current.session)?;
        let new_email = input::email(new_email).map_err(|err| err.for_field("new_email"))?;
        input::password(current_password, 0, self.settings().max_password_bytes)
            .map_err(|err| err.for_field("current_password"))?;
        self.check_current_password(current, current_password)
            .await?;
        if new_email == current.user.email {
            return Ok(());
        }
        // The mails go to whatever address the session names: limited per account, per client
        // address and per new address.
        self.check_account_mail_limit(&current.user.id).await?;
        self.check_mail_rate_limit(&new_email, context.ip_address)
            .await?;
        // Both links only while the session and the password just checked are still the
        // account's: a reset or sign-out everywhere committed meanwhile took the links with it.
        let cancel = self
            .issue_token_for(
                current,
                TokenPurpose::CancelEmailChange,
                &current.user.email,
            )
            .await?;
        let token = self
            .issue_token_for(current, TokenPurpose::ChangeEmail, &new_email)
            .await?;
        let ttl = self.settings().verification_token_ttl;
        let cancel_link = self.link("cancel-email-change", &cancel);
        self.mail(messages::email_change_asked(
            current.user.email.clone(),
            &new_email,
            cancel_link,
            ttl,
        ));
        let link = self.link("confirm-email", &token);
        self.mail(messages::confirm_new_address(new_email, link, ttl));
        Ok(())
    }

    /// Makes and stores a token of `purpose` for the signed-in user, for `email`, while
    /// `current`'s session and password hash are still the account's
    /// ([`OneTimeTokens::issue_token_for_session`](crate::OneTimeTokens::issue_token_for_session)).
    async fn issue_token_for(
        &self,
        current: &SessionWithUser,
        purpose: TokenPurpose,
        email: &str,
    ) -> Result<Token, AuthError> {
        let token = Token::generate(TokenKind::OneTime).map_err(internal)?;
        let issued = self
            .tokens()?
            .issue_token_for_session(
                &OneTimeToken {
                    token: token.digest(),
                    user_id: current.user.id.clone(),
                    purpose,
                    email: Some(email.to_owned()),
                    expires_at: Utc::now() + self.settings().verification_token_ttl,
                },
                &current.session.id,
                &current.user.password_hash,
            )
            .await?;
        if !issued {
            tracing::info!("session or password changed during the request; no link issued");
            return Err(AuthError::InvalidSession);
        }
        Ok(token)
    }

    /// Cancels a pending change of email with the link mailed to the current address when it
    /// was asked: the link to the new address stops working. The link works once, and only
    /// while the address it was mailed to is still the account's.
    ///
    /// # Errors
    /// [`AuthError::TooManyRequests`] over the client's rate limit for links
    /// ([`RateLimits::token`](crate::RateLimits::token), checked first); [`AuthError::InvalidToken`] for an unknown,
    /// expired, used or other-purpose token, or one whose change was already confirmed; [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn cancel_email_change(
        &self,
        token: &str,
        context: &RequestContext,
    ) -> Result<(), AuthError> {
        self.check_token_rate_limit(context).await?;
        let token = one_time(token)?;
        let used = self
            .tokens()?
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
    /// [`AuthError::TooManyRequests`] over the client's rate limit for links
    /// ([`RateLimits::token`](crate::RateLimits::token), checked first); [`AuthError::InvalidToken`];
    /// [`AuthError::EmailTaken`] if the address was taken
    /// meanwhile (the link stays usable); [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn confirm_email_change(
        &self,
        token: &str,
        context: &RequestContext,
    ) -> Result<User, AuthError> {
        self.check_token_rate_limit(context).await?;
        let token = one_time(token)?;
        let used = self
            .tokens()?
            .use_token(&token.digest(), TokenUse::ChangeEmail)
            .await
            .map_err(|err| match err {
                StoreError::DuplicateEmail => AuthError::EmailTaken,
                other => other.into(),
            })?
            .ok_or(AuthError::InvalidToken)?;
        tracing::Span::current().record("user.id", &used.user.id);
        tracing::info!("email changed");
        self.mail(messages::email_changed(
            used.previous_email,
            &used.user.email,
        ));
        Ok(used.user)
    }
}
