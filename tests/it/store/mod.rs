//! The Store contract, line by line, on `PgStore`; what the store does when its connections fail
//! is in `faults`.
//!
//! The tests listed in `direct_and_pgbouncer!` at the end (every one that needs a database, but
//! the trait-object check) run twice: `store::direct::<name>`, the store's pool on PostgreSQL
//! itself, and `store::pgbouncer::<name>`, the pool on a PgBouncer of the test's own in session
//! mode, the pooler setting the README supports. Through PgBouncer, each also checks that its
//! connections really went through it. What transaction mode does instead is in `pgbouncer.rs`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use authingo::postgres::PoolConfig;
use authingo::token::{RotationSecret, Token, TokenKind};
use authingo::{
    CleanupPace, EndSessions, InputReason, OneTimeToken, OneTimeTokens as _,
    SessionManagement as _, SessionRotation, Store, StoreError, TokenPurpose,
};
use chrono::{Duration, DurationRound as _, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use tokio::sync::Barrier;

use crate::support::{TestDb, capture_logs, count, exec, live_session, session, user};

/// Runs each test `name(db: &TestDb)` listed as `direct::name` (in the module that lists it) on
/// a database of its own, and as `pgbouncer::name` on one behind a PgBouncer in session mode; an
/// optional parenthesised argument list is `#[tokio::test]`'s.
macro_rules! direct_and_pgbouncer {
    ($($name:ident $(($($flavor:tt)*))?),* $(,)?) => {
        mod direct {
            use crate::support::TestDb;
            $(
                #[tokio::test $(($($flavor)*))?]
                async fn $name() {
                    super::$name(&TestDb::new().await).await;
                }
            )*
        }

        mod pgbouncer {
            use authingo_test_db::PoolMode;

            use crate::support::TestDb;
            $(
                #[tokio::test $(($($flavor)*))?]
                async fn $name() {
                    let db = TestDb::through_pgbouncer(PoolMode::Session).await;
                    super::$name(&db).await;
                    crate::support::assert_served(&db).await;
                }
            )*
        }
    };
}

mod faults;

fn rotation() -> (SessionRotation, Token, Token) {
    let access = Token::generate(TokenKind::Access).unwrap();
    let refresh = Token::generate(TokenKind::Refresh).unwrap();
    // Whole microseconds, as PostgreSQL stores them, so round trips compare equal.
    let now = Utc::now()
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap();
    let rotation = SessionRotation {
        token: access.digest(),
        refresh_token: refresh.digest(),
        expires_at: now + Duration::minutes(20),
        refresh_expires_at: now + Duration::days(40),
        secret: RotationSecret::generate().unwrap(),
        // No cap and the default window: the contract's plain rotation.
        max_lifetime: None,
        reuse_grace: TimeDelta::seconds(10),
        family: refresh.family(),
    };
    (rotation, access, refresh)
}

async fn user_round_trips_by_email(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();

    let found = store
        .get_user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ada.id);
    assert_eq!(found.email, ada.email);
    assert_eq!(found.name, ada.name);
    assert_eq!(found.password_hash, ada.password_hash);
    assert!(!found.email_verified);
    // Left to the column defaults.
    assert!(found.created_at.is_some());
    assert!(found.updated_at.is_some());
}

async fn missing_email_is_none(db: &TestDb) {
    let store = db.store().await;
    store.create_user(&user("ada@example.com")).await.unwrap();
    assert!(
        store
            .get_user_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_user_by_email("ada\0@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn duplicate_email_is_duplicate_email(db: &TestDb) {
    let store = db.store().await;
    store.create_user(&user("ada@example.com")).await.unwrap();
    let err = store
        .create_user(&user("ada@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEmail), "{err:?}");
    assert_eq!(count(db, "SELECT count(*) AS n FROM users").await, 1);
}

async fn duplicate_id_is_a_database_error_not_duplicate_email(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let mut bob = user("bob@example.com");
    bob.id = ada.id.clone();
    let err = store.create_user(&bob).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

async fn session_round_trips_with_its_user(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();

    let found = store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.id, session.id);
    assert_eq!(found.session.user_id, ada.id);
    assert_eq!(found.session.token, session.token);
    assert_eq!(found.session.refresh_token, session.refresh_token);
    assert_eq!(
        found.session.expires_at.timestamp_micros(),
        session.expires_at.timestamp_micros()
    );
    assert!(found.session.created_at.is_some());
    assert_eq!(found.user.id, ada.id);
    assert_eq!(found.user.email, ada.email);

    // Neither an unknown digest nor the refresh token's digest finds it.
    let stranger = Token::generate(TokenKind::Access).unwrap();
    assert!(
        store
            .get_session(&stranger.digest())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_session(&tokens.refresh.digest())
            .await
            .unwrap()
            .is_none()
    );
}

async fn expired_access_token_is_none_but_refresh_still_works(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = session(&ada, Duration::seconds(-1), Duration::days(30));
    store.create_session(&session).await.unwrap();

    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    let (rotation, new_access, _) = rotation();
    let refreshed = store
        .refresh_session(&tokens.refresh.digest(), &rotation)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    assert_eq!(refreshed.session.id, session.id);
    assert!(
        store
            .get_session(&new_access.digest())
            .await
            .unwrap()
            .is_some()
    );
}

async fn delete_by_access_token_removes_the_session(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    let (other, other_tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();
    store.create_session(&other).await.unwrap();

    assert!(store.delete_session(&tokens.access.digest()).await.unwrap());
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    // A second delete finds nothing; the other session is untouched.
    assert!(!store.delete_session(&tokens.access.digest()).await.unwrap());
    assert!(
        store
            .get_session(&other_tokens.access.digest())
            .await
            .unwrap()
            .is_some()
    );
}

async fn delete_by_refresh_token_removes_the_session(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();

    assert!(
        store
            .delete_session(&tokens.refresh.digest())
            .await
            .unwrap()
    );
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 0);
}

async fn refresh_replaces_both_tokens_and_expiries(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();

    let (rotation, new_access, new_refresh) = rotation();
    let refreshed = store
        .refresh_session(&tokens.refresh.digest(), &rotation)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    assert_eq!(refreshed.session.id, session.id);
    assert_eq!(refreshed.session.token, new_access.digest());
    assert_eq!(refreshed.session.refresh_token, new_refresh.digest());
    assert_eq!(refreshed.session.expires_at, rotation.expires_at);
    assert_eq!(
        refreshed.session.refresh_expires_at,
        rotation.refresh_expires_at
    );
    assert_eq!(refreshed.user.id, ada.id);
    assert_eq!(refreshed.user.email, ada.email);

    // The old values stop working; the new ones work.
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    let (again, _, _) = self::rotation();
    assert!(
        store
            .refresh_session(&tokens.refresh.digest(), &again)
            .await
            .unwrap()
            .rotated()
            .is_none()
    );
    let found = store
        .get_session(&new_access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.expires_at, rotation.expires_at);
    assert!(
        store
            .refresh_session(&new_refresh.digest(), &again)
            .await
            .unwrap()
            .rotated()
            .is_some()
    );
}

async fn expired_refresh_token_cannot_refresh(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = session(&ada, Duration::seconds(-2), Duration::seconds(-1));
    store.create_session(&session).await.unwrap();

    let (rotation, new_access, _) = rotation();
    assert!(
        store
            .refresh_session(&tokens.refresh.digest(), &rotation)
            .await
            .unwrap()
            .rotated()
            .is_none()
    );
    assert!(
        store
            .get_session(&new_access.digest())
            .await
            .unwrap()
            .is_none()
    );
    // Nothing was written over the row.
    assert_eq!(
        count(
            db,
            "SELECT count(*) AS n FROM sessions WHERE refresh_expires_at < now()"
        )
        .await,
        1
    );
}

async fn of_fifty_concurrent_refreshes_exactly_one_wins(db: &TestDb) {
    const CALLERS: usize = 50;
    let store = Arc::new(
        db.store_with(PoolConfig::default().max_size(CALLERS as u32))
            .await,
    );
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();

    let barrier = Arc::new(Barrier::new(CALLERS));
    let old = tokens.refresh.digest();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (store, barrier, old) = (store.clone(), barrier.clone(), old.clone());
            tokio::spawn(async move {
                let (rotation, access, _) = rotation();
                barrier.wait().await;
                let won = store.refresh_session(&old, &rotation).await.unwrap();
                won.rotated().map(|_| access)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(access) = task.await.unwrap() {
            winners.push(access);
        }
    }
    assert_eq!(winners.len(), 1);
    // The winner's token is the one the row now holds.
    assert!(
        store
            .get_session(&winners[0].digest())
            .await
            .unwrap()
            .is_some()
    );
}

async fn cleanup_removes_dead_sessions_in_batches_and_keeps_refreshable_ones(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let mut conn = db.conn().await;
    // 2,500 dead sessions (both expiries past), written in one statement.
    exec(
        &mut conn,
        &format!(
            "INSERT INTO sessions (id, user_id, token, refresh_token, expires_at, refresh_expires_at)
             SELECT 'ses_dead_' || i, '{}', 'a' || i, 'r' || i,
                    now() - interval '31 days', now() - interval '1 second'
             FROM generate_series(1, 2500) AS i",
            ada.id
        ),
    )
    .await;
    // Access expired, refresh valid: the spec's OR predicate would delete these.
    let (idle, idle_tokens) = session(&ada, Duration::minutes(-20), Duration::days(29));
    store.create_session(&idle).await.unwrap();
    let (live, _) = live_session(&ada);
    store.create_session(&live).await.unwrap();

    let (logs, guard) = capture_logs();
    let pace = CleanupPace {
        batch_size: 1000,
        pause_ratio: 0.0,
    };
    let deleted = store.cleanup_expired_sessions_paced(pace).await.unwrap();
    drop(guard);
    assert_eq!(deleted, 2500);

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let batches: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("cleanup batch"))
        .collect();
    assert_eq!(batches.len(), 3, "{logs}");
    assert!(batches[0].contains("deleted=1000"), "{logs}");
    assert!(batches[2].contains("deleted=500"), "{logs}");

    let remaining = count(db, "SELECT count(*) AS n FROM sessions").await;
    assert_eq!(remaining, 2);
    // The idle session can still be refreshed.
    let (rotation, _, _) = rotation();
    assert!(
        store
            .refresh_session(&idle_tokens.refresh.digest(), &rotation)
            .await
            .unwrap()
            .rotated()
            .is_some()
    );
    assert_eq!(store.cleanup_expired_sessions().await.unwrap(), 0);
}

async fn cleanup_skips_rows_another_sweep_holds_instead_of_waiting(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..10 {
        let (session, _) = session(&ada, Duration::days(-2), Duration::days(-1));
        store.create_session(&session).await.unwrap();
        dead.push(session.id);
    }
    // Another instance's sweep holds three dead rows in an open transaction.
    let mut other = db.conn().await;
    exec(&mut other, "BEGIN").await;
    exec(
        &mut other,
        &format!(
            "SELECT id FROM sessions WHERE id IN ('{}', '{}', '{}') FOR UPDATE",
            dead[0], dead[1], dead[2]
        ),
    )
    .await;

    let deleted =
        tokio::time::timeout(StdDuration::from_secs(30), store.cleanup_expired_sessions())
            .await
            .expect("cleanup waited on rows another transaction holds")
            .unwrap();
    assert_eq!(deleted, 7);

    exec(&mut other, "COMMIT").await;
    assert_eq!(store.cleanup_expired_sessions().await.unwrap(), 3);
}

async fn deleting_a_user_deletes_its_sessions(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    let bob = user("bob@example.com");
    store.create_user(&ada).await.unwrap();
    store.create_user(&bob).await.unwrap();
    for owner in [&ada, &ada, &bob] {
        store.create_session(&live_session(owner).0).await.unwrap();
    }
    exec(
        &mut db.conn().await,
        &format!("DELETE FROM users WHERE id = '{}'", ada.id),
    )
    .await;
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 1);
}

async fn session_for_an_unknown_user_is_refused(db: &TestDb) {
    let store = db.store().await;
    let ghost = user("ghost@example.com");
    let err = store
        .create_session(&live_session(&ghost).0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

async fn user_with_session_is_written_together_or_not_at_all(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    let (session, tokens) = live_session(&ada);
    store
        .create_user_with_session(&ada, &session)
        .await
        .unwrap();
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_some()
    );

    // The session insert fails (its id is taken): the user must not stay behind.
    let bob = user("bob@example.com");
    let (mut clash, _) = live_session(&bob);
    clash.id = session.id.clone();
    let err = store
        .create_user_with_session(&bob, &clash)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(
        store
            .get_user_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn nul_byte_or_overlong_value_is_refused_and_nothing_is_stored(db: &TestDb) {
    let store = db.store().await;

    let err = store
        .create_user(&user("ada\0@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "email",
                reason: InputReason::NulByte
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("NUL"), "{err}");

    let long = format!("{}@example.com", "a".repeat(256 - "@example.com".len()));
    assert_eq!(long.chars().count(), 256);
    let err = store.create_user(&user(&long)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "email",
                reason: InputReason::TooLong {
                    max: 255,
                    unit: "characters"
                }
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid email: must be at most 255 characters"
    );

    // 255 characters, multi-byte ones included, fit.
    let fits = format!("{}@example.com", "é".repeat(255 - "@example.com".len()));
    store.create_user(&user(&fits)).await.unwrap();

    let mut named = user("bob@example.com");
    named.name = "Bob\0".to_owned();
    let (session, _) = live_session(&named);
    let err = store
        .create_user_with_session(&named, &session)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput { field: "name", .. }),
        "{err:?}"
    );
    assert_eq!(count(db, "SELECT count(*) AS n FROM users").await, 1);
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 0);
}

#[tokio::test]
async fn store_is_usable_as_a_trait_object() {
    let db = TestDb::new().await;
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    assert!(store.get_user_by_email(&ada.email).await.unwrap().is_some());
}

async fn every_statement_stays_prepared_on_its_connection(db: &TestDb) {
    #[derive(QueryableByName)]
    struct Statement {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    let store = db.store_with(PoolConfig::default().max_size(1)).await;
    // Twice each, so that a statement prepared anew per call would show as such.
    for round in 0..2 {
        let ada = user(&format!("ada{round}@example.com"));
        store.create_user(&ada).await.unwrap();
        let (session, tokens) = live_session(&ada);
        store.create_session(&session).await.unwrap();
        store.get_user_by_email(&ada.email).await.unwrap();
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .unwrap();
        let (rotation, new_access, _) = rotation();
        store
            .refresh_session(&tokens.refresh.digest(), &rotation)
            .await
            .unwrap()
            .rotated()
            .unwrap();
        assert!(store.delete_session(&new_access.digest()).await.unwrap());
        store.cleanup_expired_sessions().await.unwrap();
    }
    // Only named (kept) statements are listed, besides the one asking.
    let prepared = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Statement>(&mut *store.pool().get().await.unwrap())
        .await
        .unwrap();
    let count = |start: &str| {
        prepared
            .iter()
            .filter(|row| row.statement.trim_start().starts_with(start))
            .count()
    };
    assert_eq!(count("INSERT INTO \"users\""), 1);
    assert_eq!(count("INSERT INTO \"sessions\""), 1);
    assert_eq!(count("-- The user with this"), 1, "get_user_by_email.sql");
    assert_eq!(
        count("-- The session of an access-token"),
        1,
        "get_session.sql"
    );
    assert_eq!(count("DELETE"), 1);
    assert_eq!(count("-- Rotate a session"), 1, "refresh_session.sql");
    assert_eq!(
        count("-- One batch of the cleanup"),
        1,
        "cleanup_expired_sessions.sql"
    );
}

async fn replacing_a_password_hash_needs_the_hash_it_replaces(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();

    // Another hash than the one stored: a password changed since it was read. Nothing moves.
    assert!(
        !store
            .replace_password_hash(&ada.id, "$stale$", "$rehashed$")
            .await
            .unwrap()
    );
    let stored = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, ada.password_hash);

    assert!(
        store
            .replace_password_hash(&ada.id, &ada.password_hash, "$rehashed$")
            .await
            .unwrap()
    );
    let stored = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$rehashed$");
    // An unknown user, and a NUL byte that can match no row.
    assert!(
        !store
            .replace_password_hash("usr_nobody", "$rehashed$", "$x$")
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_password_hash(&ada.id, "\0", "$x$")
            .await
            .unwrap()
    );
}

async fn a_session_opens_only_over_the_hash_its_sign_in_verified(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (mut session, tokens) = live_session(&ada);
    session.user_agent = Some("Firefox".to_owned());
    session.ip_address = Some("192.0.2.1".to_owned());

    // The password changed since the sign-in verified it: nothing is written.
    for stale in ["$stale$", "\0"] {
        assert!(
            !store
                .create_session_verified(&session, stale)
                .await
                .unwrap()
        );
    }
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 0);
    let mut ghost = session.clone();
    ghost.user_id = "usr_nobody".to_owned();
    assert!(
        !store
            .create_session_verified(&ghost, &ada.password_hash)
            .await
            .unwrap()
    );

    assert!(
        store
            .create_session_verified(&session, &ada.password_hash)
            .await
            .unwrap()
    );
    let found = store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.id, session.id);
    assert_eq!(found.session.user_agent.as_deref(), Some("Firefox"));
    assert_eq!(found.session.ip_address.as_deref(), Some("192.0.2.1"));
    assert!(found.session.persistent);
    assert_eq!(
        found.session.refresh_expires_at.timestamp_micros(),
        session.refresh_expires_at.timestamp_micros()
    );
}

async fn a_password_change_needs_the_hash_it_verified_and_ends_every_link(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (kept, _) = live_session(&ada);
    let (other, _) = live_session(&ada);
    store.create_session(&kept).await.unwrap();
    store.create_session(&other).await.unwrap();
    let link = Token::generate(TokenKind::OneTime).unwrap();
    store
        .issue_token(&OneTimeToken {
            token: link.digest(),
            user_id: ada.id.clone(),
            purpose: TokenPurpose::ChangeEmail,
            email: Some("thief@example.com".to_owned()),
            expires_at: Utc::now() + Duration::hours(1),
        })
        .await
        .unwrap();

    // Verified against a hash a reset has replaced since: nothing moves.
    assert!(
        !store
            .set_password_hash(&ada.id, "$stale$", "$new$", EndSessions::AllBut(&kept.id))
            .await
            .unwrap()
    );
    let stored = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, ada.password_hash);
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 2);
    assert_eq!(
        count(db, "SELECT count(*) AS n FROM one_time_tokens").await,
        1
    );

    assert!(
        store
            .set_password_hash(
                &ada.id,
                &ada.password_hash,
                "$new$",
                EndSessions::AllBut(&kept.id)
            )
            .await
            .unwrap()
    );
    let stored = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$new$");
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 1);
    assert_eq!(
        count(db, "SELECT count(*) AS n FROM one_time_tokens").await,
        0
    );
}

async fn a_link_for_a_session_is_issued_only_while_the_session_and_the_hash_are_the_users(
    db: &TestDb,
) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, _) = live_session(&ada);
    store.create_session(&session).await.unwrap();
    let link = |purpose| OneTimeToken {
        token: Token::generate(TokenKind::OneTime).unwrap().digest(),
        user_id: ada.id.clone(),
        purpose,
        email: Some("ada@new.example".to_owned()),
        expires_at: Utc::now() + Duration::hours(1),
    };
    for (session_id, hash) in [
        (session.id.as_str(), "$stale$"),
        ("ses_gone", ada.password_hash.as_str()),
        ("\0", ada.password_hash.as_str()),
    ] {
        assert!(
            !store
                .issue_token_for_session(&link(TokenPurpose::ChangeEmail), session_id, hash)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        count(db, "SELECT count(*) AS n FROM one_time_tokens").await,
        0
    );
    assert!(
        store
            .issue_token_for_session(
                &link(TokenPurpose::ChangeEmail),
                &session.id,
                &ada.password_hash
            )
            .await
            .unwrap()
    );
    assert_eq!(
        count(db, "SELECT count(*) AS n FROM one_time_tokens").await,
        1
    );
}

/// A reset in flight (its transaction has changed the hash, not yet committed) when a sign-in
/// that verified the old hash writes its session: the insert waits for it, then finds the hash
/// changed and writes nothing. Without the wait, the insert would see the old hash and the
/// reset's delete, already run, would miss the new session.
async fn a_session_insert_waits_for_a_password_change_in_flight_then_opens_nothing(db: &TestDb) {
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let mut reset = db.conn().await;
    exec(&mut reset, "BEGIN").await;
    exec(
        &mut reset,
        &format!(
            "UPDATE users SET password_hash = '$reset$' WHERE id = '{}'",
            ada.id
        ),
    )
    .await;
    exec(
        &mut reset,
        &format!("DELETE FROM sessions WHERE user_id = '{}'", ada.id),
    )
    .await;
    let sign_in = tokio::spawn({
        let (store, session, hash) = (
            store.clone(),
            live_session(&ada).0,
            ada.password_hash.clone(),
        );
        async move { store.create_session_verified(&session, &hash).await }
    });
    exec(&mut reset, "COMMIT").await;
    assert!(!sign_in.await.unwrap().unwrap());
    assert_eq!(count(db, "SELECT count(*) AS n FROM sessions").await, 0);
}

direct_and_pgbouncer! {
    user_round_trips_by_email,
    replacing_a_password_hash_needs_the_hash_it_replaces,
    a_session_opens_only_over_the_hash_its_sign_in_verified,
    a_password_change_needs_the_hash_it_verified_and_ends_every_link,
    a_link_for_a_session_is_issued_only_while_the_session_and_the_hash_are_the_users,
    a_session_insert_waits_for_a_password_change_in_flight_then_opens_nothing(
        flavor = "multi_thread",
        worker_threads = 2
    ),
    missing_email_is_none,
    duplicate_email_is_duplicate_email,
    duplicate_id_is_a_database_error_not_duplicate_email,
    session_round_trips_with_its_user,
    expired_access_token_is_none_but_refresh_still_works,
    delete_by_access_token_removes_the_session,
    delete_by_refresh_token_removes_the_session,
    refresh_replaces_both_tokens_and_expiries,
    expired_refresh_token_cannot_refresh,
    of_fifty_concurrent_refreshes_exactly_one_wins(flavor = "multi_thread", worker_threads = 4),
    cleanup_removes_dead_sessions_in_batches_and_keeps_refreshable_ones,
    cleanup_skips_rows_another_sweep_holds_instead_of_waiting,
    deleting_a_user_deletes_its_sessions,
    session_for_an_unknown_user_is_refused,
    user_with_session_is_written_together_or_not_at_all,
    nul_byte_or_overlong_value_is_refused_and_nothing_is_stored,
    every_statement_stays_prepared_on_its_connection,
}
