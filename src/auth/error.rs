//! The engine's error.

use crate::store::{BoxError, InvalidReason, StoreError};

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
    /// The store could not be reached; nothing was decided. Retrying later may succeed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else: a database error, a failed hash, no randomness.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// What is wrong with an input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputReason {
    /// Empty, or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// Shorter than allowed.
    #[error("must be at least {min} characters")]
    TooShort {
        /// The minimum, in characters.
        min: usize,
    },
    /// Longer than allowed.
    #[error("must be at most {max} {unit}")]
    TooLong {
        /// The maximum.
        max: usize,
        /// `"characters"` or `"bytes"`.
        unit: &'static str,
    },
    /// Contains a NUL byte.
    #[error("must not contain a NUL byte")]
    NulByte,
    /// Contains a control character.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Contains whitespace where none is allowed.
    #[error("must not contain whitespace")]
    Whitespace,
    /// Not of the form `local@domain`.
    #[error("must be an address of the form name@domain")]
    NotAnEmail,
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DuplicateEmail => Self::EmailTaken,
            StoreError::InvalidInput {
                field,
                reason: InvalidReason::NulByte,
            } => Self::InvalidInput {
                field,
                reason: InputReason::NulByte,
            },
            StoreError::InvalidInput {
                field,
                reason: InvalidReason::TooLong { max },
            } => Self::InvalidInput {
                field,
                reason: InputReason::TooLong {
                    max,
                    unit: "characters",
                },
            },
            StoreError::Unavailable(_) => Self::Unavailable(err),
            other => Self::Internal(Box::new(other)),
        }
    }
}
