//! Rate limits: the request past the limit refused until its window ends, counts shared by
//! engines and exact under concurrency, mails per email and per address, one option to turn them
//! off, and one statement per check.

use super::*;
use crate::support::{EngineBuilder, PASSWORD, TestDb, count, counted_store, exec, rows};
use authingo::{RequestContext, SignUp};

#[tokio::test]
async fn the_request_past_the_limit_is_refused_until_the_window_ends() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(sign_ins(3)))
        .sign_in_throttle(None)
        .build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    for _ in 0..3 {
        auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap();
    }
    let refused = auth
        .sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
        .and_then(authingo::SignIn::signed_in);
    let wait = retry_after(refused);
    assert!(wait <= FIVE_MINUTES && wait > FIVE_MINUTES - StdDuration::from_secs(60));
    // Another address has its own count; a wrong password counts as much as a right one.
    assert!(matches!(
        auth.sign_in("ada@example.com", "wrong password", &from("198.51.100.1"))
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    // The window ended (written in the past): counted from one again.
    exec(
        &mut db.conn().await,
        "UPDATE rate_limits SET window_ends_at = now() - interval '1 second'",
    )
    .await;
    auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT hits::bigint AS n FROM rate_limits WHERE key = 'sign-in:ip:203.0.113.7'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn two_engines_on_one_database_share_the_counts() {
    let db = TestDb::new().await;
    let first = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(sign_ins(4)))
        .sign_in_throttle(None)
        .build();
    let second = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(sign_ins(4)))
        .sign_in_throttle(Some(SignInThrottle::default()))
        .build();
    first
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    for auth in [&first, &second, &first, &second] {
        auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap();
    }
    for auth in [&first, &second] {
        retry_after(
            auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
                .await
                .and_then(authingo::SignIn::signed_in),
        );
    }
    // Failures too: five on one engine, the sixth on the other waits.
    let third = EngineBuilder::over(&db)
        .await
        .rate_limits(None)
        .sign_in_throttle(Some(SignInThrottle::default()))
        .build();
    for _ in 0..5 {
        assert!(matches!(
            second
                .sign_in(
                    "ada@example.com",
                    "wrong password",
                    &RequestContext::default()
                )
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    retry_after(
        third
            .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_requests_exactly_the_limit_go_through() {
    const CALLERS: usize = 20;
    let db = TestDb::new().await;
    let auth = EngineBuilder::on(
        db.store_with(PoolConfig::default().max_size(CALLERS as u32))
            .await,
    )
    .rate_limits(Some(sign_ins(5)))
    .build();
    let barrier = Arc::new(Barrier::new(CALLERS));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (auth, barrier) = (auth.clone(), barrier.clone());
        calls.spawn(async move {
            barrier.wait().await;
            auth.check_rate_limit(LimitedRoute::SignIn, ip("203.0.113.7"))
                .await
        });
    }
    let mut allowed = 0;
    while let Some(result) = calls.join_next().await {
        match result.unwrap() {
            Ok(()) => allowed += 1,
            Err(AuthError::TooManyRequests { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(allowed, 5);
}

#[tokio::test]
async fn mails_are_limited_per_target_email_and_per_address() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(RateLimits::default()))
        .sign_in_throttle(None)
        .build();
    for _ in 0..2 {
        auth.check_mail_rate_limit("ada@example.com", None)
            .await
            .unwrap();
    }
    // The same address however it is typed; whether it has an account does not matter.
    let wait = retry_after(auth.check_mail_rate_limit(" ADA@example.com", None).await);
    assert!(wait > StdDuration::from_secs(3500));
    for n in 0..10 {
        auth.check_mail_rate_limit(&format!("user{n}@example.com"), Some(ip("203.0.113.7")))
            .await
            .unwrap();
    }
    retry_after(
        auth.check_mail_rate_limit("someone@example.com", Some(ip("203.0.113.7")))
            .await,
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM rate_limits WHERE key LIKE '%@%'"
        )
        .await,
        0,
        "emails are keyed by digest"
    );
}

#[tokio::test]
async fn rate_limits_turn_off_with_one_option() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(None)
        .sign_in_throttle(None)
        .build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    for _ in 0..40 {
        auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap();
    }
    assert_eq!(rows(&db, "rate_limits").await, 0);
}

#[tokio::test]
async fn impossible_limits_are_refused() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let zero = RateLimits::default().sign_in(Some(RateLimit::new(0, FIVE_MINUTES)));
    let slow =
        SignInThrottle::default().delays(StdDuration::from_secs(10), StdDuration::from_secs(1));
    let never = SignInThrottle::default().lock_after(Some(0));
    for options in [
        Options::new(store.clone()).rate_limits(Some(zero)),
        Options::new(store.clone()).sign_in_throttle(Some(slow)),
        Options::new(store.clone()).sign_in_throttle(Some(never)),
    ] {
        assert!(matches!(
            Auth::new(options.cleanup_interval(None)),
            Err(ConfigError::Bounds(_))
        ));
    }
}

#[tokio::test]
async fn each_check_is_one_statement() {
    let db = TestDb::new().await;
    let (store, statements) = counted_store(&db).await;
    let auth = EngineBuilder::on(store)
        .sign_in_throttle(Some(SignInThrottle::default()))
        .build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    let sent = || statements.total();
    let before = sent();
    auth.check_rate_limit(LimitedRoute::Refresh, ip("203.0.113.7"))
        .await
        .unwrap();
    assert_eq!(sent() - before, 1, "a rate-limit check");
    let before = sent();
    assert!(matches!(
        auth.sign_in("ada@example.com", "wrong password", &from("203.0.113.7"))
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    // The address's count, the email's attempt, the user.
    assert_eq!(sent() - before, 3, "a failed sign-in");
    let before = sent();
    auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    // The same three, the second factor's lookup (every sign-in asks whether the account has
    // one), the count cleared, the session inserted.
    assert_eq!(sent() - before, 6, "a sign-in");
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    synchronous_commit: String,
}

#[tokio::test]
async fn the_counters_asynchronous_commit_stays_with_their_own_statements() {
    let db = TestDb::new().await;
    let store = db.one_connection_store().await;
    let auth = EngineBuilder::on(store.clone())
        .sign_in_throttle(Some(SignInThrottle::default()))
        .build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    assert!(matches!(
        auth.sign_in("ada@example.com", "wrong password", &from("203.0.113.7"))
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    auth.sign_in("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    // The one connection that ran every counter statement still commits synchronously, so the
    // sessions it inserts next are durable when they are answered.
    let mut conn = store.pool().get().await.unwrap();
    let setting = diesel_async::RunQueryDsl::get_result::<Setting>(
        diesel::sql_query("SHOW synchronous_commit"),
        &mut *conn,
    )
    .await
    .unwrap();
    assert_eq!(setting.synchronous_commit, "on");
}
