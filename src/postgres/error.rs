//! The one place that reads database error codes and constraint names, and the error of
//! setting a database up.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::error::{BoxError, InputReason};
use crate::store::StoreError;

/// Why connecting, creating a database or migrating failed: the set-up a service does once at
/// start, as opposed to the [`Store`](crate::Store) operations it then serves with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The database URL cannot be used as given (it names no database, or does not parse).
    #[error("the database URL {0}")]
    InvalidUrl(&'static str),
    /// A pool setting outside the values it may take.
    #[error("the pool setting {0} is out of range")]
    OutOfRange(&'static str),
    /// The server could not be reached, or no connection could be made in time.
    #[error("cannot connect to the database: {0}")]
    Unavailable(#[source] BoxError),
    /// The server refused a set-up statement, or a migration failed (its changes are rolled back).
    #[error("database set-up failed: {0}")]
    Database(#[source] BoxError),
}

impl From<DieselError> for SetupError {
    /// Only a lost connection is `Unavailable`: a set-up statement that fails on a live
    /// connection (a refused `CREATE DATABASE`, a migration's error) is the cause to report.
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Self::Unavailable(Box::new(err)),
            other => Self::Database(Box::new(other)),
        }
    }
}

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
        //
        // `Unknown` too: the store's statements are fixed, and the values they bind are checked
        // before they are sent, so what remains for a live connection is the server unable to
        // serve (a statement or lock timeout, 57014 and 55P03; a cancellation; a deadlock; no
        // disk or memory). diesel-async 0.9 keeps the SQLSTATE to itself beyond the kinds above,
        // so those cannot be told apart more finely without reading message text.
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ReadOnlyTransaction
            | DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::Unknown,
            _,
        ) => StoreError::Unavailable(Box::new(err)),
        other => StoreError::Database(Box::new(other)),
    }
}

/// A failed checkout, as the store reports it. [`PgPool::get`](super::PgPool::get) already
/// reports [`StoreError::Unavailable`], with the cause of the wait attached; this keeps the
/// store's checkouts reading as its other mappings do.
pub(crate) fn from_pool(err: StoreError) -> StoreError {
    err
}

/// Refuses a value PostgreSQL would reject or truncate, before anything is sent.
pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.contains('\0') {
        InputReason::NulByte
    } else if value.chars().count() > MAX_TEXT_CHARS {
        InputReason::TooLong {
            max: MAX_TEXT_CHARS,
            unit: "characters",
        }
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidInput { field, reason })
}
