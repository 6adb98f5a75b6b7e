//! Sessions: what a sign-in hands out, and lookup, refresh and sign-out by token.

use chrono::{DateTime, Utc};
use tracing::instrument;

use super::{Auth, AuthError, internal};
use crate::model::{Session, SessionRotation, SessionWithUser, User};
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

impl Auth {
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

    fn new_tokens(&self, now: DateTime<Utc>) -> Result<IssuedTokens, AuthError> {
        Ok(IssuedTokens {
            access_token: Token::generate(TokenKind::Access).map_err(internal)?,
            access_expires_at: now + self.inner.access_ttl,
            refresh_token: Token::generate(TokenKind::Refresh).map_err(internal)?,
            refresh_expires_at: now + self.inner.refresh_ttl,
        })
    }

    /// A new session of `user_id` made at `now`, with its raw tokens.
    pub(super) fn new_session(
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
}
