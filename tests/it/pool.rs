//! A pool the application builds with the recommended settings, shared between its own queries
//! and the store.

use std::time::{Duration, Instant};

use authingo::Store as _;
use authingo::postgres::diesel_async::pooled_connection::AsyncDieselConnectionManager;
use authingo::postgres::diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use authingo::postgres::{self, PgManager, PgStore, bb8};
use diesel::QueryableByName;
use diesel::sql_types::{Integer, Text};

use crate::support::{TestDb, rows, user};

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Query {
    #[diesel(sql_type = Text)]
    query: String,
}

/// The last statement the server ran for the one connection of `pool`, after it was checked
/// out once more without running anything.
async fn last_statement_after_a_checkout(db: &TestDb, pool: &bb8::Pool<PgManager>) -> String {
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut *pool.get().await.unwrap())
        .await
        .unwrap()
        .pid;
    drop(pool.get().await.unwrap());
    diesel::sql_query("SELECT query FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Query>(&mut db.conn().await)
        .await
        .unwrap()
        .query
}

#[tokio::test]
async fn the_recommended_pool_sends_nothing_on_checkout_and_serves_app_and_store() {
    let db = TestDb::new().await;
    let pool: bb8::Pool<PgManager> = postgres::pool_builder()
        .max_size(1)
        .build(postgres::manager(db.url()))
        .await
        .unwrap();
    assert_eq!(
        last_statement_after_a_checkout(&db, &pool).await,
        "SELECT pg_backend_pid() AS pid"
    );

    // One pool: the store writes, the application reads with its own query.
    let store = PgStore::new(pool.clone());
    store.verify_schema().await.unwrap();
    store.create_user(&user("ada@example.com")).await.unwrap();
    #[derive(QueryableByName)]
    struct Email {
        #[diesel(sql_type = Text)]
        email: String,
    }
    let emails = diesel::sql_query("SELECT email FROM users")
        .load::<Email>(&mut *pool.get().await.unwrap())
        .await
        .unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].email, "ada@example.com");
    assert_eq!(rows(&db, "users").await, 1);

    // What the defaults of bb8 and diesel-async do instead: a ping on every checkout (diesel-async
    // sends `SELECT 1` as `SELECT $1`).
    let defaults = bb8::Pool::builder()
        .max_size(1)
        .build(AsyncDieselConnectionManager::<AsyncPgConnection>::new(
            db.url(),
        ))
        .await
        .unwrap();
    assert_eq!(
        last_statement_after_a_checkout(&db, &defaults).await,
        "SELECT $1"
    );
}

#[tokio::test]
async fn the_recommended_pool_gives_up_on_an_exhausted_pool_after_five_seconds() {
    let db = TestDb::new().await;
    let pool: bb8::Pool<PgManager> = postgres::pool_builder()
        .max_size(1)
        .build(postgres::manager(db.url()))
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    let started = Instant::now();
    let waited = pool.get().await;
    let elapsed = started.elapsed();
    assert!(matches!(waited, Err(bb8::RunError::TimedOut)));
    // bb8's own default would be 30 s.
    assert!(
        elapsed >= Duration::from_millis(4900) && elapsed < Duration::from_secs(20),
        "{elapsed:?}"
    );
    drop(held);
}
