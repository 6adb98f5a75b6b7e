//! The records the store keeps and the values its operations exchange: users, sessions and a
//! refresh's outcome, and the one-time tokens of mail links.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use crate::token::{RotationSecret, TokenDigest};

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
    /// When the session was made, at sign-up or sign-in (`None` as for [`User::created_at`]).
    pub created_at: Option<DateTime<Utc>>,
    /// When a refresh last issued its tokens; `None` before the first refresh.
    pub rotated_at: Option<DateTime<Utc>>,
    /// No refresh extends the session past this. `None` for a session adopted from the Go
    /// library (its lifetime then counts from `created_at`) or made with no lifetime bound.
    pub absolute_expires_at: Option<DateTime<Utc>>,
    /// Whether the client keeps the session's cookies beyond the browser session ("remember
    /// me"); `false` makes them browser-session cookies.
    pub persistent: bool,
    /// The `User-Agent` of the client that signed in (bounded, control characters removed).
    pub user_agent: Option<String>,
    /// The address of the client that signed in, as text.
    pub ip_address: Option<String>,
}

impl Session {
    /// When the session was last used: its last refresh, or its sign-in.
    pub fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.rotated_at.or(self.created_at)
    }
}

/// Which of a user's sessions a password change ends, in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSessions<'a> {
    /// None.
    None,
    /// All but this one (the session that changed the password).
    AllBut(&'a str),
    /// All of them (a password reset).
    All,
}

/// A session together with the user it belongs to, as a lookup returns them (and, as
/// `http::CurrentUser`, what a handler extracts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionWithUser {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

impl SessionWithUser {
    /// When the session signed in (not its last refresh): what freshness is measured from.
    pub fn signed_in_at(&self) -> Option<DateTime<Utc>> {
        self.session.created_at
    }
}

/// A refresh: the new values to write over the session whose refresh token is presented, and how
/// to treat that token if it is the session's previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRotation {
    /// Digest of the new access token.
    pub token: TokenDigest,
    /// Digest of the new refresh token.
    pub refresh_token: TokenDigest,
    /// When the new access token expires, before the session's absolute cap.
    pub expires_at: DateTime<Utc>,
    /// When the new refresh token expires, before the session's absolute cap.
    pub refresh_expires_at: DateTime<Utc>,
    /// The secret the new pair was derived with, kept in the row for retries.
    pub secret: RotationSecret,
    /// The absolute lifetime of a session that has no `absolute_expires_at` (adopted from the
    /// Go library), counted from its `created_at`; `None`: unbounded.
    pub max_lifetime: Option<TimeDelta>,
    /// How long after a rotation the refresh token it replaced still gets the pair it issued.
    /// Zero turns the window off: that token is then simply refused.
    pub reuse_grace: TimeDelta,
    /// The digest of the presented token's family ([`Token::family`](crate::token::Token::family)),
    /// which every refresh token of the session shares.
    pub family: TokenDigest,
}

/// What a [`Store::refresh_session`](crate::Store::refresh_session) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was the session's current refresh token: the session now holds the rotation's
    /// values (expiries capped by its absolute lifetime).
    Rotated(SessionWithUser),
    /// The token was the session's previous refresh token, within the grace window: the session
    /// as the rotation left it, and that rotation's secret, from which the caller re-derives the
    /// pair it issued. Nothing was written.
    Replayed {
        /// The session and its user.
        found: SessionWithUser,
        /// The secret of the rotation that replaced the presented token.
        secret: RotationSecret,
    },
    /// The token was one the session issued before its current one, presented after the grace
    /// window or replaced more than one rotation ago: a theft signal. The session was deleted.
    Reused {
        /// The deleted session's id.
        session_id: String,
        /// Its user's id.
        user_id: String,
    },
    /// Unknown, expired, or past the session's absolute lifetime.
    Invalid,
}

impl RefreshOutcome {
    /// The session a rotation left, for [`Rotated`](Self::Rotated); `None` otherwise.
    pub fn rotated(self) -> Option<SessionWithUser> {
        match self {
            Self::Rotated(found) => Some(found),
            _ => None,
        }
    }
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Confirms that the user receives mail at an address.
    VerifyEmail,
    /// Lets the user set a new password without the old one.
    ResetPassword,
    /// Moves the account to a new address, once that address confirms.
    ChangeEmail,
    /// Cancels a pending change of email: mailed to the old address when the change is asked.
    CancelEmailChange,
    /// Removes a second factor just added, and ends every session: mailed to the owner when the
    /// factor is confirmed, for whoever did not add it.
    RemoveTwoFactor,
}

impl TokenPurpose {
    /// The name stored in `one_time_tokens.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
            Self::CancelEmailChange => "cancel_email_change",
            Self::RemoveTwoFactor => "remove_two_factor",
        }
    }
}

/// A one-time token as stored: its digest, never the token, which exists only in the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// Digest of the token.
    pub token: TokenDigest,
    /// Whose it is.
    pub user_id: String,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it is for: the one it is mailed to (to verify, to reset the password of, to
    /// cancel a change from), or the new one of a change of email.
    pub email: Option<String>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// What using a one-time token does, in the same transaction as consuming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenUse<'a> {
    /// Marks the token's address verified, if it is still the user's address.
    VerifyEmail,
    /// Replaces the password hash, marks the address verified and ends every session of the
    /// user, if the token's address is still the user's.
    ResetPassword {
        /// The new password's hash.
        password_hash: &'a str,
    },
    /// Moves the user to the token's address and marks it verified.
    ChangeEmail,
    /// Voids the user's pending change of email, if the token's address is still the user's.
    CancelEmailChange,
    /// Removes the user's second factor (secret, recovery codes, trusted devices, challenges)
    /// and ends every session and every other link of the user, if the token's address is still
    /// the user's.
    RemoveTwoFactor,
}

impl TokenUse<'_> {
    /// The purpose a token must have to be used so.
    pub fn purpose(self) -> TokenPurpose {
        match self {
            Self::VerifyEmail => TokenPurpose::VerifyEmail,
            Self::ResetPassword { .. } => TokenPurpose::ResetPassword,
            Self::ChangeEmail => TokenPurpose::ChangeEmail,
            Self::CancelEmailChange => TokenPurpose::CancelEmailChange,
            Self::RemoveTwoFactor => TokenPurpose::RemoveTwoFactor,
        }
    }
}

/// A one-time token used: the user as it now is, and the address it had before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedToken {
    /// The user after the change.
    pub user: User,
    /// The user's address before the change (the same but for a change of email).
    pub previous_email: String,
}

/// A user's TOTP secret as a store keeps it: encrypted by the engine (AES-256-GCM under the key
/// `key_id`), never in clear. `Debug` leaves out the ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret {
    /// Whose it is.
    pub user_id: String,
    /// The id of the encryption key that sealed it.
    pub key_id: String,
    /// The nonce followed by the sealed secret and its tag.
    pub ciphertext: Vec<u8>,
    /// When its owner proved their authenticator holds it; `None` while the enrolment is
    /// pending (it then protects nothing).
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last time step a code was accepted for (RFC 6238 §5.2: a code is accepted once).
    pub last_used_step: Option<i64>,
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpSecret")
            .field("user_id", &self.user_id)
            .field("key_id", &self.key_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .finish_non_exhaustive()
    }
}

/// A sign-in waiting for its second factor: the password was right; the challenge cookie the
/// client holds is what it presents with the code. Stored by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInChallenge {
    /// Digest of the challenge token.
    pub digest: TokenDigest,
    /// The user whose password was right.
    pub user_id: String,
    /// Whether the session it opens is remembered (the sign-in's "remember me").
    pub persistent: bool,
    /// Wrong codes presented so far.
    pub failures: u32,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// What answers a [`SignInChallenge`], checked by the engine and spent by the store in the
/// transaction that opens the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorProof<'a> {
    /// A TOTP code of this time step: accepted only if the step is later than the last one
    /// accepted for the user (a compare-and-set).
    Totp {
        /// The time step the code matched.
        step: i64,
    },
    /// A recovery code of the user, by digest: deleted as it is used.
    RecoveryCode(&'a TokenDigest),
}

/// A browser trusted to skip the second factor at sign-in until `expires_at`: stored by the
/// digest of the token its cookie holds, ended with the user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    /// Digest of the device's token.
    pub digest: TokenDigest,
    /// Whose it is.
    pub user_id: String,
    /// When the trust ends.
    pub expires_at: DateTime<Utc>,
}
