//! The engine's error.

use std::time::Duration;

use crate::error::{BoxError, InputReason};
use crate::store::StoreError;

/// Why an [`Auth`](super::Auth) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A field of the request is not acceptable; nothing was stored.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// `"email"`, `"password"` or `"name"`.
        field: &'static str,
        /// What is wrong with it.
        reason: InputReason,
    },
    /// Sign-up with an email that already has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Sign-in with an unknown email or a wrong password (the two are not told apart).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The access or refresh token is unknown, expired or already used.
    #[error("invalid or expired session")]
    InvalidSession,
    /// A verification, reset or change-of-email token that is unknown, expired, already used,
    /// or for another purpose (one message for all).
    #[error("invalid or expired link")]
    InvalidToken,
    /// [`Auth::sign_up`](super::Auth::sign_up) of an account that must verify its address first
    /// ([`Options::require_email_verification`](super::Options::require_email_verification)).
    /// A sign-in of such an account answers [`AuthError::InvalidCredentials`] instead.
    #[error("the email address is not verified yet")]
    EmailNotVerified,
    /// The operation needs a session signed in more recently than
    /// [`Options::fresh_age`](super::Options::fresh_age): sign in again.
    #[error("this operation needs a recent sign-in; sign in again")]
    ReauthenticationRequired,
    /// Too many requests from this client address, or failed sign-ins for this email: refused
    /// without any work (no password was checked). Retry after `retry_after`.
    #[error("too many requests; try again later")]
    TooManyRequests {
        /// How long until the request would be counted again.
        retry_after: Duration,
    },
    /// Too many consecutive failed sign-ins for this email: sign-ins are refused, without
    /// checking the password, until [`Auth::unlock_account`](super::Auth::unlock_account) or a
    /// password reset unlocks it. An email without an account locks the same way.
    #[error("too many failed sign-ins; this account is locked")]
    AccountLocked,
    /// The password hashing queue is full
    /// ([`Options::max_queued_hashes`](super::Options::max_queued_hashes)): refused at once.
    /// Retrying shortly may succeed.
    #[error("the service is busy")]
    Busy,
    /// The store could not be reached; nothing was decided. Retrying later may succeed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] StoreError),
    /// A sign-in whose password was right, for an account with a second factor:
    /// [`SignIn::signed_in`](super::SignIn::signed_in) of a
    /// [`SignIn::TwoFactorRequired`](super::SignIn::TwoFactorRequired). No session was opened.
    #[error("this account needs its second factor")]
    TwoFactorRequired,
    /// A second-factor sign-in whose challenge is unknown, expired, used, or ended by too many
    /// wrong codes: sign in again.
    #[error("the sign-in expired or was already completed; sign in again")]
    InvalidChallenge,
    /// A TOTP or recovery code that is wrong, already used, or for another step (one message
    /// for all).
    #[error("invalid code")]
    InvalidCode,
    /// The account has no second factor (or only a pending enrolment, for what needs a
    /// confirmed one).
    #[error("the account has no second factor")]
    TwoFactorNotEnabled,
    /// The account already has a confirmed second factor: disable it first.
    #[error("the account already has a second factor")]
    TwoFactorAlreadyEnabled,
    /// No [`Options::encryption_key`](super::Options::encryption_key) is configured, so no second
    /// factor can be enrolled; or a secret was sealed under a key no longer configured.
    #[error("no encryption key is configured for second factors")]
    NoEncryptionKey,
    /// The store lacks the capability this operation needs ([`Auth::supports`](crate::Auth::supports)):
    /// nothing was done.
    #[error("the store does not offer {0}")]
    Unsupported(crate::store::Capability),
    /// Anything else: a database error, a failed hash, no randomness.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DuplicateEmail => Self::EmailTaken,
            StoreError::InvalidInput { field, reason } => Self::InvalidInput { field, reason },
            StoreError::Unavailable(_) => Self::Unavailable(err),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl AuthError {
    /// Invalid input blamed on `field`, as the caller named it (`new_email`, `current_password`);
    /// any other error as it is.
    pub(super) fn for_field(self, field: &'static str) -> Self {
        match self {
            Self::InvalidInput { reason, .. } => Self::InvalidInput { field, reason },
            other => other,
        }
    }
}
