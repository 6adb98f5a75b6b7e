//! The one place that reads database error codes and constraint names.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;

use crate::store::{InvalidReason, StoreError};

/// The unique constraint PostgreSQL names for `email VARCHAR(255) UNIQUE` in `users`; a database
/// made by the Go library's `ApplySchema` has the same name.
const USERS_EMAIL_KEY: &str = "users_email_key";

/// The length limit of every text column of the schema (`VARCHAR(255)`).
pub(crate) const MAX_TEXT_CHARS: usize = 255;

pub(crate) fn from_diesel(err: DieselError) -> StoreError {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info)
            if info.constraint_name() == Some(USERS_EMAIL_KEY) =>
        {
            StoreError::DuplicateEmail
        }
        // Lost connections, and the states of a failover (a read-only standby) or of contention
        // (a serialization failure): retrying later may succeed.
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ReadOnlyTransaction
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => StoreError::Unavailable(Box::new(err)),
        other => StoreError::Database(Box::new(other)),
    }
}

pub(crate) fn from_pool(err: bb8::RunError<PoolError>) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// Refuses a value PostgreSQL would reject or truncate, before anything is sent.
pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.contains('\0') {
        InvalidReason::NulByte
    } else if value.chars().count() > MAX_TEXT_CHARS {
        InvalidReason::TooLong {
            max: MAX_TEXT_CHARS,
        }
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidInput { field, reason })
}
