//! Sessions: what a sign-in hands out, and lookup, refresh (with its grace window and reuse
//! detection) and sign-out by token.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use tracing::instrument;

use super::device::DeviceCookie;
use super::observe::{self, Refresh, Revoked};
use super::{Auth, AuthError, internal};
use crate::limits::LimitedRoute;
use crate::model::{RefreshOutcome, Session, SessionRotation, SessionWithUser, User};
use crate::token::{RotationSecret, Token, TokenKind, new_id};

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
    /// When the pair was issued: the sign-in, or the rotation (by the database's clock). Every
    /// answer carrying this pair, a retry's within the grace window too, gives the cookies the
    /// same lifetime counted from it.
    pub issued_at: DateTime<Utc>,
    /// Whether the client keeps the cookies beyond the browser session ("remember me").
    pub persistent: bool,
}

/// The outcome of a sign-up, sign-in or refresh: the user, the session and its new tokens, and
/// for a sign-up or sign-in a new device cookie.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// The session, as stored (token digests only).
    pub session: Session,
    /// The raw tokens for the client; the store never saw them.
    pub tokens: IssuedTokens,
    /// A new device cookie for the client (cookie `authingo_device`), which its later sign-ins
    /// present in [`RequestContext::device`]: given by a sign-up or sign-in while the sign-in
    /// throttle is on, never by a refresh.
    pub device: Option<DeviceCookie>,
    /// The second factor's trust of this browser (cookie `authingo_trusted_device`), which its
    /// later sign-ins present in [`RequestContext::trusted_device`] to skip the code: given by a
    /// second-factor sign-in that asked for it.
    pub trusted_device: Option<DeviceTrust>,
}

/// A browser's trust for the second factor (cookie `authingo_trusted_device`; only its digest
/// is stored). `Debug` shows no token.
#[derive(Clone)]
pub struct DeviceTrust {
    pub(super) token: Token,
    pub(super) expires_at: DateTime<Utc>,
}

impl fmt::Debug for DeviceTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceTrust")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl DeviceTrust {
    /// The token, for the cookie.
    pub fn expose(&self) -> &str {
        self.token.expose()
    }

    /// When the trust ends.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// What the engine knows of the request an operation serves: the client's address (which the
/// rate limits count), its user agent, for a sign-in the device cookie it holds, and, for a
/// sign-up or sign-in, whether to remember the session it opens. Every operation a client starts
/// without a session takes one.
///
/// `RequestContext::default()` is an unknown client asking for a remembered session. `Debug`
/// shows whether a device cookie came, not its value.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// Whether the session outlives the browser session ("remember me"); default `true`.
    pub remember_me: bool,
    /// The client's `User-Agent`; kept trimmed to 255 characters, control characters removed.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip_address: Option<IpAddr>,
    /// The device cookie the client holds ([`SignedIn::device`] of an earlier sign-in), as it
    /// sent it: a sign-in with one this engine issued for the same email, still alive, is counted
    /// on that device alone (see [`SignInThrottle`](crate::limits::SignInThrottle)). Anything
    /// else is ignored.
    pub device: Option<String>,
    /// The second factor's trust the client holds ([`SignedIn::trusted_device`] of an earlier
    /// second-factor sign-in): a sign-in of the account it was given for, while the trust lasts,
    /// needs no code.
    pub trusted_device: Option<String>,
}

impl Default for RequestContext {
    fn default() -> Self {
        Self {
            remember_me: true,
            user_agent: None,
            ip_address: None,
            device: None,
            trusted_device: None,
        }
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("remember_me", &self.remember_me)
            .field("user_agent", &self.user_agent)
            .field("ip_address", &self.ip_address)
            .field("device", &self.device.is_some())
            .field("trusted_device", &self.trusted_device.is_some())
            .finish()
    }
}

impl RequestContext {
    /// Sets [`remember_me`](Self::remember_me).
    #[must_use]
    pub fn remember_me(mut self, remember_me: bool) -> Self {
        self.remember_me = remember_me;
        self
    }

    /// Sets [`user_agent`](Self::user_agent).
    #[must_use]
    pub fn user_agent(mut self, user_agent: Option<&str>) -> Self {
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    /// Sets [`ip_address`](Self::ip_address).
    #[must_use]
    pub fn ip_address(mut self, ip_address: Option<IpAddr>) -> Self {
        self.ip_address = ip_address;
        self
    }

    /// Sets [`device`](Self::device).
    #[must_use]
    pub fn device(mut self, cookie: Option<&str>) -> Self {
        self.device = cookie.map(str::to_owned);
        self
    }

    /// Sets [`trusted_device`](Self::trusted_device).
    #[must_use]
    pub fn trusted_device(mut self, cookie: Option<&str>) -> Self {
        self.trusted_device = cookie.map(str::to_owned);
        self
    }
}

/// The longest user agent kept, in characters (the column is `VARCHAR(255)`).
const MAX_USER_AGENT_CHARS: usize = 255;

/// `raw` as kept: control characters removed, trimmed, at most [`MAX_USER_AGENT_CHARS`]; `None`
/// when nothing is left.
fn user_agent(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

impl Auth {
    /// The live session of an access token, with its user; `None` for a token that is unknown,
    /// expired, or not shaped like one of ours (refused without a query).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn get_session(
        &self,
        access_token: &str,
    ) -> Result<Option<SessionWithUser>, AuthError> {
        let Some(token) = Token::parse(access_token, TokenKind::Access) else {
            return Ok(None);
        };
        let found = self.inner.store.get_session(&token.digest()).await?;
        if let Some(found) = &found {
            tracing::Span::current()
                .record("user.id", &found.user.id)
                .record("session.id", &found.session.id);
        }
        Ok(found)
    }

    /// Exchanges a refresh token for a new pair; the old access token stops working.
    ///
    /// The new pair is derived from the presented token and a fresh random secret
    /// ([`Token::derive`]), and only its digests and the secret are stored. For
    /// [`Options::refresh_reuse_grace`](super::Options::refresh_reuse_grace) after the rotation,
    /// presenting the replaced token again (a second tab, a retry after a lost response) answers
    /// with the same pair, so every racing request gets identical cookies. After the window that
    /// token is a theft signal (RFC 9700 §4.14.2): the session is deleted, both tokens stop
    /// working at once, and a `refresh_token_reused` warning is logged with the session and user
    /// ids. No refresh extends a session past its absolute lifetime.
    ///
    /// A `context` with the client's address counts the request against
    /// [`RateLimits::refresh`](crate::RateLimits::refresh) first.
    ///
    /// # Errors
    /// [`AuthError::TooManyRequests`] over the client's rate limit (nothing else was done);
    /// [`AuthError::InvalidSession`] for an unknown, expired, replaced-and-reused or too old
    /// token; [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all, fields(user.id, session.id))]
    pub async fn refresh(
        &self,
        refresh_token: &str,
        context: &RequestContext,
    ) -> Result<SignedIn, AuthError> {
        if let Some(client) = context.ip_address {
            self.check_rate_limit(LimitedRoute::Refresh, client).await?;
        }
        let Some(presented) = Token::parse(refresh_token, TokenKind::Refresh) else {
            observe::refresh(Refresh::Invalid);
            return Err(AuthError::InvalidSession);
        };
        let now = Utc::now();
        let secret = RotationSecret::generate().map_err(internal)?;
        let (access, refresh) = derived_pair(&secret, &presented);
        let rotation = SessionRotation {
            token: access.digest(),
            refresh_token: refresh.digest(),
            expires_at: now + self.settings().access_ttl,
            refresh_expires_at: now + self.settings().refresh_ttl,
            secret,
            max_lifetime: self.settings().max_session_lifetime,
            reuse_grace: self.settings().refresh_reuse_grace,
            family: presented.family(),
        };
        let (found, access, refresh) = match self
            .inner
            .store
            .refresh_session(&presented.digest(), &rotation)
            .await?
        {
            RefreshOutcome::Rotated(found) => {
                observe::refresh(Refresh::Rotated);
                (found, access, refresh)
            }
            RefreshOutcome::Replayed { found, secret } => {
                // The pair the rotation issued, re-derived; the row must still hold it.
                let (access, refresh) = derived_pair(&secret, &presented);
                if access.digest() != found.session.token
                    || refresh.digest() != found.session.refresh_token
                {
                    observe::refresh(Refresh::Invalid);
                    return Err(AuthError::InvalidSession);
                }
                observe::refresh(Refresh::GraceReplay);
                tracing::debug!(session.id = %found.session.id, "refresh replayed within the grace window");
                (found, access, refresh)
            }
            RefreshOutcome::Reused {
                session_id,
                user_id,
            } => {
                // A replaced token after the grace window: revoked, logged for the security log.
                observe::refresh(Refresh::ReuseDetected);
                observe::revoked(Revoked::ReuseDetected, 1);
                tracing::warn!(
                    session.id = %session_id,
                    user.id = %user_id,
                    "refresh_token_reused"
                );
                return Err(AuthError::InvalidSession);
            }
            RefreshOutcome::Invalid => {
                observe::refresh(Refresh::Invalid);
                return Err(AuthError::InvalidSession);
            }
        };
        tracing::Span::current()
            .record("user.id", &found.user.id)
            .record("session.id", &found.session.id);
        let session = found.session;
        Ok(SignedIn {
            tokens: IssuedTokens {
                access_token: access,
                access_expires_at: session.expires_at,
                refresh_token: refresh,
                refresh_expires_at: session.refresh_expires_at,
                issued_at: session.rotated_at.unwrap_or(now),
                persistent: session.persistent,
            },
            user: found.user,
            session,
            device: None,
            trusted_device: None,
        })
    }

    /// Ends the session of an access token or a refresh token; says whether one was ended.
    ///
    /// A sign-out that raced a refresh still ends the session: the refresh token the rotation
    /// replaced finds it, and so does the access token it replaced, for
    /// [`Options::refresh_reuse_grace`](super::Options::refresh_reuse_grace) after the rotation
    /// (a tab that signed out while another refreshed). A replaced access token is accepted
    /// nowhere else.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] or [`AuthError::Internal`].
    #[instrument(skip_all)]
    pub async fn sign_out(&self, token: &str) -> Result<bool, AuthError> {
        let ended = self.end_session(token).await?;
        observe::revoked(Revoked::SignOut, u64::from(ended));
        Ok(ended)
    }

    /// [`sign_out`](Self::sign_out), which counts what it ended.
    async fn end_session(&self, token: &str) -> Result<bool, AuthError> {
        let store = &self.inner.store;
        if let Some(access) = Token::parse(token, TokenKind::Access) {
            let digest = access.digest();
            if store.delete_session(&digest).await? {
                return Ok(true);
            }
            // Perhaps replaced by a rotation that committed while this request was on its way.
            return Ok(store
                .delete_rotated_session(&digest, self.settings().refresh_reuse_grace)
                .await?);
        }
        match Token::parse(token, TokenKind::Refresh) {
            Some(refresh) => Ok(store.delete_session(&refresh.digest()).await?),
            None => Ok(false),
        }
    }

    /// A new session of `user_id` made at `now`, with its raw tokens. A remembered session
    /// lives at most `max_session_lifetime`, another at most `short_session_lifetime` (and never
    /// longer than the first).
    pub(super) fn new_session(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        request: &RequestContext,
    ) -> Result<(Session, IssuedTokens), AuthError> {
        let settings = self.settings();
        let persistent = request.remember_me;
        let lifetime = if persistent {
            settings.max_session_lifetime
        } else {
            Some(
                settings
                    .max_session_lifetime
                    .map_or(settings.short_session_lifetime, |max| {
                        max.min(settings.short_session_lifetime)
                    }),
            )
        };
        let absolute_expires_at = lifetime.map(|lifetime| now + lifetime);
        let capped = |at: DateTime<Utc>| absolute_expires_at.map_or(at, |cap| at.min(cap));
        let tokens = IssuedTokens {
            access_token: Token::generate(TokenKind::Access).map_err(internal)?,
            access_expires_at: capped(now + settings.access_ttl),
            refresh_token: Token::generate(TokenKind::Refresh).map_err(internal)?,
            refresh_expires_at: capped(now + settings.refresh_ttl),
            issued_at: now,
            persistent,
        };
        let session = Session {
            id: new_id("ses_").map_err(internal)?,
            user_id: user_id.to_owned(),
            token: tokens.access_token.digest(),
            refresh_token: tokens.refresh_token.digest(),
            expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
            created_at: Some(now),
            rotated_at: None,
            absolute_expires_at,
            persistent,
            user_agent: request.user_agent.as_deref().and_then(user_agent),
            ip_address: request.ip_address.map(|ip| ip.to_string()),
        };
        Ok((session, tokens))
    }
}

/// The pair a rotation with `secret` issues for the refresh token `presented`.
fn derived_pair(secret: &RotationSecret, presented: &Token) -> (Token, Token) {
    (
        Token::derive(TokenKind::Access, secret, presented),
        Token::derive(TokenKind::Refresh, secret, presented),
    )
}

#[cfg(test)]
mod tests {
    use super::user_agent;

    #[test]
    fn user_agents_are_kept_bounded_and_without_control_characters() {
        assert_eq!(
            user_agent("  Mozilla/5.0\r\n\u{1b}[31m (X11)\t "),
            Some("Mozilla/5.0[31m (X11)".to_owned())
        );
        assert_eq!(user_agent(" \n "), None);
        assert_eq!(user_agent(&"é".repeat(300)).unwrap().chars().count(), 255);
    }
}
