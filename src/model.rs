//! The records the store keeps: users and their sessions.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::token::TokenDigest;

/// An account. `Debug` leaves out the email and the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// `usr_` followed by 32 hex characters.
    pub id: String,
    /// Trimmed and lower-cased; unique.
    pub email: String,
    /// Display name.
    pub name: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// Whether the address was confirmed (a `NULL` in the column reads as `false`).
    pub email_verified: bool,
    /// When the account was made. `None` when read means the row holds `NULL` (written by other
    /// software); `None` when written means "now".
    pub created_at: Option<DateTime<Utc>>,
    /// When the account last changed (`None` as for `created_at`).
    pub updated_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email_verified", &self.email_verified)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A session: one access token and one refresh token, each with its own expiry.
///
/// The token fields hold digests, never the tokens the client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `ses_` followed by 32 hex characters.
    pub id: String,
    /// The [`User::id`] this session belongs to.
    pub user_id: String,
    /// Digest of the access token.
    pub token: TokenDigest,
    /// Digest of the refresh token.
    pub refresh_token: TokenDigest,
    /// When the access token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// When the refresh token stops being accepted.
    pub refresh_expires_at: DateTime<Utc>,
    /// When the session was made (`None` as for [`User::created_at`]).
    pub created_at: Option<DateTime<Utc>>,
}

/// A session together with the user it belongs to, as a lookup returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionWithUser {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// The new values a refresh writes over a session: both tokens and both expiries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRotation {
    /// Digest of the new access token.
    pub token: TokenDigest,
    /// Digest of the new refresh token.
    pub refresh_token: TokenDigest,
    /// When the new access token expires.
    pub expires_at: DateTime<Utc>,
    /// When the new refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
}
