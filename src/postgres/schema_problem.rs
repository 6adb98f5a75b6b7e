//! What is wrong with a table the crate uses: what the schema check reports, one column at a
//! time, inside [`SetupError::IncompatibleSchema`](super::SetupError).

use std::fmt;

/// What is wrong with a table the crate uses, one column at a time (see
/// [`SetupError::IncompatibleSchema`](super::SetupError::IncompatibleSchema)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaProblem {
    /// The table does not exist: the migrations have not run.
    MissingTable,
    /// A column the crate reads or writes is not there.
    MissingColumn {
        /// The column.
        column: &'static str,
        /// Its type, as PostgreSQL prints it.
        expected: &'static str,
    },
    /// A column has another type.
    WrongType {
        /// The column.
        column: &'static str,
        /// The type the crate expects, as PostgreSQL prints it.
        expected: &'static str,
        /// The type the table has.
        found: String,
    },
    /// A column allows NULL where the crate expects `NOT NULL`, or the other way round.
    WrongNullability {
        /// The column.
        column: &'static str,
        /// Whether the table's column allows NULL.
        nullable: bool,
    },
    /// No unique index covers the column alone, where the crate relies on one.
    NotUnique {
        /// The column.
        column: &'static str,
    },
    /// The column's unique index has another name than the one the store recognises, so a
    /// duplicate would be reported as a database error rather than as what it is (a sign-up
    /// with a taken email would answer 500, not 409).
    UniqueIndexName {
        /// The column.
        column: &'static str,
        /// The name the store recognises.
        expected: &'static str,
    },
    /// A column of the table's own (not one of the crate's) is `NOT NULL` without a default:
    /// the crate's inserts do not set it, so every one of them would fail.
    UnfilledColumn {
        /// The column.
        column: String,
    },
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTable => f.write_str("it does not exist (run the migrations)"),
            Self::MissingColumn { column, expected } => {
                write!(f, "missing column {column} ({expected})")
            }
            Self::WrongType {
                column,
                expected,
                found,
            } => write!(f, "column {column} is {found}, expected {expected}"),
            Self::WrongNullability { column, nullable } => {
                let (found, expected) = if *nullable {
                    ("nullable", "NOT NULL")
                } else {
                    ("NOT NULL", "nullable")
                };
                write!(f, "column {column} is {found}, expected {expected}")
            }
            Self::NotUnique { column } => {
                write!(f, "column {column} has no unique index of its own")
            }
            Self::UniqueIndexName { column, expected } => write!(
                f,
                "column {column}'s unique index is not named {expected} (rename it to it)"
            ),
            Self::UnfilledColumn { column } => write!(
                f,
                "column {column} is NOT NULL without a default, and authingo's inserts do not set it"
            ),
        }
    }
}
