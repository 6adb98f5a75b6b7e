//! Managing sessions: the user's list, ending one, the others or all of them, freshness for
//! sensitive operations, and the change of password; and the lookups of admin tooling.

use chrono::Utc;
use tracing::instrument;

use super::observe::{self, Revoked};
use super::{Auth, AuthError, input};
use crate::mail::Mail;
use crate::model::{EndSessions, Session, SessionWithUser, User};

impl Auth {
    /// The user's sessions that can still be used, most recently used first
    /// ([`Session::last_used_at`]). Compare their ids with the current session's to mark it.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %user.id))]
    pub async fn list_sessions(&self, user: &User) -> Result<Vec<Session>, AuthError> {
        self.list_user_sessions(&user.id).await
    }

    /// The account with this email (normalised as a sign-in normalises it: trimmed,
    /// lower-cased, its domain in Unicode form), for an application's admin tooling; `None` when
    /// there is none.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a malformed email; [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id))]
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, AuthError> {
        let email = input::email(email)?;
        let found = self.store().get_user_by_email(&email).await?;
        if let Some(user) = &found {
            tracing::Span::current().record("user.id", &user.id);
        }
        Ok(found)
    }

    /// [`list_sessions`](Self::list_sessions) by user id, for an application's admin tooling.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<Session>, AuthError> {
        Ok(self.management()?.list_sessions(user_id).await?)
    }

    /// Ends the session `session_id` if it is one of `user`'s; says whether one ended. Another
    /// user's session id is treated exactly as an unknown one.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %user.id))]
    pub async fn revoke_session(&self, user: &User, session_id: &str) -> Result<bool, AuthError> {
        let ended = self
            .management()?
            .delete_user_session(&user.id, session_id)
            .await?;
        observe::revoked(Revoked::One, u64::from(ended));
        Ok(ended)
    }

    /// Ends every session of the user but `current`; returns how many ended.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn revoke_other_sessions(&self, current: &SessionWithUser) -> Result<u64, AuthError> {
        let ended = self
            .management()?
            .delete_user_sessions(&current.user.id, Some(&current.session.id))
            .await?;
        observe::revoked(Revoked::Others, ended);
        Ok(ended)
    }

    /// Ends every session of the user, `current` included ("sign out everywhere"), and voids
    /// every link mailed to the user before (verification, reset, change of email); returns how
    /// many sessions ended. Needs a fresh session.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`] for a session older than
    /// [`Options::fresh_age`](super::Options::fresh_age); [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn revoke_all_sessions(&self, current: &SessionWithUser) -> Result<u64, AuthError> {
        self.require_fresh(&current.session)?;
        self.revoke_user_sessions(&current.user.id).await
    }

    /// Ends every session of the user `user_id` and voids every link mailed to the user, for an
    /// application's admin tooling; returns how many sessions ended.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn revoke_user_sessions(&self, user_id: &str) -> Result<u64, AuthError> {
        let ended = self
            .management()?
            .delete_user_sessions(user_id, None)
            .await?;
        observe::revoked(Revoked::Everywhere, ended);
        Ok(ended)
    }

    /// Whether `session` signed in (its sign-in, not its last refresh) within
    /// [`Options::fresh_age`](super::Options::fresh_age). A session with no sign-in time (adopted
    /// from another system) is not fresh.
    pub fn is_fresh(&self, session: &Session) -> bool {
        session
            .created_at
            .is_some_and(|signed_in| Utc::now() - signed_in < self.settings().fresh_age)
    }

    /// `Ok` for a fresh session (see [`is_fresh`](Self::is_fresh)).
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`] otherwise.
    pub fn require_fresh(&self, session: &Session) -> Result<(), AuthError> {
        if self.is_fresh(session) {
            Ok(())
        } else {
            Err(AuthError::ReauthenticationRequired)
        }
    }

    /// Changes the password of the signed-in user: needs a fresh session and the current
    /// password (one verification; a wrong one is [`AuthError::InvalidCredentials`] and changes
    /// nothing). The new one passes the sign-up rules, and is stored with `updated_at` only over
    /// the hash the current password matched, so that a reset committed meanwhile stands; when
    /// `revoke_other_sessions` is true (the HTTP route's default) every other session of the user
    /// ends in the same transaction, and the current one stays. Every link mailed to the user
    /// before (verification, reset, change of email) stops working, and the owner is mailed a
    /// notice.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::InvalidInput`] for a new password
    /// the rules refuse, a common one too (checked before any hashing); [`AuthError::Busy`]
    /// when the hashing queue is full; [`AuthError::InvalidCredentials`] (counted as a failed
    /// sign-in of the account: [`AuthError::TooManyRequests`] and [`AuthError::AccountLocked`]
    /// as for a sign-in, before any verification);
    /// [`AuthError::InvalidSession`] if the account is gone or its password changed since the
    /// session was read (a reset, which ended the session too); [`AuthError::Unavailable`] or
    /// [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id = %current.user.id, session.id = %current.session.id))]
    pub async fn change_password(
        &self,
        current: &SessionWithUser,
        current_password: &str,
        new_password: &str,
        revoke_other_sessions: bool,
    ) -> Result<(), AuthError> {
        self.require_fresh(&current.session)?;
        self.check_new_password(new_password)?;
        input::password(current_password, 0, self.settings().max_password_bytes).map_err(
            |err| match err {
                AuthError::InvalidInput { reason, .. } => AuthError::InvalidInput {
                    field: "current_password",
                    reason,
                },
                other => other,
            },
        )?;
        // Counted on the account's sign-in throttle, as a sign-in: no unlimited guessing for
        // whoever holds the session. The ticket keeps the place in the hashing queue.
        let _ticket = self
            .check_current_password(current, current_password)
            .await?;
        let new_hash = self.inner.hashing.hash(new_password).await?;
        let end = if revoke_other_sessions {
            EndSessions::AllBut(&current.session.id)
        } else {
            EndSessions::None
        };
        if !self
            .management()?
            .set_password_hash(
                &current.user.id,
                &current.user.password_hash,
                &new_hash,
                end,
            )
            .await?
        {
            return Err(AuthError::InvalidSession);
        }
        tracing::info!(revoke_other_sessions, "password changed");
        self.mail(
            current.user.email.clone(),
            &Mail::PasswordChanged {
                other_sessions_ended: revoke_other_sessions,
            },
        );
        Ok(())
    }
}
