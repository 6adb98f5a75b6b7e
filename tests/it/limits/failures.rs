//! Failed sign-ins per email: back-off, the lock, a success or a day resetting the count, unknown
//! emails counted alike, concurrent attempts reserved one at a time, and the cleanup.

use super::*;
use crate::support::{
    EngineBuilder, FAST, PASSWORD, TestDb, Watched, count, exec, rows, sign_in_failures,
};
use authingo::{RequestContext, SignUp};

/// Moves the last failure of `email` back by `secs` seconds.
async fn age_failures(db: &TestDb, email: &str, secs: f64) {
    let digest = EmailDigest::of(email);
    exec(
        &mut db.conn().await,
        &format!(
            "UPDATE sign_in_failures SET last_failed_at = last_failed_at - {secs} * interval '1 second' \
             WHERE email_digest = '{}'",
            digest.as_str()
        ),
    )
    .await;
}

#[tokio::test]
async fn failures_back_off_exponentially_without_argon2_and_a_success_resets_the_count() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    // The default sign-in throttle alone.
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(None)
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
    for _ in 0..5 {
        assert!(matches!(
            auth.sign_in(
                "ada@example.com",
                "wrong password",
                &RequestContext::default()
            )
            .await
            .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // 1 s, 2 s, 4 s, 8 s after the last failure: each refusal runs no argon2 at all, even with
    // the right password.
    for expected in [1, 2, 4, 8] {
        let work = hasher.count(&hasher.work);
        let wait = retry_after(
            auth.sign_in("ADA@example.com", PASSWORD, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
        );
        assert_eq!(
            hasher.count(&hasher.work),
            work,
            "a throttled sign-in hashed"
        );
        let expected = StdDuration::from_secs(expected);
        assert!(
            wait <= expected && wait > expected - StdDuration::from_millis(900),
            "{wait:?} for {expected:?}"
        );
        age_failures(&db, "ada@example.com", expected.as_secs_f64()).await;
        assert!(matches!(
            auth.sign_in(
                "ada@example.com",
                "wrong password",
                &RequestContext::default()
            )
            .await
            .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
        assert_eq!(hasher.count(&hasher.work), work + 1);
    }
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 9);
    // Capped at 15 minutes.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 60, last_failed_at = now()",
    )
    .await;
    let wait = retry_after(
        auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
    );
    assert!(wait <= StdDuration::from_secs(900) && wait > StdDuration::from_secs(890));
    // Past the delay, the right password signs in and clears the count: five free failures again.
    age_failures(&db, "ada@example.com", 900.0).await;
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(rows(&db, "sign_in_failures").await, 0);
    for _ in 0..5 {
        assert!(matches!(
            auth.sign_in(
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
        auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
    );
}

#[tokio::test]
async fn the_hundredth_failure_locks_for_a_day_or_until_unlocked() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    // The default sign-in throttle alone.
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(None)
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
    assert!(matches!(
        auth.sign_in(
            "ada@example.com",
            "wrong password",
            &RequestContext::default()
        )
        .await
        .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    // 99 consecutive failures, the last an hour ago: the hundredth is still checked...
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 99, last_failed_at = now() - interval '1 hour'",
    )
    .await;
    assert!(matches!(
        auth.sign_in(
            "ada@example.com",
            "wrong password",
            &RequestContext::default()
        )
        .await
        .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 100);
    // ...and then nothing is, for the lock's day (its end is the device tests'), and the cleanup
    // keeps the lock.
    age_failures(&db, "ada@example.com", 23.0 * 3600.0).await;
    assert_eq!(
        auth.store()
            .clone()
            .abuse_counters()
            .unwrap()
            .cleanup_rate_limits()
            .await
            .unwrap(),
        0
    );
    let work = hasher.count(&hasher.work);
    for password in [PASSWORD, "wrong password"] {
        assert!(matches!(
            auth.sign_in("ada@example.com", password, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::AccountLocked)
        ));
    }
    assert_eq!(hasher.count(&hasher.work), work);
    assert!(auth.unlock_account(" Ada@Example.com ").await.unwrap());
    assert!(!auth.unlock_account("ada@example.com").await.unwrap());
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn unknown_and_existing_emails_are_throttled_identically() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    // The default sign-in throttle alone.
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(None)
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
    let mut seen = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let mut outcomes = Vec::new();
        let work = hasher.count(&hasher.work);
        for _ in 0..7 {
            outcomes.push(
                match auth
                    .sign_in(email, "wrong password", &RequestContext::default())
                    .await
                    .and_then(authingo::SignIn::signed_in)
                {
                    Err(AuthError::InvalidCredentials) => "invalid".to_owned(),
                    Err(AuthError::TooManyRequests { retry_after }) => {
                        format!("throttled {}", retry_after.as_secs_f64().ceil())
                    }
                    other => panic!("{email}: {other:?}"),
                },
            );
        }
        seen.push((outcomes, hasher.count(&hasher.work) - work));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].1, 5, "five verifications, then none");
    assert_eq!(sign_in_failures(&db, "nobody@example.com").await, 5);
    // The table holds digests, never an address.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM sign_in_failures WHERE email_digest LIKE '%@%'"
        )
        .await,
        0
    );
    // Locked alike.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 100, forget_at = NULL",
    )
    .await;
    for email in ["ada@example.com", "nobody@example.com"] {
        assert!(matches!(
            auth.sign_in(email, PASSWORD, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::AccountLocked)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_attempts_past_the_free_failures_one_checks_a_password() {
    const CALLERS: usize = 12;
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::on(
        db.store_with(PoolConfig::default().max_size(CALLERS as u32))
            .await,
    )
    .hasher(hasher.clone())
    .rate_limits(None)
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
    assert!(matches!(
        auth.sign_in(
            "ada@example.com",
            "wrong password",
            &RequestContext::default()
        )
        .await
        .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 5, last_failed_at = now() - interval '1 hour'",
    )
    .await;
    let work = hasher.count(&hasher.work);
    let barrier = Arc::new(Barrier::new(CALLERS));
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (auth, barrier) = (auth.clone(), barrier.clone());
        attempts.spawn(async move {
            barrier.wait().await;
            auth.sign_in(
                "ada@example.com",
                "wrong password",
                &RequestContext::default(),
            )
            .await
            .and_then(authingo::SignIn::signed_in)
        });
    }
    let (mut checked, mut throttled) = (0, 0);
    while let Some(result) = attempts.join_next().await {
        match result.unwrap() {
            Err(AuthError::InvalidCredentials) => checked += 1,
            Err(AuthError::TooManyRequests { .. }) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((checked, throttled), (1, CALLERS - 1));
    assert_eq!(hasher.count(&hasher.work), work + 1);
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 6);
}

#[tokio::test]
async fn a_day_without_failure_forgets_the_count_and_the_cleanup_removes_old_counters() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(sign_ins(30)))
        .sign_in_throttle(Some(SignInThrottle::default()))
        .build();
    for email in [
        "old@example.com",
        "recent@example.com",
        "locked@example.com",
    ] {
        for _ in 0..5 {
            assert!(matches!(
                auth.sign_in(email, "wrong password", &from("203.0.113.7"))
                    .await
                    .and_then(authingo::SignIn::signed_in),
                Err(AuthError::InvalidCredentials)
            ));
        }
    }
    auth.check_rate_limit(LimitedRoute::SignIn, ip("198.51.100.1"))
        .await
        .unwrap();
    let digest = |email: &str| EmailDigest::of(email).as_str().to_owned();
    let mut conn = db.conn().await;
    exec(
        &mut conn,
        &format!(
            "UPDATE sign_in_failures SET last_failed_at = now() - interval '25 hours', \
             forget_at = now() - interval '1 hour' WHERE email_digest = '{}'",
            digest("old@example.com")
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "UPDATE sign_in_failures SET failures = 100, forget_at = now() + interval '1 hour', \
             last_failed_at = now() - interval '23 hours' WHERE email_digest = '{}'",
            digest("locked@example.com")
        ),
    )
    .await;
    exec(
        &mut conn,
        "UPDATE rate_limits SET window_ends_at = now() - interval '1 second' \
         WHERE key = 'sign-in:ip:198.51.100.1'",
    )
    .await;
    // Forgotten: five free failures again, even before the sweep.
    assert!(matches!(
        auth.sign_in(
            "old@example.com",
            "wrong password",
            &RequestContext::default()
        )
        .await
        .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(sign_in_failures(&db, "old@example.com").await, 1);
    exec(
        &mut conn,
        &format!(
            "UPDATE sign_in_failures SET forget_at = now() - interval '1 hour' \
             WHERE email_digest = '{}'",
            digest("old@example.com")
        ),
    )
    .await;
    // The loop's sweep removes the ended window and the forgotten count, and keeps the rest.
    let sweeping = EngineBuilder::over(&db)
        .await
        .rate_limits(None)
        .sign_in_throttle(None)
        .with(|options| {
            options
                .cleanup_interval(Some(StdDuration::from_secs(3600)))
                .cleanup_first_delay(StdDuration::ZERO)
        })
        .build();
    for _ in 0..2000 {
        if sweeping.cleanup_sweeps() > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(sweeping.cleanup_sweeps(), 1);
    assert_eq!(rows(&db, "rate_limits").await, 1, "the live window stays");
    assert_eq!(rows(&db, "sign_in_failures").await, 2);
    assert_eq!(sign_in_failures(&db, "old@example.com").await, 0);
    assert_eq!(sign_in_failures(&db, "locked@example.com").await, 100);
    assert_eq!(sign_in_failures(&db, "recent@example.com").await, 5);
}
