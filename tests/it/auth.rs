//! The engine over `PgStore`.

use authingo::{RequestContext, SignUp};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use authingo::password::Argon2Params;
use authingo::postgres::PoolConfig;
use authingo::{Auth, AuthError, ConfigError, InputReason, Options, Store as _};
use chrono::Duration;
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl as _;
use tokio::sync::Barrier;

use crate::support::{
    EngineBuilder, FAST, PASSWORD, TestDb, Watched, engine, live_session, rows, session, user,
};

/// A bcrypt hash, as the Go library stored them.
const BCRYPT: &str = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

#[tokio::test]
async fn full_flow_sign_up_session_refresh_sign_out() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;

    let signed_up = auth
        .sign_up(
            " Ada@Example.com ",
            PASSWORD,
            " Ada ",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    assert!(signed_up.user.id.starts_with("usr_"));
    assert!(signed_up.session.id.starts_with("ses_"));
    assert_eq!(signed_up.user.email, "ada@example.com");
    assert_eq!(signed_up.user.name, "Ada");
    let access = signed_up.tokens.access_token.expose().to_owned();
    let refresh = signed_up.tokens.refresh_token.expose().to_owned();
    let ttl = signed_up.tokens.access_expires_at - signed_up.session.created_at.unwrap();
    assert_eq!(ttl, Duration::minutes(15));
    let refresh_ttl = signed_up.tokens.refresh_expires_at - signed_up.session.created_at.unwrap();
    assert_eq!(refresh_ttl, Duration::days(30));

    let found = auth.get_session(&access).await.unwrap().unwrap();
    assert_eq!(found.user.id, signed_up.user.id);
    assert_eq!(found.session.id, signed_up.session.id);

    let refreshed = auth
        .refresh(&refresh, &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(refreshed.session.id, signed_up.session.id);
    assert_ne!(refreshed.tokens.access_token.expose(), access);
    assert_ne!(refreshed.tokens.refresh_token.expose(), refresh);
    // The old access token is dead; the old refresh token, replayed within the grace window,
    // gets the very pair its rotation issued (tests/it/rotation.rs pins the rest).
    assert!(auth.get_session(&access).await.unwrap().is_none());
    let replayed = auth
        .refresh(&refresh, &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(replayed.tokens.access_token, refreshed.tokens.access_token);
    assert_eq!(
        replayed.tokens.refresh_token,
        refreshed.tokens.refresh_token
    );
    let new_access = refreshed.tokens.access_token.expose();
    assert!(auth.get_session(new_access).await.unwrap().is_some());

    assert!(auth.sign_out(new_access).await.unwrap());
    assert!(auth.get_session(new_access).await.unwrap().is_none());
    assert!(!auth.sign_out(new_access).await.unwrap());

    // Again, signing out with the refresh token this time.
    let signed_in = auth
        .sign_in("ADA@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(signed_in.user.id, signed_up.user.id);
    let access = signed_in.tokens.access_token.expose();
    assert!(auth.get_session(access).await.unwrap().is_some());
    assert!(
        auth.sign_out(signed_in.tokens.refresh_token.expose())
            .await
            .unwrap()
    );
    assert!(auth.get_session(access).await.unwrap().is_none());
    assert!(matches!(
        auth.refresh(
            signed_in.tokens.refresh_token.expose(),
            &RequestContext::default()
        )
        .await,
        Err(AuthError::InvalidSession)
    ));
    assert_eq!(rows(&db, "sessions").await, 0);
}

#[tokio::test]
async fn mixed_case_duplicate_email_is_email_taken() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    let err = auth
        .sign_up(
            "ADA@Example.COM",
            PASSWORD,
            "Other Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap_err();
    assert!(matches!(err, AuthError::EmailTaken), "{err:?}");
    assert_eq!(rows(&db, "users").await, 1);
    assert_eq!(rows(&db, "sessions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_sign_ups_with_one_email_one_succeeds() {
    const CALLERS: usize = 20;
    let db = TestDb::new().await;
    let auth = EngineBuilder::on(
        db.store_with(PoolConfig::default().max_size(CALLERS as u32))
            .await,
    )
    .build();
    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (auth, barrier) = (auth.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                auth.sign_up(
                    "race@example.com",
                    PASSWORD,
                    &format!("Racer {i}"),
                    &RequestContext::default(),
                )
                .await
                .and_then(SignUp::signed_in)
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(AuthError::EmailTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(rows(&db, "users").await, 1);
    assert_eq!(rows(&db, "sessions").await, 1);
}

#[tokio::test]
async fn every_failed_sign_in_costs_exactly_one_argon2_operation_and_says_the_same() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .ready()
        .await;
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    let mut go_user = user("go@example.com");
    go_user.password_hash = BCRYPT.to_owned();
    auth.store().create_user(&go_user).await.unwrap();
    assert_eq!(hasher.count(&hasher.verifies), 0);

    let attempts = [
        ("ada@example.com", "not the password"), // a wrong password
        ("nobody@example.com", PASSWORD),        // unknown: the dummy hash is verified
        ("nobody-else@example.com", PASSWORD),   // and again
        ("go@example.com", PASSWORD),            // a hash the hasher cannot read
    ];
    let mut messages = HashSet::new();
    for (email, password) in attempts {
        let before = hasher.count(&hasher.work);
        let err = auth
            .sign_in(email, password, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidCredentials),
            "{email}: {err:?}"
        );
        assert_eq!(hasher.count(&hasher.work), before + 1, "{email}");
        messages.insert(err.to_string());
    }
    assert_eq!(messages.len(), 1);
    // The dummy hash was made once, at start: one hash for it, one at sign-up.
    assert_eq!(hasher.count(&hasher.hashes), 2);
    assert_eq!(rows(&db, "sessions").await, 1);
}

#[tokio::test]
async fn raw_tokens_are_nowhere_in_the_database() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let second = auth
        .refresh(
            first.tokens.refresh_token.expose(),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    let third = auth
        .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();

    #[derive(QueryableByName)]
    struct Dump {
        #[diesel(sql_type = Text)]
        text: String,
    }
    let dump = diesel::sql_query(
        "SELECT coalesce(string_agg(s::text, ' '), '') || ' ' || \
                (SELECT string_agg(u::text, ' ') FROM users u) AS text FROM sessions s",
    )
    .get_result::<Dump>(&mut db.conn().await)
    .await
    .unwrap()
    .text;
    assert!(dump.contains(&second.session.id), "the dump has the rows");
    for issued in [&first.tokens, &second.tokens, &third.tokens] {
        for token in [&issued.access_token, &issued.refresh_token] {
            assert!(!dump.contains(token.expose()));
        }
    }
    // What is stored instead: the digests of the live tokens (the first pair was rotated away).
    for issued in [&second.tokens, &third.tokens] {
        assert!(dump.contains(issued.access_token.digest().as_str()));
        assert!(dump.contains(issued.refresh_token.digest().as_str()));
    }
    assert!(!dump.contains(PASSWORD));
}

#[tokio::test]
async fn every_input_rule_is_refused_before_anything_is_stored() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .ready()
        .await;
    let dummy = hasher.count(&hasher.hashes);
    let long_email = format!("{}@x.io", "a".repeat(251));
    let long_name = "n".repeat(256);
    let long_password = "p".repeat(1025);
    let cases: &[(&str, &str, &str, &str, InputReason)] = &[
        ("", PASSWORD, "Ada", "email", InputReason::Empty),
        ("  ", PASSWORD, "Ada", "email", InputReason::Empty),
        (
            "ada.example.com",
            PASSWORD,
            "Ada",
            "email",
            InputReason::NotAnEmail,
        ),
        (
            "@example.com",
            PASSWORD,
            "Ada",
            "email",
            InputReason::NotAnEmail,
        ),
        ("ada@", PASSWORD, "Ada", "email", InputReason::NotAnEmail),
        (
            "a@b@example.com",
            PASSWORD,
            "Ada",
            "email",
            InputReason::NotAnEmail,
        ),
        (
            "a da@example.com",
            PASSWORD,
            "Ada",
            "email",
            InputReason::Whitespace,
        ),
        (
            "ada\u{7}@example.com",
            PASSWORD,
            "Ada",
            "email",
            InputReason::ControlCharacter,
        ),
        (
            "ada\0@example.com",
            PASSWORD,
            "Ada",
            "email",
            InputReason::NulByte,
        ),
        (
            &long_email,
            PASSWORD,
            "Ada",
            "email",
            InputReason::TooLong {
                max: 255,
                unit: "characters",
            },
        ),
        (
            "ada@example.com",
            "short",
            "Ada",
            "password",
            InputReason::TooShort { min: 8 },
        ),
        ("ada@example.com", "", "Ada", "password", InputReason::Empty),
        (
            "ada@example.com",
            "pass\0word!",
            "Ada",
            "password",
            InputReason::NulByte,
        ),
        (
            "ada@example.com",
            &long_password,
            "Ada",
            "password",
            InputReason::TooLong {
                max: 1024,
                unit: "bytes",
            },
        ),
        (
            "ada@example.com",
            PASSWORD,
            "  ",
            "name",
            InputReason::Empty,
        ),
        (
            "ada@example.com",
            PASSWORD,
            "A\0da",
            "name",
            InputReason::NulByte,
        ),
        (
            "ada@example.com",
            PASSWORD,
            "A\nda",
            "name",
            InputReason::ControlCharacter,
        ),
        (
            "ada@example.com",
            PASSWORD,
            &long_name,
            "name",
            InputReason::TooLong {
                max: 255,
                unit: "characters",
            },
        ),
    ];
    for (email, password, name, field, reason) in cases {
        match auth
            .sign_up(email, password, name, &RequestContext::default())
            .await
            .and_then(SignUp::signed_in)
        {
            Err(AuthError::InvalidInput {
                field: got_field,
                reason: got_reason,
            }) => {
                assert_eq!(
                    (got_field, got_reason),
                    (*field, *reason),
                    "{email:?} {name:?}"
                );
            }
            other => panic!("{email:?} {name:?}: expected invalid {field}, got {other:?}"),
        }
    }
    // Sign-in applies the email rules and the password's upper bound too.
    assert!(matches!(
        auth.sign_in("ada.example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidInput { field: "email", .. })
    ));
    assert!(matches!(
        auth.sign_in(
            "ada@example.com",
            &long_password,
            &RequestContext::default()
        )
        .await
        .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidInput {
            field: "password",
            ..
        })
    ));
    assert_eq!(rows(&db, "users").await, 0);
    assert_eq!(rows(&db, "sessions").await, 0);
    assert_eq!(dummy, 1, "the dummy hash, made at start");
    assert_eq!(hasher.count(&hasher.hashes), dummy);
    assert_eq!(hasher.count(&hasher.verifies), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_failing_sign_ins_after_a_start_each_verify_once() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .build();
    // Straight after the start, before the dummy hash may exist: callers that wait for it must
    // still verify against it, or an unknown email answers faster than a wrong password.
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut sign_ins = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (auth, barrier) = (auth.clone(), barrier.clone());
        sign_ins.spawn(async move {
            barrier.wait().await;
            auth.sign_in(
                &format!("nobody{i}@example.com"),
                PASSWORD,
                &RequestContext::default(),
            )
            .await
            .and_then(authingo::SignIn::signed_in)
        });
    }
    while let Some(result) = sign_ins.join_next().await {
        assert!(matches!(
            result.unwrap(),
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert_eq!(hasher.count(&hasher.verifies), 8);
    assert_eq!(hasher.count(&hasher.hashes), 1, "one dummy hash");
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_a_lookup() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let signed_up = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    for garbage in ["", "x", "not a token at all", &"a".repeat(10_000), "\0"] {
        assert!(auth.get_session(garbage).await.unwrap().is_none());
        assert!(matches!(
            auth.refresh(garbage, &RequestContext::default()).await,
            Err(AuthError::InvalidSession)
        ));
        assert!(!auth.sign_out(garbage).await.unwrap());
    }
    // An access token is not a refresh token, nor the reverse.
    let tokens = &signed_up.tokens;
    assert!(matches!(
        auth.refresh(tokens.access_token.expose(), &RequestContext::default())
            .await,
        Err(AuthError::InvalidSession)
    ));
    assert!(
        auth.get_session(tokens.refresh_token.expose())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn hashing_runs_on_its_own_threads_at_most_max_concurrent_hashes_at_once() {
    let db = TestDb::new().await;
    // Real parameters, so that hashes overlap in time when they can.
    let hasher = Watched::new(Argon2Params::default());
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .with(|options| options.max_concurrent_hashes(2))
        .ready()
        .await;
    // The only async thread of this current-thread runtime is this one.
    let here = std::thread::current().id();
    let mut sign_ups = tokio::task::JoinSet::new();
    for i in 0..6 {
        let auth = auth.clone();
        sign_ups.spawn(async move {
            auth.sign_up(
                &format!("user{i}@example.com"),
                PASSWORD,
                "U",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
        });
    }
    while let Some(result) = sign_ups.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(
        hasher.count(&hasher.hashes),
        1 + 6,
        "the dummy and six sign-ups"
    );
    assert!(hasher.count(&hasher.most_at_once) <= 2);
    assert!(!hasher.threads.lock().unwrap().contains(&here));
}

#[tokio::test]
async fn exhausted_store_is_unavailable_not_a_bad_credential() {
    let db = TestDb::new().await;
    let store = db.one_connection_store().await;
    let auth = EngineBuilder::on(store.clone()).build();
    let signed_up = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let held = store.pool().get().await.unwrap();
    let access = signed_up.tokens.access_token.expose();
    assert!(matches!(
        auth.get_session(access).await,
        Err(AuthError::Unavailable(_))
    ));
    assert!(matches!(
        auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::Unavailable(_))
    ));
    assert!(matches!(
        auth.refresh(
            signed_up.tokens.refresh_token.expose(),
            &RequestContext::default()
        )
        .await,
        Err(AuthError::Unavailable(_))
    ));
    drop(held);
    assert!(auth.get_session(access).await.unwrap().is_some());
}

#[tokio::test]
async fn inconsistent_options_are_refused() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let err = Auth::new(
        Options::new(store.clone())
            .access_ttl(StdDuration::from_secs(3600))
            .refresh_ttl(StdDuration::from_secs(60)),
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::RefreshShorterThanAccess { .. }),
        "{err:?}"
    );
    assert!(matches!(
        Auth::new(Options::new(store.clone()).access_ttl(StdDuration::ZERO)),
        Err(ConfigError::Duration("access_ttl"))
    ));
    assert!(matches!(
        Auth::new(Options::new(store.clone()).max_concurrent_hashes(0)),
        Err(ConfigError::Bounds(_))
    ));
    for refused in [
        Options::new(store.clone()).refresh_reuse_grace(StdDuration::from_secs(2 * 3600)),
        Options::new(store.clone()).max_sessions_per_user(Some(0)),
        Options::new(store.clone()).fresh_age(StdDuration::ZERO),
        Options::new(store.clone()).reset_token_ttl(StdDuration::ZERO),
        Options::new(store.clone()).cleanup_pace(authingo::CleanupPace {
            pause_ratio: -1.0,
            ..Default::default()
        }),
        Options::new(store.clone()).cleanup_pace(authingo::CleanupPace {
            pause_ratio: f64::NAN,
            ..Default::default()
        }),
        Options::new(store.clone()).cleanup_pace(authingo::CleanupPace {
            batch_size: 0,
            ..Default::default()
        }),
    ] {
        let options = format!("{refused:?}");
        assert!(
            matches!(
                Auth::new(refused),
                Err(ConfigError::Bounds(_) | ConfigError::Duration(_))
            ),
            "{options}"
        );
    }
    assert!(matches!(
        Auth::new(Options::new(store).argon2(Argon2Params {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1
        })),
        Err(ConfigError::Argon2(_))
    ));
}

#[test]
fn cleanup_loop_needs_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (db, store) = runtime.block_on(async {
        let db = TestDb::new().await;
        let store = db.store().await;
        (db, store)
    });
    // Here, outside the runtime:
    let err = Auth::new(Options::new(store.clone())).unwrap_err();
    assert!(matches!(err, ConfigError::NoRuntime), "{err:?}");
    // Without the loop, no runtime is needed to build it.
    let auth = Auth::new(Options::new(store).cleanup_interval(None)).unwrap();
    runtime.block_on(async move { drop(auth) });
    drop(db);
}

/// Waits until `condition` holds, polling; fails after `deadline`.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, deadline: StdDuration, mut condition: F) {
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn cleanup_loop_removes_dead_sessions_keeps_live_ones_and_stops_on_shutdown() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    for _ in 0..5 {
        let (dead, _) = session(&ada, Duration::days(-2), Duration::days(-1));
        store.create_session(&dead).await.unwrap();
    }
    let (idle, _) = session(&ada, Duration::minutes(-20), Duration::days(29));
    store.create_session(&idle).await.unwrap();
    let (live, _) = live_session(&ada);
    store.create_session(&live).await.unwrap();

    let auth = EngineBuilder::on(store.clone())
        .with(|options| {
            options
                .cleanup_interval(Some(StdDuration::from_millis(20)))
                .cleanup_first_delay(StdDuration::from_millis(20))
        })
        .build();
    assert!(auth.is_cleanup_running());
    eventually("the first sweep", StdDuration::from_secs(20), async || {
        rows(&db, "sessions").await == 2
    })
    .await;

    // Sessions that die later are swept by a later round.
    let (dead, _) = session(&ada, Duration::days(-2), Duration::days(-1));
    store.create_session(&dead).await.unwrap();
    let sweeps = auth.cleanup_sweeps();
    eventually("a later sweep", StdDuration::from_secs(20), async || {
        auth.cleanup_sweeps() > sweeps + 1 && rows(&db, "sessions").await == 2
    })
    .await;

    auth.shutdown().await;
    assert!(!auth.is_cleanup_running());
    let after = auth.cleanup_sweeps();
    // The engine still works after the loop stopped; shutting down twice is harmless.
    auth.sign_up(
        "bob@example.com",
        PASSWORD,
        "Bob",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    auth.shutdown().await;
    assert_eq!(auth.cleanup_sweeps(), after);
}

#[tokio::test]
async fn cleanup_loop_ends_when_the_last_handle_is_dropped() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let auth = EngineBuilder::on(store)
        .with(|options| {
            options
                .cleanup_interval(Some(StdDuration::from_secs(3600)))
                .cleanup_first_delay(StdDuration::ZERO)
        })
        .build();
    let clone = auth.clone();
    eventually("the first sweep", StdDuration::from_secs(20), async || {
        auth.cleanup_sweeps() == 1
    })
    .await;
    drop(auth);
    // The loop holds a clone of the store; it lets go when the task ends.
    let store = clone.store().clone();
    drop(clone);
    eventually("the loop to end", StdDuration::from_secs(20), async || {
        Arc::strong_count(&store) == 1
    })
    .await;
}
