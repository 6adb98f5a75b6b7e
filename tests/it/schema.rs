//! The schema check: tables of another shape are refused before the migrations adopt them, a
//! migrated database passes `verify_schema` and a changed one names its columns, and database
//! errors tell the server's detail without the values it quotes.

use authingo::Store as _;
use authingo::StoreError;
use authingo::postgres::{SchemaProblem, SetupError, run_migrations, run_migrations_from};
use diesel::migration::MigrationSource;
use diesel_async::SimpleAsyncConnection as _;
use diesel_migrations::FileBasedMigrations;

use crate::support::{TestDb, count, live_session, user};

/// Whether `table` exists in `db`.
async fn exists(db: &TestDb, table: &str) -> bool {
    count(
        db,
        &format!(
            "SELECT count(*) AS n FROM (SELECT to_regclass('{table}') AS t) r WHERE t IS NOT NULL"
        ),
    )
    .await
        == 1
}

/// The problems of `err` with `table`, or a panic that shows `err`.
fn problems(err: SetupError, table: &str) -> Vec<SchemaProblem> {
    match err {
        SetupError::IncompatibleSchema {
            table: found,
            problems,
        } if found == table => problems,
        other => panic!("expected {table} to be incompatible, got {other:?}"),
    }
}

#[tokio::test]
async fn a_users_table_with_a_bigint_key_is_refused_before_any_migration_runs() {
    let db = TestDb::empty().await;
    db.conn()
        .await
        .batch_execute(
            "CREATE TABLE users (
                id BIGSERIAL PRIMARY KEY,
                email VARCHAR(255) UNIQUE NOT NULL,
                name VARCHAR(255) NOT NULL,
                password_hash VARCHAR(255) NOT NULL,
                email_verified BOOLEAN DEFAULT FALSE,
                created_at TIMESTAMPTZ DEFAULT now(),
                updated_at TIMESTAMPTZ DEFAULT now())",
        )
        .await
        .unwrap();

    let err = run_migrations(db.url()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("table users is not as authingo expects: column id is bigint, expected character varying(255)"),
        "{err}"
    );
    assert_eq!(
        problems(err, "users"),
        [SchemaProblem::WrongType {
            column: "id",
            expected: "character varying(255)",
            found: "bigint".to_owned(),
        }]
    );
    // Nothing ran: no sessions table, not even Diesel's bookkeeping.
    assert!(!exists(&db, "sessions").await);
    assert!(!exists(&db, "__diesel_schema_migrations").await);
}

#[tokio::test]
async fn a_users_table_of_the_applications_shape_is_refused_naming_each_column() {
    let db = TestDb::empty().await;
    db.conn()
        .await
        .batch_execute("CREATE TABLE users (id VARCHAR(255) PRIMARY KEY, username TEXT NOT NULL)")
        .await
        .unwrap();

    let err = run_migrations(db.url()).await.unwrap_err();
    assert!(err.to_string().contains("missing column email"), "{err}");
    let problems = problems(err, "users");
    for column in ["email", "name", "password_hash"] {
        assert!(
            problems.contains(&SchemaProblem::MissingColumn {
                column,
                expected: "character varying(255)"
            }),
            "{column}: {problems:?}"
        );
    }
    assert!(problems.contains(&SchemaProblem::UnfilledColumn {
        column: "username".to_owned()
    }));
    assert!(!exists(&db, "sessions").await);
}

#[tokio::test]
async fn a_users_table_of_the_expected_shape_with_columns_of_its_own_is_adopted() {
    let db = TestDb::empty().await;
    let mut conn = db.conn().await;
    conn.batch_execute(authingo::postgres::SCHEMA_SQL)
        .await
        .unwrap();
    conn.batch_execute(
        "ALTER TABLE users ADD COLUMN nickname TEXT, ADD COLUMN plan TEXT NOT NULL DEFAULT 'free'",
    )
    .await
    .unwrap();

    // Every migration: the first, whose tables were there, as a no-op.
    assert_eq!(
        run_migrations(db.url()).await.unwrap().len(),
        MigrationSource::<diesel::pg::Pg>::migrations(&authingo::postgres::MIGRATIONS)
            .unwrap()
            .len()
    );
    let store = db.store().await;
    store.verify_schema().await.unwrap();
    let ada = user("ada@example.com");
    store
        .create_user_with_session(&ada, &live_session(&ada).0)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_email_without_a_unique_index_is_refused() {
    let db = TestDb::empty().await;
    let mut conn = db.conn().await;
    conn.batch_execute(authingo::postgres::SCHEMA_SQL)
        .await
        .unwrap();
    conn.batch_execute("ALTER TABLE users DROP CONSTRAINT users_email_key")
        .await
        .unwrap();

    let err = run_migrations(db.url()).await.unwrap_err();
    assert_eq!(
        problems(err, "users"),
        [SchemaProblem::NotUnique { column: "email" }]
    );
}

#[tokio::test]
async fn an_email_index_under_another_name_is_refused_since_a_duplicate_would_not_be_recognised() {
    let db = TestDb::empty().await;
    let mut conn = db.conn().await;
    conn.batch_execute(authingo::postgres::SCHEMA_SQL)
        .await
        .unwrap();
    conn.batch_execute("ALTER TABLE users RENAME CONSTRAINT users_email_key TO users_email_unique")
        .await
        .unwrap();

    let err = run_migrations(db.url()).await.unwrap_err();
    assert_eq!(
        problems(err, "users"),
        [SchemaProblem::UniqueIndexName {
            column: "email",
            expected: "users_email_key"
        }]
    );
    // Named back, the same database is adopted, and a taken email is recognised again.
    conn.batch_execute("ALTER TABLE users RENAME CONSTRAINT users_email_unique TO users_email_key")
        .await
        .unwrap();
    run_migrations(db.url()).await.unwrap();
    let store = db.store().await;
    store.create_user(&user("ada@example.com")).await.unwrap();
    assert!(matches!(
        store.create_user(&user("ada@example.com")).await,
        Err(authingo::StoreError::DuplicateEmail)
    ));
}

#[tokio::test]
async fn verify_schema_passes_on_a_migrated_database_and_names_what_changed() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.verify_schema().await.unwrap();

    let mut conn = db.conn().await;
    conn.batch_execute(
        "ALTER TABLE sessions DROP COLUMN user_agent;
         ALTER TABLE sessions ALTER COLUMN ip_address TYPE TEXT;
         ALTER TABLE sessions ALTER COLUMN created_at SET NOT NULL",
    )
    .await
    .unwrap();
    let err = store.verify_schema().await.unwrap_err();
    assert_eq!(
        problems(err, "sessions"),
        [
            SchemaProblem::WrongNullability {
                column: "created_at",
                nullable: false
            },
            SchemaProblem::MissingColumn {
                column: "user_agent",
                expected: "character varying(255)"
            },
            SchemaProblem::WrongType {
                column: "ip_address",
                expected: "character varying(64)",
                found: "text".to_owned()
            },
        ]
    );
}

#[tokio::test]
async fn verify_schema_on_a_database_without_the_tables_says_so() {
    let db = TestDb::empty().await;
    let err = db.store().await.verify_schema().await.unwrap_err();
    assert!(err.to_string().contains("run the migrations"), "{err}");
    assert_eq!(problems(err, "users"), [SchemaProblem::MissingTable]);
}

#[tokio::test]
async fn a_failed_migration_tells_the_detail_without_the_value() {
    let db = TestDb::empty().await;
    let failing = FileBasedMigrations::from_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/schema/failing"
    ))
    .unwrap();

    let err = run_migrations_from(db.url(), failing).await.unwrap_err();
    let told = err.to_string();
    assert!(matches!(err, SetupError::Database(_)), "{err:?}");
    assert!(
        told.contains("duplicate key value violates unique constraint \"duplicated_pkey\""),
        "{told}"
    );
    assert!(
        told.contains("(detail: Key (k)=(…) already exists.)"),
        "{told}"
    );
    assert!(!told.contains("secret"), "{told}");
    assert!(!exists(&db, "duplicated").await, "rolled back");
}

#[tokio::test]
async fn a_store_error_tells_the_detail_without_the_value() {
    let db = TestDb::new().await;
    let ghost = user("ghost@example.com");
    let err = db
        .store()
        .await
        .create_session(&live_session(&ghost).0)
        .await
        .unwrap_err();
    let told = err.to_string();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(
        told.contains("violates foreign key constraint \"sessions_user_id_fkey\""),
        "{told}"
    );
    assert!(
        told.contains("(detail: Key (user_id)=(…) is not present in table \"users\".)"),
        "{told}"
    );
    assert!(!told.contains(&ghost.id), "{told}");
}
