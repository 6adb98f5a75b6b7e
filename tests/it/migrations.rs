//! The embedded migrations: idempotent, safe to run concurrently, and able to adopt a database
//! made by hand from the specification's SQL.

use authingo::Store as _;
use authingo::postgres::{SCHEMA_SQL, run_migrations};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl as _, SimpleAsyncConnection as _};

use crate::db::TestDb;
use crate::fixtures::{count, live_session, user};

const FIRST: &str = "20261127000000";

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[tokio::test]
async fn second_run_is_a_no_op() {
    let db = TestDb::empty().await;
    assert_eq!(run_migrations(db.url()).await.unwrap(), vec![FIRST]);
    assert!(run_migrations(db.url()).await.unwrap().is_empty());
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM __diesel_schema_migrations").await,
        1
    );
}

#[tokio::test]
async fn migrations_make_the_specification_schema() {
    let db = TestDb::empty().await;
    run_migrations(db.url()).await.unwrap();
    let indexes = diesel::sql_query(
        "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'sessions' ORDER BY 1",
    )
    .load::<Name>(&mut db.conn().await)
    .await
    .unwrap();
    let names: Vec<_> = indexes.into_iter().map(|row| row.name).collect();
    assert_eq!(
        names,
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
    assert_eq!(applied, vec![FIRST]);
}

#[tokio::test]
async fn adopts_a_database_made_by_hand_from_the_specification_and_keeps_its_rows() {
    let db = TestDb::empty().await;
    // What the Go library's ApplySchema leaves: the tables, no Diesel bookkeeping, some rows.
    let mut conn = db.conn().await;
    conn.batch_execute(SCHEMA_SQL).await.unwrap();
    conn.batch_execute(
        "INSERT INTO users (id, email, name, password_hash)
             VALUES ('usr_go', 'go@example.com', 'Go', '$2a$10$bcrypt');
         INSERT INTO sessions (id, user_id, token, refresh_token, expires_at, refresh_expires_at)
             VALUES ('ses_go', 'usr_go', 'raw', 'rawrefresh', now() + interval '1 hour',
                     now() + interval '30 days');",
    )
    .await
    .unwrap();

    assert_eq!(run_migrations(db.url()).await.unwrap(), vec![FIRST]);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM users").await, 1);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM sessions").await, 1);
    let store = db.store().await;
    let go = store
        .get_user_by_email("go@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(go.id, "usr_go");
    // The adopted schema takes new rows as one the migration made would.
    let ada = user("ada@example.com");
    store
        .create_user_with_session(&ada, &live_session(&ada).0)
        .await
        .unwrap();
}

#[test]
fn schema_sql_is_the_first_migration() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/2026-11-27-000000_create_authingo/up.sql"
    );
    assert_eq!(SCHEMA_SQL, std::fs::read_to_string(path).unwrap());
    assert!(SCHEMA_SQL.contains("CREATE TABLE IF NOT EXISTS users"));
}
