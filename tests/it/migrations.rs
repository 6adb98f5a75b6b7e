//! The embedded migrations: idempotent, safe to run concurrently, reversible without leftovers,
//! and able to adopt a database made by hand from the specification's SQL with every row.
//!
//! `scripts/check-migrations` proves the same files with the Diesel CLI (print-schema, redo,
//! revert, CLI == embedded); what needs no CLI is checked here.

use authingo::Store as _;
use authingo::postgres::{MIGRATIONS, SCHEMA_SQL, run_migrations};
use diesel::Connection as _;
use diesel::QueryableByName;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::Text;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use diesel_migrations::MigrationHarness as _;

use crate::support::{TestDb, count, live_session, user};

const FIRST: &str = "20261127000000";
/// Refresh rotation and lifetimes (issue 11): additive columns, `sessions(user_id)`, and the
/// specification's two indexes that duplicated UNIQUE constraints dropped.
const SECOND: &str = "20261130000000";
/// The client of each session (issue 12): user agent and address.
const THIRD: &str = "20261130000001";
/// One-time tokens for verification, reset and change of email (issue 13).
const FOURTH: &str = "20261130000002";
/// Abuse limits (issue 14): the rate-limit counters and the failed sign-ins, new tables only.
const FIFTH: &str = "20261130000003";
/// Refresh families, the replaced access token, and the rotation secrets' sweep: two columns
/// and three indexes.
const SIXTH: &str = "20261207000000";
/// One-time tokens that cancel a change of email: the purpose constraint gains one value.
const SEVENTH: &str = "20261207000001";
/// Device cookies: the failures of each trusted device, a new table; and locks that end.
const EIGHTH: &str = "20261208000000";
/// The second factor: TOTP secrets, recovery codes, challenges and trusted devices, new tables.
const NINTH: &str = "20261208000001";
const ALL: [&str; 9] = [
    FIRST, SECOND, THIRD, FOURTH, FIFTH, SIXTH, SEVENTH, EIGHTH, NINTH,
];

/// The Go AuthInGo's schema as the specification quotes it (postgres-adapter.md, "Database
/// Schema"; the Go library's `postgres.SchemaSQL`), copied byte for byte.
const SPEC_SCHEMA_SQL: &str = include_str!("migrations/spec_schema.sql");

/// Rows as the Go AuthInGo writes them: 2 users and 3 sessions.
const GO_ROWS_SQL: &str = include_str!("migrations/go_rows.sql");

/// Every table, index, sequence, type, function, schema and extension of ours, as `name`.
const OWN_OBJECTS_SQL: &str = include_str!("migrations/own_objects.sql");

/// Every row of the specification's columns, as text. Only those columns: a later migration that
/// adds a column does not count as a change to the rows.
const SPEC_ROWS_SQL: &str = "
    SELECT format('users %s', (id, email, name, password_hash, email_verified, created_at,
                               updated_at)) AS name FROM users
    UNION ALL
    SELECT format('sessions %s', (id, user_id, token, refresh_token, refresh_expires_at,
                                  expires_at, created_at)) FROM sessions
    ORDER BY 1";

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The `name` column of every row `sql` selects.
async fn names(db: &TestDb, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Name>(&mut db.conn().await)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.name)
        .collect()
}

/// The embedded migrations' names, in the order Diesel applies them (by version).
fn embedded_names() -> Vec<String> {
    let mut migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS).unwrap();
    migrations.sort_by(|a, b| a.name().version().cmp(&b.name().version()));
    migrations.iter().map(|m| m.name().to_string()).collect()
}

#[tokio::test]
async fn second_run_is_a_no_op() {
    let db = TestDb::empty().await;
    assert_eq!(run_migrations(db.url()).await.unwrap(), ALL);
    assert!(run_migrations(db.url()).await.unwrap().is_empty());
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM __diesel_schema_migrations").await,
        ALL.len() as i64
    );
}

#[tokio::test]
async fn migrations_make_the_specification_schema_then_the_rotation_columns() {
    let db = TestDb::empty().await;
    let sessions_indexes =
        "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'sessions' ORDER BY 1";
    // As the specification has it: the first migration alone.
    db.conn().await.batch_execute(SCHEMA_SQL).await.unwrap();
    assert_eq!(
        names(&db, sessions_indexes).await,
        [
            "idx_sessions_expires_at",
            "idx_sessions_refresh_expires_at",
            "idx_sessions_refresh_token",
            "idx_sessions_token",
            "sessions_pkey",
            "sessions_refresh_token_key",
            "sessions_token_key",
        ]
    );
    run_migrations(db.url()).await.unwrap();
    // The second: the duplicates of the UNIQUE constraints gone, a user's sessions indexed.
    assert_eq!(
        names(&db, sessions_indexes).await,
        [
            "idx_sessions_expires_at",
            "idx_sessions_previous_refresh_token",
            "idx_sessions_previous_token",
            "idx_sessions_refresh_expires_at",
            "idx_sessions_refresh_family",
            "idx_sessions_rotation_secret",
            "idx_sessions_user_id",
            "sessions_pkey",
            "sessions_refresh_token_key",
            "sessions_token_key",
        ]
    );
    assert_eq!(
        names(
            &db,
            "SELECT column_name || ' ' || data_type || ' ' || is_nullable AS name
             FROM information_schema.columns
             WHERE table_name = 'sessions' AND ordinal_position > 7 ORDER BY ordinal_position"
        )
        .await,
        [
            "previous_refresh_token character varying YES",
            "rotated_at timestamp with time zone YES",
            "rotation_secret character varying YES",
            "absolute_expires_at timestamp with time zone YES",
            "persistent boolean NO",
            "user_agent character varying YES",
            "ip_address character varying YES",
            "refresh_family character varying YES",
            "previous_token character varying YES",
        ]
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM information_schema.columns
             WHERE table_name = 'users' AND is_nullable = 'YES'"
        )
        .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_both_succeed_and_apply_once() {
    let db = TestDb::empty().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (url, barrier) = (db.url().to_owned(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                run_migrations(&url).await
            })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.extend(run.await.unwrap().unwrap());
    }
    assert_eq!(applied, ALL);
}

#[tokio::test]
async fn reverting_every_migration_leaves_nothing_of_ours() {
    let db = TestDb::empty().await;
    run_migrations(db.url()).await.unwrap();
    assert!(
        !names(&db, OWN_OBJECTS_SQL).await.is_empty(),
        "the query sees what the migrations make"
    );

    // As run_migrations runs them: diesel_migrations is synchronous, so on the blocking pool,
    // over a wrapped async connection.
    let url = db.url().to_owned();
    let reverted = tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        let versions = conn.revert_all_migrations(MIGRATIONS).unwrap();
        versions.iter().map(ToString::to_string).collect::<Vec<_>>()
    })
    .await
    .unwrap();

    assert_eq!(
        reverted,
        [
            NINTH, EIGHTH, SEVENTH, SIXTH, FIFTH, FOURTH, THIRD, SECOND, FIRST
        ]
    );
    assert_eq!(names(&db, OWN_OBJECTS_SQL).await, Vec::<String>::new());
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM __diesel_schema_migrations").await,
        0
    );
}

/// Inserts a one-time token of `purpose` for the user `usr_1`; says whether the row went in.
async fn token_of_purpose(db: &TestDb, purpose: &str) -> bool {
    diesel::sql_query(format!(
        "INSERT INTO one_time_tokens (token, user_id, purpose, expires_at) \
         VALUES (md5(random()::text), 'usr_1', '{purpose}', now() + interval '1 hour')"
    ))
    .execute(&mut db.conn().await)
    .await
    .is_ok()
}

#[tokio::test]
async fn the_cancel_purpose_comes_with_its_migration_and_goes_with_its_revert() {
    let db = TestDb::empty().await;
    run_migrations(db.url()).await.unwrap();
    diesel::sql_query(
        "INSERT INTO users (id, email, name, password_hash) VALUES ('usr_1', 'a@x.io', 'A', 'h')",
    )
    .execute(&mut db.conn().await)
    .await
    .unwrap();
    assert!(token_of_purpose(&db, "cancel_email_change").await);
    assert!(token_of_purpose(&db, "change_email").await);
    assert!(!token_of_purpose(&db, "anything_else").await);

    let url = db.url().to_owned();
    let reverted = tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        [(); 3].map(|()| conn.revert_last_migration(MIGRATIONS).unwrap().to_string())
    })
    .await
    .unwrap();
    assert_eq!(reverted, [NINTH, EIGHTH, SEVENTH]);
    // The previous constraint again: the cancel links went with their purpose, the rest stayed.
    assert!(!token_of_purpose(&db, "cancel_email_change").await);
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM one_time_tokens").await,
        1
    );
}

#[tokio::test]
async fn the_device_failures_migration_ends_old_locks_and_its_revert_drops_only_its_table() {
    let db = TestDb::empty().await;
    // Diesel's harness on the blocking pool, as run_migrations runs it.
    let harness = |revert: bool| {
        let url = db.url().to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
            if revert {
                conn.revert_last_migration(MIGRATIONS).unwrap().to_string()
            } else {
                let ran = conn.run_pending_migrations(MIGRATIONS).unwrap();
                ran.last().map(ToString::to_string).unwrap_or_default()
            }
        })
    };
    let (run, revert) = (|| harness(false), || harness(true));
    assert_eq!(run().await.unwrap(), NINTH);
    assert_eq!(revert().await.unwrap(), NINTH);
    assert_eq!(revert().await.unwrap(), EIGHTH);
    // A lock as the seventh migration's version wrote it (no end), and a count that is no lock.
    diesel::sql_query(
        "INSERT INTO sign_in_failures (email_digest, failures, last_failed_at, forget_at) VALUES \
         ('locked', 100, now() - interval '1 hour', NULL), \
         ('counted', 3, now() - interval '1 hour', now() + interval '23 hours')",
    )
    .execute(&mut db.conn().await)
    .await
    .unwrap();
    assert_eq!(run().await.unwrap(), NINTH);
    let ends = "SELECT count(*) AS n FROM sign_in_failures \
                WHERE forget_at = last_failed_at + interval '24 hours' AND failures = 100";
    assert_eq!(
        count(&db, ends).await,
        1,
        "the old lock ends a day after its failure"
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM sign_in_device_failures").await,
        0
    );
    assert_eq!(revert().await.unwrap(), NINTH);
    assert_eq!(revert().await.unwrap(), EIGHTH);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_name = 'sign_in_device_failures'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM sign_in_failures").await,
        2
    );
}

#[tokio::test]
async fn adopts_a_database_made_by_hand_from_the_specification_with_every_row() {
    let db = TestDb::empty().await;
    // What the Go library's ApplySchema leaves: the tables, no Diesel bookkeeping, its rows.
    let mut conn = db.conn().await;
    conn.batch_execute(SCHEMA_SQL).await.unwrap();
    conn.batch_execute(GO_ROWS_SQL).await.unwrap();
    let before = names(&db, SPEC_ROWS_SQL).await;
    assert_eq!(before.len(), 5, "2 users and 3 sessions went in");

    // The first migration is a no-op there; the later ones are applied.
    assert_eq!(run_migrations(db.url()).await.unwrap(), ALL);

    assert_eq!(names(&db, SPEC_ROWS_SQL).await, before);
    // The Go sessions carry no absolute expiry and are persistent: they count from created_at.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM sessions
             WHERE absolute_expires_at IS NULL AND persistent AND previous_refresh_token IS NULL"
        )
        .await,
        3
    );
    let store = db.store().await;
    let ada = store
        .get_user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.id, "usr_0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    // The adopted schema takes new rows as one the migrations made would.
    let new = user("new@example.com");
    store
        .create_user_with_session(&new, &live_session(&new).0)
        .await
        .unwrap();
}

/// The first migration is the specification's SQL and never changes (DESIGN.md, "Migrations: the
/// rules"): it is what lets a Go-made database be adopted. Editing it, or adding a migration that
/// sorts before it, fails here.
#[test]
fn schema_sql_is_the_specifications_sql_and_the_first_migration() {
    assert_eq!(SCHEMA_SQL, SPEC_SCHEMA_SQL);
    assert_eq!(embedded_names()[0], "2026-11-27-000000_create_authingo");
}

/// `diesel setup` writes helper functions we do not use into a migration of its own.
#[test]
fn no_diesel_setup_migration_is_embedded() {
    let names = embedded_names();
    assert!(
        !names.iter().any(|name| name.starts_with("00000000000000")),
        "delete the migration `diesel setup` wrote: {names:?}"
    );
}

#[tokio::test]
async fn the_second_factor_migration_adds_four_tables_and_its_revert_drops_only_them() {
    let db = TestDb::empty().await;
    assert_eq!(run_migrations(db.url()).await.unwrap(), ALL);
    let mut conn = db.conn().await;
    conn.batch_execute(
        "INSERT INTO users (id, email, name, password_hash) VALUES ('usr_1', 'a@x.io', 'A', 'h');
         INSERT INTO totp_secrets (user_id, key_id, ciphertext) VALUES ('usr_1', 'k1', '\\x00');
         INSERT INTO recovery_codes (user_id, code_digest) VALUES ('usr_1', 'd1');
         INSERT INTO two_factor_challenges (challenge_digest, user_id, persistent, expires_at)
           VALUES ('c1', 'usr_1', true, now() + interval '5 minutes');
         INSERT INTO trusted_devices (device_digest, user_id, expires_at)
           VALUES ('t1', 'usr_1', now() + interval '30 days');",
    )
    .await
    .unwrap();
    let tables = "SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN \
                  ('totp_secrets', 'recovery_codes', 'two_factor_challenges', 'trusted_devices')";
    assert_eq!(count(&db, tables).await, 4);
    // Deleting the user takes its second factor with it.
    conn.batch_execute("DELETE FROM users WHERE id = 'usr_1'")
        .await
        .unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM totp_secrets").await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM trusted_devices").await,
        0
    );

    let url = db.url().to_owned();
    let reverted = tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        conn.revert_last_migration(MIGRATIONS).unwrap().to_string()
    })
    .await
    .unwrap();
    assert_eq!(reverted, NINTH);
    assert_eq!(count(&db, tables).await, 0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_name IN ('users', 'sessions', 'sign_in_device_failures')"
        )
        .await,
        3
    );
}
