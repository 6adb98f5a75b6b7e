//! The one place that reads database error codes and constraint names, the error of setting a
//! database up, and how a database error is told: the server's message with its detail and
//! hint, values cut.

use std::borrow::Cow;
use std::fmt;

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

use super::schema_problem::SchemaProblem;
use crate::error::BoxError;
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
    /// TLS to the server could not be set up as the connection string's `sslmode` and
    /// `sslrootcert` ask: the cause says which (an untrusted certificate, a host name the
    /// certificate does not match, a server without TLS, an unreadable `sslrootcert` file, …).
    #[error("cannot connect to the database over TLS: {0}")]
    Tls(#[source] super::tls_error::TlsError),
    /// The server refused a set-up statement, or a migration failed (its changes are rolled back).
    #[error("database set-up failed: {0}")]
    Database(#[source] BoxError),
    /// A table the crate uses exists but is not as the crate expects: a column is missing, of
    /// another type or nullability, or not unique where it must be, or a column of the table's
    /// own cannot be filled by the crate's inserts. Found before any migration when an existing
    /// table would otherwise be adopted as it is, and by
    /// [`PgStore::verify_schema`](super::PgStore::verify_schema).
    #[error("table {table} is not as authingo expects: {}", ProblemList(problems))]
    IncompatibleSchema {
        /// The table, e.g. `"users"`.
        table: &'static str,
        /// What is wrong with it, one entry per column.
        problems: Vec<SchemaProblem>,
    },
}

/// `problems`, separated by semicolons.
struct ProblemList<'a>(&'a [SchemaProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, problem) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl From<DieselError> for SetupError {
    /// Only a lost connection is `Unavailable`: a set-up statement that fails on a live
    /// connection (a refused `CREATE DATABASE`, a migration's error) is the cause to report.
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Self::Unavailable(described(err)),
            other => Self::Database(described(other)),
        }
    }
}

/// A database error told in full: the server's message, then its detail and hint (with any
/// value they quote cut, see [`redact_values`]). diesel shows the message alone, which often
/// leaves out the cause: "foreign key constraint … cannot be implemented" says why only in its
/// detail. The diesel error stays the source.
#[derive(Debug)]
pub(crate) struct DbError(DieselError);

/// `err` as a source to keep: a database error as [`DbError`], anything else as it is.
pub(crate) fn described(err: DieselError) -> BoxError {
    match err {
        DieselError::DatabaseError(..) => Box::new(DbError(err)),
        other => Box::new(other),
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            DieselError::DatabaseError(_, info) => {
                write!(f, "{}{}", info.message(), DetailAndHint(info.as_ref()))
            }
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// ` (detail: …) (hint: …)` for what the server gave of the two, values cut.
pub(crate) struct DetailAndHint<'a>(pub(crate) &'a dyn DatabaseErrorInformation);

impl fmt::Display for DetailAndHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(detail) = self.0.details() {
            write!(f, " (detail: {})", redact_values(detail))?;
        }
        if let Some(hint) = self.0.hint() {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// `detail` with the values it quotes replaced by `…`: PostgreSQL's details of constraint
/// violations repeat the row's values (`Key (email)=(ada@example.com) already exists.`,
/// `Failing row contains (usr_…, …).`), which are users' data and end up in logs. Details that
/// quote no value (`Key columns "user_id" and "id" are of incompatible types: …`) stay whole.
pub(crate) fn redact_values(detail: &str) -> Cow<'_, str> {
    for row in [
        "Failing row contains ",
        "Partition key of the failing row contains ",
    ] {
        if detail.starts_with(row) {
            return Cow::Owned(format!("{row}(…)."));
        }
    }
    // `Key (<columns>)=(<values>)<tail>`: keep the columns and a tail that names a table.
    let Some(equals) = detail.find(")=(") else {
        return Cow::Borrowed(detail);
    };
    let head = &detail[..equals + 2];
    let tail = [") already exists.", ") is duplicated."]
        .into_iter()
        .find(|tail| detail.ends_with(tail))
        .map(|tail| &tail[1..])
        .or_else(|| {
            [
                ") is not present in table ",
                ") is still referenced from table ",
            ]
            .into_iter()
            .filter_map(|tail| detail.rfind(tail))
            .max()
            .map(|at| &detail[at + 1..])
        })
        .unwrap_or("");
    Cow::Owned(format!("{head}(…){tail}"))
}

/// The unique constraint PostgreSQL names for `email VARCHAR(255) UNIQUE` in `users`; a database
/// made by the Go library's `ApplySchema` has the same name.
pub(crate) const USERS_EMAIL_KEY: &str = "users_email_key";

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
        // disk or memory). Each of those means the same to a caller, so the kind is enough here,
        // although since diesel 2.4 the error carries its SQLSTATE too.
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ReadOnlyTransaction
            | DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::Unknown,
            _,
        ) => StoreError::Unavailable(described(err)),
        other => StoreError::Database(described(other)),
    }
}

pub(crate) use crate::store::check_text;

#[cfg(test)]
mod tests {
    use super::*;

    struct Info {
        message: &'static str,
        detail: Option<&'static str>,
        hint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            self.detail
        }
        fn hint(&self) -> Option<&str> {
            self.hint
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn error(kind: DatabaseErrorKind, info: Info) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(info))
    }

    #[test]
    fn store_and_setup_errors_tell_the_detail_and_hint() {
        let err = error(
            DatabaseErrorKind::Unknown,
            Info {
                message: "foreign key constraint \"sessions_user_id_fkey\" cannot be implemented",
                detail: Some(
                    "Key columns \"user_id\" and \"id\" are of incompatible types: \
                     character varying and bigint.",
                ),
                hint: Some("Change the type."),
            },
        );
        assert_eq!(
            SetupError::from(err).to_string(),
            "database set-up failed: foreign key constraint \"sessions_user_id_fkey\" cannot \
             be implemented (detail: Key columns \"user_id\" and \"id\" are of incompatible \
             types: character varying and bigint.) (hint: Change the type.)"
        );
        let err = error(
            DatabaseErrorKind::ForeignKeyViolation,
            Info {
                message: "insert or update on table \"sessions\" violates foreign key constraint",
                detail: Some("Key (user_id)=(usr_0123) is not present in table \"users\"."),
                hint: None,
            },
        );
        assert_eq!(
            from_diesel(err).to_string(),
            "database error: insert or update on table \"sessions\" violates foreign key \
             constraint (detail: Key (user_id)=(…) is not present in table \"users\".)"
        );
    }

    #[test]
    fn values_in_details_are_cut() {
        let cases = [
            (
                "Key (email)=(ada@example.com) already exists.",
                "Key (email)=(…) already exists.",
            ),
            (
                "Key (lower(email::text))=(a) is duplicated.",
                "Key (lower(email::text))=(…) is duplicated.",
            ),
            (
                "Key (user_id)=(x) is not present in table \"users\".",
                "Key (user_id)=(…) is not present in table \"users\".",
            ),
            (
                "Key (id)=(usr_1) is still referenced from table \"sessions\".",
                "Key (id)=(…) is still referenced from table \"sessions\".",
            ),
            (
                "Key (a)=(1) conflicts with existing key (a)=(2).",
                "Key (a)=(…)",
            ),
            (
                "Key (email)=(x) already exists.) already exists.",
                "Key (email)=(…) already exists.",
            ),
            (
                "Failing row contains (usr_1, ada@example.com, Ada, $argon2id$…).",
                "Failing row contains (…).",
            ),
            (
                "Partition key of the failing row contains (created_at) = (2026-01-01).",
                "Partition key of the failing row contains (…).",
            ),
            (
                "Key columns \"user_id\" and \"id\" are of incompatible types.",
                "Key columns \"user_id\" and \"id\" are of incompatible types.",
            ),
        ];
        for (detail, told) in cases {
            assert_eq!(redact_values(detail), told, "{detail}");
        }
    }
}
