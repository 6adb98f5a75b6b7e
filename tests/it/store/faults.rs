//! The store when connecting fails or its connections do: what `connect` refuses, an unreachable
//! server, an exhausted pool, connections killed between statements and under one. The tests that
//! need a database run both directly and through PgBouncer (`direct_and_pgbouncer!`), as the
//! contract's do.

use std::time::Duration as StdDuration;

use authingo::postgres::{PoolConfig, SetupError};
use authingo::{Store as _, StoreError};

use crate::support::{TestDb, count, exec, live_session, user};

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = authingo::postgres::connect("postgres://postgres@127.0.0.1:1/postgres")
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn pool_settings_bb8_would_panic_on_are_refused() {
    let url = crate::support::server_url();
    for (config, field) in [
        (PoolConfig::default().max_size(0), "max_size"),
        (
            PoolConfig::default().connection_timeout(StdDuration::ZERO),
            "connection_timeout",
        ),
        (
            PoolConfig::default().max_size(2).min_idle(Some(3)),
            "min_idle",
        ),
    ] {
        let err = authingo::postgres::connect_with(&url, &config)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SetupError::OutOfRange(got) if got == field),
            "{err:?}"
        );
    }
}

async fn exhausted_pool_is_unavailable_after_the_timeout(db: &TestDb) {
    let store = db.one_connection_store().await;
    let held = store.pool().get().await.unwrap();
    let err = store
        .get_user_by_email("ada@example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    drop(held);
    assert!(
        store
            .get_user_by_email("ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn store_recovers_after_its_connections_are_killed(db: &TestDb) {
    let store = db.store().await;
    store.create_user(&user("ada@example.com")).await.unwrap();
    // Three connections open and idle in the pool (and maybe a fourth, which the pool opens to
    // keep one idle while the three are out).
    let held: Vec<_> = vec![
        store.pool().get().await.unwrap(),
        store.pool().get().await.unwrap(),
        store.pool().get().await.unwrap(),
    ];
    drop(held);
    assert!(store.pool().state().idle_connections >= 3);

    let kill_all = async || {
        let mut admin = crate::support::admin().await;
        exec(
            &mut admin,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                db.url().rsplit('/').next().unwrap()
            ),
        )
        .await;
    };
    // What a database restart does to the pool: every connection is closed under it.
    kill_all().await;
    let found = store.get_user_by_email("ada@example.com").await;
    assert!(
        matches!(found, Ok(Some(_))),
        "lookup after the connections were killed: {found:?}"
    );

    // A write is not repeated, but a lost connection is reported as such, never as a database
    // error.
    kill_all().await;
    for email in ["bob@example.com", "carol@example.com", "dan@example.com"] {
        match store.create_user(&user(email)).await {
            Ok(()) | Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("write after the connections were killed: {other:?}"),
        }
    }
}

async fn delete_whose_connection_dies_under_it_is_unavailable_not_a_guess(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();

    // Another transaction holds the row, so the store's DELETE waits on its lock.
    let mut holder = db.conn().await;
    exec(&mut holder, "BEGIN").await;
    exec(
        &mut holder,
        &format!(
            "SELECT id FROM sessions WHERE id = '{}' FOR UPDATE",
            session.id
        ),
    )
    .await;
    let deleting = tokio::spawn({
        let store = store.clone();
        let digest = tokens.access.digest();
        async move { store.delete_session(&digest).await }
    });

    // The store's backend, once it waits on that lock.
    let database = db.url().rsplit('/').next().unwrap().to_owned();
    let waiting = format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = '{database}' AND wait_event_type = 'Lock'"
    );
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while count(db, &waiting).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the DELETE never waited"
        );
        tokio::task::yield_now().await;
    }
    // The connection dies mid-statement: whether the DELETE was applied is unknown to the store.
    exec(
        &mut crate::support::admin().await,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND wait_event_type = 'Lock'"
        ),
    )
    .await;
    exec(&mut holder, "ROLLBACK").await;

    // A repeat on another connection would answer for itself, not for the first run.
    let outcome = deleting.await.unwrap();
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    // The killed statement deleted nothing; the client's retry finds the session.
    assert!(store.delete_session(&tokens.access.digest()).await.unwrap());
}

direct_and_pgbouncer! {
    exhausted_pool_is_unavailable_after_the_timeout,
    store_recovers_after_its_connections_are_killed,
    delete_whose_connection_dies_under_it_is_unavailable_not_a_guess(
        flavor = "multi_thread",
        worker_threads = 2
    ),
}
