//! PgBouncer 1.18 in transaction mode. (The store tests run through PgBouncer in session mode too,
//! as `store::pgbouncer::*` and `store::faults::pgbouncer::*`; `support::assert_served` checks
//! that they really went through it.)
//!
//! diesel-async runs every statement as a named prepared statement of tokio-postgres (`s0`,
//! `s1`, … from one counter per process), and keeps the ones the store marks as cacheable
//! prepared on its connection. In transaction mode PgBouncer 1.18 gives a client a server
//! connection for one transaction only and does not track prepared statements, so a statement
//! prepared on one server connection is later run on another (which never saw it), and a name
//! prepared by another client (another instance of the service: its counter starts at `s0` too)
//! may already exist on the server connection a client is given. With one client at a time
//! PgBouncer keeps handing out the same server connection and nothing fails: only contention
//! shows it. The two tests below make each case happen deterministically.

use authingo::Store as _;
use authingo::StoreError;
use authingo::postgres::PoolConfig;
use authingo_test_db::PoolMode;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::{TestDb, user};

/// `db`'s server connections that PgBouncer could give the next transaction: idle, or idle long
/// enough to be checked first.
async fn idle_servers(db: &TestDb) -> usize {
    let admin = db.bouncer().unwrap().admin().await.unwrap();
    let rows = admin.simple_query("SHOW POOLS").await.unwrap();
    rows.iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) if row.get("database") == Some(db.name()) => {
                let count = |column| row.get(column).unwrap().parse::<usize>().unwrap();
                Some(count("sv_idle") + count("sv_used"))
            }
            _ => None,
        })
        .sum()
}

#[tokio::test]
async fn transaction_mode_runs_a_statement_on_a_server_connection_that_never_prepared_it() {
    let db = TestDb::through_pgbouncer(PoolMode::Transaction).await;
    let store = db.store_with(PoolConfig::default().max_size(1)).await;
    // One client at a time: prepared and run on the same server connection, kept prepared.
    for _ in 0..2 {
        assert!(
            store
                .get_user_by_email("ada@example.com")
                .await
                .unwrap()
                .is_none()
        );
    }
    // Other clients open transactions until every idle server connection, the one holding the
    // store's statement among them, is theirs: the store's next statement gets a new one.
    let mut holders = Vec::new();
    while idle_servers(&db).await > 0 {
        assert!(
            holders.len() < 20,
            "PgBouncer keeps idle server connections"
        );
        let holder = authingo_test_db::connect(&db.store_url()).await.unwrap();
        holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
        holders.push(holder);
    }

    let err = store
        .get_user_by_email("ada@example.com")
        .await
        .unwrap_err();
    // SQLSTATE 26000, which diesel-async reports as `DatabaseErrorKind::Unknown`, which the store
    // reports as unavailable (HTTP 503): the store cannot tell it from a database that cannot
    // serve in time.
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("the database is unavailable: prepared statement \"s")
            && message.ends_with("\" does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn transaction_mode_lets_another_client_prepare_the_name_first() {
    // One server connection for every client, as two instances of a service share PgBouncer's.
    let db = TestDb::through_pgbouncer_with(PoolMode::Transaction, 1).await;
    let store = db.store_with(PoolConfig::default().max_size(1)).await;
    // Its connection made now: made after the squat below, the connection's own set-up would
    // collide, and bb8 would report only a checkout timeout.
    drop(store.pool().get().await.unwrap());
    // The names this process prepares next, as another instance, whose counter also starts at
    // `s0`, prepares them on the server connection. 1000 ahead covers the statements that tests
    // running beside this one in the process may prepare meanwhile.
    let direct = authingo_test_db::connect(db.url()).await.unwrap();
    let _probe = direct.prepare("SELECT 1").await.unwrap();
    let latest = show_prepared(&direct).await;
    let other = authingo_test_db::connect(&db.store_url()).await.unwrap();
    let squat: String = (latest + 1..=latest + 1000)
        .map(|n| format!("PREPARE s{n} AS SELECT 1;"))
        .collect();
    other.batch_execute(&squat).await.unwrap();

    let err = store
        .create_user(&user("ada@example.com"))
        .await
        .unwrap_err();
    // SQLSTATE 42P05, reported as unavailable for the same reason; nothing was written.
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("the database is unavailable: prepared statement \"s")
            && message.ends_with("\" already exists"),
        "{message}"
    );
    assert_eq!(crate::support::rows(&db, "users").await, 0);
}

/// The highest `N` among the `sN` statements prepared on `client`'s connection.
async fn show_prepared(client: &Client) -> usize {
    let rows = client
        .simple_query("SELECT name FROM pg_prepared_statements")
        .await
        .unwrap();
    rows.iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(0)?.strip_prefix('s')?.parse().ok(),
            _ => None,
        })
        .max()
        .expect("a statement prepared by tokio-postgres")
}
