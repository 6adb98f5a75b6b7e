//! What the crate expects of its tables, as one list with a line per column, and the check that
//! compares a database with it: at start-up ([`PgStore::verify_schema`](super::PgStore)) and
//! before the migrations adopt a table that already exists.

use std::collections::HashSet;

use diesel::QueryableByName;
use diesel::sql_types::{Array, Bool, Text};

use super::PgStore;
use super::error::{SetupError, USERS_EMAIL_KEY};
use super::schema_problem::SchemaProblem;

/// The versions of the migrations that make the columns, as Diesel records them: the
/// specification's schema, refresh rotation and lifetimes, the clients of sessions, one-time
/// tokens, abuse limits, refresh families, device failures, second factors.
const SPEC: &str = "20261127000000";
const ROTATION: &str = "20261130000000";
const CLIENTS: &str = "20261130000001";
const TOKENS: &str = "20261130000002";
const LIMITS: &str = "20261130000003";
const FAMILIES: &str = "20261207000000";
const DEVICES: &str = "20261208000000";
const SECOND: &str = "20261208000001";

/// Types as PostgreSQL's `format_type` prints them.
const VARCHAR_255: &str = "character varying(255)";
const VARCHAR_64: &str = "character varying(64)";
const VARCHAR_32: &str = "character varying(32)";
const INTEGER: &str = "integer";
const TIMESTAMPTZ: &str = "timestamp with time zone";
const BOOLEAN: &str = "boolean";
const BIGINT: &str = "bigint";
const BYTEA: &str = "bytea";

/// Every column the crate reads or writes, in the order of `schema.rs`'s tables. A table is made
/// by the migration of its first line; a later migration adds its columns with
/// `ADD COLUMN IF NOT EXISTS`. Each line gives the column as it is after every migration (a test
/// compares the list with `schema.rs`, another with a migrated database). Before migrations, a
/// table about to be adopted is compared with its first migration's lines: a later migration
/// that changed the type of one of those columns would need that line to say both types.
pub(crate) const EXPECTED: &[Column] = &[
    col("users", "id", VARCHAR_255, Null::No, Unique::Yes, SPEC),
    col(
        "users",
        "email",
        VARCHAR_255,
        Null::No,
        Unique::Named(USERS_EMAIL_KEY),
        SPEC,
    ),
    col("users", "name", VARCHAR_255, Null::No, Unique::No, SPEC),
    col(
        "users",
        "password_hash",
        VARCHAR_255,
        Null::No,
        Unique::No,
        SPEC,
    ),
    col(
        "users",
        "email_verified",
        BOOLEAN,
        Null::Yes,
        Unique::No,
        SPEC,
    ),
    col(
        "users",
        "created_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        SPEC,
    ),
    col(
        "users",
        "updated_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        SPEC,
    ),
    col("sessions", "id", VARCHAR_255, Null::No, Unique::Yes, SPEC),
    col(
        "sessions",
        "user_id",
        VARCHAR_255,
        Null::No,
        Unique::No,
        SPEC,
    ),
    col(
        "sessions",
        "token",
        VARCHAR_255,
        Null::No,
        Unique::Yes,
        SPEC,
    ),
    col(
        "sessions",
        "refresh_token",
        VARCHAR_255,
        Null::No,
        Unique::Yes,
        SPEC,
    ),
    col(
        "sessions",
        "refresh_expires_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SPEC,
    ),
    col(
        "sessions",
        "expires_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SPEC,
    ),
    col(
        "sessions",
        "created_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        SPEC,
    ),
    col(
        "sessions",
        "previous_refresh_token",
        VARCHAR_255,
        Null::Yes,
        Unique::No,
        ROTATION,
    ),
    col(
        "sessions",
        "rotated_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        ROTATION,
    ),
    col(
        "sessions",
        "rotation_secret",
        VARCHAR_255,
        Null::Yes,
        Unique::No,
        ROTATION,
    ),
    col(
        "sessions",
        "absolute_expires_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        ROTATION,
    ),
    col(
        "sessions",
        "persistent",
        BOOLEAN,
        Null::No,
        Unique::No,
        ROTATION,
    ),
    col(
        "sessions",
        "user_agent",
        VARCHAR_255,
        Null::Yes,
        Unique::No,
        CLIENTS,
    ),
    col(
        "sessions",
        "ip_address",
        VARCHAR_64,
        Null::Yes,
        Unique::No,
        CLIENTS,
    ),
    col(
        "sessions",
        "refresh_family",
        VARCHAR_64,
        Null::Yes,
        Unique::No,
        FAMILIES,
    ),
    col(
        "sessions",
        "previous_token",
        VARCHAR_255,
        Null::Yes,
        Unique::No,
        FAMILIES,
    ),
    col(
        "one_time_tokens",
        "token",
        VARCHAR_64,
        Null::No,
        Unique::Yes,
        TOKENS,
    ),
    col(
        "one_time_tokens",
        "user_id",
        VARCHAR_255,
        Null::No,
        Unique::No,
        TOKENS,
    ),
    col(
        "one_time_tokens",
        "purpose",
        VARCHAR_32,
        Null::No,
        Unique::No,
        TOKENS,
    ),
    col(
        "one_time_tokens",
        "email",
        VARCHAR_255,
        Null::Yes,
        Unique::No,
        TOKENS,
    ),
    col(
        "one_time_tokens",
        "expires_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        TOKENS,
    ),
    col(
        "one_time_tokens",
        "created_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        TOKENS,
    ),
    col(
        "rate_limits",
        "key",
        VARCHAR_255,
        Null::No,
        Unique::Yes,
        LIMITS,
    ),
    col("rate_limits", "hits", INTEGER, Null::No, Unique::No, LIMITS),
    col(
        "rate_limits",
        "window_ends_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        LIMITS,
    ),
    col(
        "sign_in_device_failures",
        "device_digest",
        VARCHAR_64,
        Null::No,
        Unique::Yes,
        DEVICES,
    ),
    col(
        "sign_in_device_failures",
        "failures",
        INTEGER,
        Null::No,
        Unique::No,
        DEVICES,
    ),
    col(
        "sign_in_device_failures",
        "last_failed_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        DEVICES,
    ),
    col(
        "sign_in_device_failures",
        "forget_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        DEVICES,
    ),
    col(
        "sign_in_failures",
        "email_digest",
        VARCHAR_64,
        Null::No,
        Unique::Yes,
        LIMITS,
    ),
    col(
        "sign_in_failures",
        "failures",
        INTEGER,
        Null::No,
        Unique::No,
        LIMITS,
    ),
    col(
        "sign_in_failures",
        "last_failed_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        LIMITS,
    ),
    col(
        "sign_in_failures",
        "forget_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        LIMITS,
    ),
    col(
        "totp_secrets",
        "user_id",
        VARCHAR_255,
        Null::No,
        Unique::Yes,
        SECOND,
    ),
    col(
        "totp_secrets",
        "key_id",
        VARCHAR_64,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "totp_secrets",
        "ciphertext",
        BYTEA,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "totp_secrets",
        "confirmed_at",
        TIMESTAMPTZ,
        Null::Yes,
        Unique::No,
        SECOND,
    ),
    col(
        "totp_secrets",
        "last_used_step",
        BIGINT,
        Null::Yes,
        Unique::No,
        SECOND,
    ),
    col(
        "totp_secrets",
        "created_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "recovery_codes",
        "user_id",
        VARCHAR_255,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "recovery_codes",
        "code_digest",
        VARCHAR_64,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "recovery_codes",
        "created_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "two_factor_challenges",
        "challenge_digest",
        VARCHAR_64,
        Null::No,
        Unique::Yes,
        SECOND,
    ),
    col(
        "two_factor_challenges",
        "user_id",
        VARCHAR_255,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "two_factor_challenges",
        "persistent",
        BOOLEAN,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "two_factor_challenges",
        "failures",
        INTEGER,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "two_factor_challenges",
        "expires_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "two_factor_challenges",
        "created_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "trusted_devices",
        "device_digest",
        VARCHAR_64,
        Null::No,
        Unique::Yes,
        SECOND,
    ),
    col(
        "trusted_devices",
        "user_id",
        VARCHAR_255,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "trusted_devices",
        "expires_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SECOND,
    ),
    col(
        "trusted_devices",
        "created_at",
        TIMESTAMPTZ,
        Null::No,
        Unique::No,
        SECOND,
    ),
];

/// One line of [`EXPECTED`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub(crate) table: &'static str,
    pub(crate) name: &'static str,
    pub(crate) sql_type: &'static str,
    pub(crate) null: Null,
    pub(crate) unique: Unique,
    /// The version of the migration that makes the column.
    pub(crate) made_by: &'static str,
}

/// Whether a column may hold NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Null {
    Yes,
    No,
}

/// Whether the crate relies on a unique index on the column alone (one account per email, one
/// session per token digest, the key a foreign key references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unique {
    Yes,
    /// One, under this name: the store tells a duplicate email from other unique violations by
    /// the name of the constraint the database reports.
    Named(&'static str),
    No,
}

const fn col(
    table: &'static str,
    name: &'static str,
    sql_type: &'static str,
    null: Null,
    unique: Unique,
    made_by: &'static str,
) -> Column {
    Column {
        table,
        name,
        sql_type,
        null,
        unique,
        made_by,
    }
}

/// The columns of the tables bound as `$1`, as the store's statements resolve the names.
pub(crate) const COLUMNS_SQL: &str = include_str!("table_columns.sql");

/// The names of the tables in [`EXPECTED`], in its order, for binding as `$1` of [`COLUMNS_SQL`].
pub(crate) fn tables() -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = Vec::new();
    for column in EXPECTED {
        if !tables.contains(&column.table) {
            tables.push(column.table);
        }
    }
    tables
}

/// `COLUMNS_SQL` bound to the expected tables, for either kind of connection.
pub(crate) fn columns_query()
-> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    diesel::sql_query(COLUMNS_SQL)
        .into_boxed()
        .bind::<Array<Text>, _>(tables())
}

/// A column as the database has it, a row of [`COLUMNS_SQL`].
#[derive(Debug, QueryableByName)]
pub(crate) struct Found {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    /// An insert that leaves the column out succeeds: nullable, a default, or an identity.
    #[diesel(sql_type = Bool)]
    fillable: bool,
    /// The names of the unique indexes on the column alone.
    #[diesel(sql_type = Array<Text>)]
    unique_indexes: Vec<String>,
}

/// When the comparison is made.
#[derive(Debug)]
pub(crate) enum Stage<'a> {
    /// Before migrations run, with the versions that will run. A table that exists although the
    /// migration that makes it is pending would be adopted as it is (`CREATE TABLE IF NOT
    /// EXISTS`): it must have that migration's columns. Tables the migrations made themselves, and
    /// columns later migrations add, are left to the check after.
    BeforeMigrations { pending: &'a HashSet<String> },
    /// Once the database should be complete: every table and column.
    Complete,
}

/// Compares `found` with [`EXPECTED`]; the first table that differs is the error.
pub(crate) fn check(found: &[Found], stage: &Stage<'_>) -> Result<(), SetupError> {
    for table in tables() {
        let expected: Vec<&Column> = EXPECTED.iter().filter(|c| c.table == table).collect();
        let columns: Vec<&Found> = found.iter().filter(|f| f.table_name == table).collect();
        let made_by = expected.first().map_or("", |c| c.made_by);
        let to_check: Vec<&Column> = match stage {
            Stage::BeforeMigrations { pending } => {
                if columns.is_empty() || !pending.contains(made_by) {
                    continue;
                }
                expected
                    .iter()
                    .copied()
                    .filter(|c| c.made_by == made_by)
                    .collect()
            }
            Stage::Complete => {
                if columns.is_empty() {
                    return Err(incompatible(table, vec![SchemaProblem::MissingTable]));
                }
                expected.clone()
            }
        };
        let mut problems = Vec::new();
        for want in to_check {
            let Some(have) = columns.iter().find(|f| f.column_name == want.name) else {
                problems.push(SchemaProblem::MissingColumn {
                    column: want.name,
                    expected: want.sql_type,
                });
                continue;
            };
            if have.data_type != want.sql_type {
                problems.push(SchemaProblem::WrongType {
                    column: want.name,
                    expected: want.sql_type,
                    found: have.data_type.clone(),
                });
            } else if have.nullable != (want.null == Null::Yes) {
                problems.push(SchemaProblem::WrongNullability {
                    column: want.name,
                    nullable: have.nullable,
                });
            }
            match want.unique {
                Unique::Yes | Unique::Named(_) if have.unique_indexes.is_empty() => {
                    problems.push(SchemaProblem::NotUnique { column: want.name });
                }
                Unique::Named(name) if !have.unique_indexes.iter().any(|n| n == name) => {
                    problems.push(SchemaProblem::UniqueIndexName {
                        column: want.name,
                        expected: name,
                    });
                }
                _ => {}
            }
        }
        for have in &columns {
            let ours = expected.iter().any(|c| c.name == have.column_name);
            if !ours && !have.fillable {
                problems.push(SchemaProblem::UnfilledColumn {
                    column: have.column_name.clone(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(incompatible(table, problems));
        }
    }
    Ok(())
}

fn incompatible(table: &'static str, problems: Vec<SchemaProblem>) -> SetupError {
    SetupError::IncompatibleSchema { table, problems }
}

impl PgStore {
    /// Checks that the database holds the tables the crate uses, as it expects them: every column
    /// of the right type and nullability, the unique indexes it relies on, and no column of the
    /// table's own that its inserts would leave empty although it is `NOT NULL` without a
    /// default. Call it at start-up when the migrations are applied by something else than
    /// [`run_migrations`](super::run_migrations) (which checks the same when it is done): the
    /// Diesel CLI, or the application's own harness.
    ///
    /// # Errors
    /// [`SetupError::IncompatibleSchema`] naming the first table that differs and each of its
    /// columns that does; [`SetupError::Unavailable`] when no connection can be had;
    /// [`SetupError::Database`] when the server refuses the query.
    pub async fn verify_schema(&self) -> Result<(), SetupError> {
        use diesel_async::RunQueryDsl as _;

        let mut conn = self
            .pool()
            .get()
            .await
            .map_err(|err| SetupError::Unavailable(Box::new(err)))?;
        let found = columns_query()
            .load::<Found>(&mut *conn)
            .await
            .map_err(SetupError::from)?;
        check(&found, &Stage::Complete)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use diesel::migration::MigrationSource as _;
    use diesel::pg::Pg;

    use super::*;

    /// `schema.rs`, as `diesel print-schema` wrote it: table → column → (type, nullable).
    fn printed_schema() -> BTreeMap<String, BTreeMap<String, (String, bool)>> {
        let mut tables = BTreeMap::new();
        let (mut table, mut max_length) = (String::new(), None);
        for line in include_str!("schema.rs").lines().map(str::trim) {
            if let Some((name, _)) = line.split_once(" (") {
                if !line.starts_with("diesel::") && line.ends_with('{') {
                    table = name.to_owned();
                }
            } else if let Some(length) = line.strip_prefix("#[max_length = ") {
                max_length = length.strip_suffix(']').map(str::to_owned);
            } else if let Some((column, sql_type)) = line.split_once(" -> ") {
                let sql_type = sql_type.trim_end_matches(',');
                let (sql_type, nullable) = match sql_type.strip_prefix("Nullable<") {
                    Some(inner) => (inner.trim_end_matches('>'), true),
                    None => (sql_type, false),
                };
                let printed = match (sql_type, max_length.take()) {
                    ("Varchar", Some(length)) => format!("character varying({length})"),
                    ("Timestamptz", None) => TIMESTAMPTZ.to_owned(),
                    ("Bool", None) => BOOLEAN.to_owned(),
                    ("Int4", None) => INTEGER.to_owned(),
                    ("Int8", None) => BIGINT.to_owned(),
                    ("Bytea", None) => BYTEA.to_owned(),
                    other => panic!("a type this test does not know yet: {other:?}"),
                };
                tables
                    .entry(table.clone())
                    .or_insert_with(BTreeMap::new)
                    .insert(column.to_owned(), (printed, nullable));
            }
        }
        tables
    }

    #[test]
    fn the_list_is_the_schema_module_line_for_line() {
        let mut listed = BTreeMap::new();
        for c in EXPECTED {
            listed
                .entry(c.table.to_owned())
                .or_insert_with(BTreeMap::new)
                .insert(
                    c.name.to_owned(),
                    (c.sql_type.to_owned(), c.null == Null::Yes),
                );
        }
        assert_eq!(listed, printed_schema());
        assert!(listed.len() >= 2, "users and sessions at least");
    }

    #[test]
    fn every_column_is_made_by_an_embedded_migration() {
        let versions: HashSet<String> = super::super::MIGRATIONS
            .migrations()
            .unwrap()
            .iter()
            .map(|m| {
                diesel::migration::Migration::<Pg>::name(m.as_ref())
                    .version()
                    .to_string()
            })
            .collect();
        for c in EXPECTED {
            assert!(versions.contains(c.made_by), "{}.{}", c.table, c.name);
        }
    }

    fn found(table: &str, column: &str, data_type: &str, nullable: bool) -> Found {
        Found {
            table_name: table.to_owned(),
            column_name: column.to_owned(),
            data_type: data_type.to_owned(),
            nullable,
            fillable: nullable,
            unique_indexes: Vec::new(),
        }
    }

    /// The unique indexes a migrated database has on `c`.
    fn unique_indexes(c: &Column) -> Vec<String> {
        match c.unique {
            Unique::Yes => vec![format!("{}_{}_key", c.table, c.name)],
            Unique::Named(name) => vec![name.to_owned()],
            Unique::No => Vec::new(),
        }
    }

    #[test]
    fn a_complete_check_names_every_problem_of_the_first_bad_table() {
        let mut users: Vec<Found> = EXPECTED
            .iter()
            .filter(|c| c.table == "users")
            .map(|c| Found {
                unique_indexes: unique_indexes(c),
                ..found(c.table, c.name, c.sql_type, c.null == Null::Yes)
            })
            .collect();
        users.retain(|f| f.column_name != "email");
        users[0].data_type = "bigint".to_owned();
        users.push(found("users", "username", "text", false));
        let err = check(&users, &Stage::Complete).unwrap_err();
        let SetupError::IncompatibleSchema { table, problems } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*table, "users");
        assert_eq!(
            problems,
            &[
                SchemaProblem::WrongType {
                    column: "id",
                    expected: VARCHAR_255,
                    found: "bigint".to_owned()
                },
                SchemaProblem::MissingColumn {
                    column: "email",
                    expected: VARCHAR_255
                },
                SchemaProblem::UnfilledColumn {
                    column: "username".to_owned()
                },
            ]
        );
        assert_eq!(
            err.to_string(),
            "table users is not as authingo expects: column id is bigint, expected character \
             varying(255); missing column email (character varying(255)); column username is \
             NOT NULL without a default, and authingo's inserts do not set it"
        );
    }

    #[test]
    fn before_migrations_only_tables_to_adopt_are_checked_and_only_for_their_first_columns() {
        // A Go-made sessions table: the first migration's columns, none of the later ones.
        let go_sessions: Vec<Found> = EXPECTED
            .iter()
            .filter(|c| c.table == "sessions" && c.made_by == SPEC)
            .map(|c| Found {
                unique_indexes: unique_indexes(c),
                ..found(c.table, c.name, c.sql_type, c.null == Null::Yes)
            })
            .collect();
        let all: HashSet<String> = [SPEC, ROTATION, CLIENTS].map(str::to_owned).into();
        let stage = Stage::BeforeMigrations { pending: &all };
        assert!(check(&go_sessions, &stage).is_ok());
        // The same table in a database whose first migration ran is the migrations' own.
        let later: HashSet<String> = [CLIENTS.to_owned()].into();
        let stage = Stage::BeforeMigrations { pending: &later };
        assert!(check(&go_sessions[..2], &stage).is_ok());
        // But an adopted table must hold every column its first migration would have made.
        let stage = Stage::BeforeMigrations { pending: &all };
        let err = check(&go_sessions[..2], &stage).unwrap_err();
        assert!(
            matches!(&err, SetupError::IncompatibleSchema { table: "sessions", problems }
                if problems.len() == 5),
            "{err:?}"
        );
        assert!(matches!(
            check(&go_sessions, &Stage::Complete),
            Err(SetupError::IncompatibleSchema { table: "users", .. })
        ));
    }
}
