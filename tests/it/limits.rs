//! Abuse limits on the real database: rate limits shared by every instance, failed sign-ins per
//! email (back-off, the lock, a success resetting the count), the bounded hashing queue and
//! common passwords. Expiry and back-off are moved with rows written in the past, never by
//! sleeping; races start together behind a `Barrier`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration as StdDuration;

use authingo::auth::SessionRequest;
use authingo::limits::{EmailDigest, LimitedRoute, RateLimit, RateLimits, SignInThrottle};
use authingo::password::{Argon2id, PasswordError, PasswordHasher};
use authingo::postgres::PoolConfig;
use authingo::{Auth, AuthError, ConfigError, InputReason, Options};
use tokio::sync::Barrier;

use crate::auth::Watched;
use crate::db::{TestDb, exec};
use crate::fixtures::{FAST, PASSWORD, count, rows};
use crate::sessions::counted_store;

const FIVE_MINUTES: StdDuration = StdDuration::from_secs(300);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn from(client: &str) -> SessionRequest {
    SessionRequest::default().ip_address(Some(ip(client)))
}

/// Options over `db` with fast hashing, no cleanup loop, the given rate limits and no throttle.
async fn options(db: &TestDb, limits: Option<RateLimits>) -> Options {
    Options::new(db.store().await)
        .argon2(FAST)
        .cleanup_interval(None)
        .rate_limits(limits)
        .sign_in_throttle(None)
}

/// Sign-ins limited to `max` per five minutes per address, the other limits off.
fn sign_ins(max: u32) -> RateLimits {
    RateLimits::default()
        .sign_in(Some(RateLimit::new(max, FIVE_MINUTES)))
        .sign_up(None)
        .refresh(None)
}

fn retry_after(result: Result<impl std::fmt::Debug, AuthError>) -> StdDuration {
    match result {
        Err(AuthError::TooManyRequests { retry_after }) => retry_after,
        other => panic!("expected too many requests, got {other:?}"),
    }
}

#[tokio::test]
async fn the_request_past_the_limit_is_refused_until_the_window_ends() {
    let db = TestDb::new().await;
    let auth = Auth::new(options(&db, Some(sign_ins(3))).await).unwrap();
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    for _ in 0..3 {
        auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
            .await
            .unwrap();
    }
    let refused = auth
        .sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await;
    let wait = retry_after(refused);
    assert!(wait <= FIVE_MINUTES && wait > FIVE_MINUTES - StdDuration::from_secs(60));
    // Another address has its own count; a wrong password counts as much as a right one.
    assert!(matches!(
        auth.sign_in_with("ada@example.com", "wrong password", &from("198.51.100.1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    // The window ended (written in the past): counted from one again.
    exec(
        &mut db.conn().await,
        "UPDATE rate_limits SET window_ends_at = now() - interval '1 second'",
    )
    .await;
    auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
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
    let first = Auth::new(options(&db, Some(sign_ins(4))).await).unwrap();
    let second = Auth::new(
        options(&db, Some(sign_ins(4)))
            .await
            .sign_in_throttle(Some(SignInThrottle::default())),
    )
    .unwrap();
    first
        .sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    for auth in [&first, &second, &first, &second] {
        auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
            .await
            .unwrap();
    }
    for auth in [&first, &second] {
        retry_after(
            auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
                .await,
        );
    }
    // Failures too: five on one engine, the sixth on the other waits.
    let third = Auth::new(
        options(&db, None)
            .await
            .sign_in_throttle(Some(SignInThrottle::default())),
    )
    .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            second.sign_in("ada@example.com", "wrong password").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    retry_after(third.sign_in("ada@example.com", PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_requests_exactly_the_limit_go_through() {
    const CALLERS: usize = 20;
    let db = TestDb::new().await;
    let auth = Auth::new(
        Options::new(
            db.store_with(PoolConfig::default().max_size(CALLERS as u32))
                .await,
        )
        .argon2(FAST)
        .cleanup_interval(None)
        .rate_limits(Some(sign_ins(5))),
    )
    .unwrap();
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

/// An engine over `db` with the default sign-in throttle, no rate limits, and `hasher`.
async fn throttled(db: &TestDb, hasher: Arc<Watched>) -> Auth {
    let auth = Auth::new(
        Options::new(db.store().await)
            .password_hasher(hasher)
            .cleanup_interval(None)
            .rate_limits(None),
    )
    .unwrap();
    auth.ready().await.unwrap();
    auth
}

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

async fn failures(db: &TestDb, email: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT coalesce((SELECT failures::bigint FROM sign_in_failures \
             WHERE email_digest = '{}'), 0) AS n",
            EmailDigest::of(email).as_str()
        ),
    )
    .await
}

#[tokio::test]
async fn failures_back_off_exponentially_without_argon2_and_a_success_resets_the_count() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = throttled(&db, hasher.clone()).await;
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            auth.sign_in("ada@example.com", "wrong password").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    // 1 s, 2 s, 4 s, 8 s after the last failure: each refusal runs no argon2 at all, even with
    // the right password.
    for expected in [1, 2, 4, 8] {
        let work = hasher.count(&hasher.work);
        let wait = retry_after(auth.sign_in("ADA@example.com", PASSWORD).await);
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
            auth.sign_in("ada@example.com", "wrong password").await,
            Err(AuthError::InvalidCredentials)
        ));
        assert_eq!(hasher.count(&hasher.work), work + 1);
    }
    assert_eq!(failures(&db, "ada@example.com").await, 9);
    // Capped at 15 minutes.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 60, last_failed_at = now()",
    )
    .await;
    let wait = retry_after(auth.sign_in("ada@example.com", PASSWORD).await);
    assert!(wait <= StdDuration::from_secs(900) && wait > StdDuration::from_secs(890));
    // Past the delay, the right password signs in and clears the count: five free failures again.
    age_failures(&db, "ada@example.com", 900.0).await;
    auth.sign_in("ada@example.com", PASSWORD).await.unwrap();
    assert_eq!(rows(&db, "sign_in_failures").await, 0);
    for _ in 0..5 {
        assert!(matches!(
            auth.sign_in("ada@example.com", "wrong password").await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    retry_after(auth.sign_in("ada@example.com", PASSWORD).await);
}

#[tokio::test]
async fn the_hundredth_failure_locks_until_unlocked() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = throttled(&db, hasher.clone()).await;
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    assert!(matches!(
        auth.sign_in("ada@example.com", "wrong password").await,
        Err(AuthError::InvalidCredentials)
    ));
    // 99 consecutive failures, the last an hour ago: the hundredth is still checked...
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET failures = 99, last_failed_at = now() - interval '1 hour'",
    )
    .await;
    assert!(matches!(
        auth.sign_in("ada@example.com", "wrong password").await,
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(failures(&db, "ada@example.com").await, 100);
    // ...and then nothing is, however long after, and the cleanup keeps the lock.
    age_failures(&db, "ada@example.com", 400.0 * 24.0 * 3600.0).await;
    assert_eq!(auth.store().cleanup_rate_limits().await.unwrap(), 0);
    let work = hasher.count(&hasher.work);
    for password in [PASSWORD, "wrong password"] {
        assert!(matches!(
            auth.sign_in("ada@example.com", password).await,
            Err(AuthError::AccountLocked)
        ));
    }
    assert_eq!(hasher.count(&hasher.work), work);
    assert!(auth.unlock_account(" Ada@Example.com ").await.unwrap());
    assert!(!auth.unlock_account("ada@example.com").await.unwrap());
    auth.sign_in("ada@example.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn unknown_and_existing_emails_are_throttled_identically() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = throttled(&db, hasher.clone()).await;
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    let mut seen = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let mut outcomes = Vec::new();
        let work = hasher.count(&hasher.work);
        for _ in 0..7 {
            outcomes.push(match auth.sign_in(email, "wrong password").await {
                Err(AuthError::InvalidCredentials) => "invalid".to_owned(),
                Err(AuthError::TooManyRequests { retry_after }) => {
                    format!("throttled {}", retry_after.as_secs_f64().ceil())
                }
                other => panic!("{email}: {other:?}"),
            });
        }
        seen.push((outcomes, hasher.count(&hasher.work) - work));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].1, 5, "five verifications, then none");
    assert_eq!(failures(&db, "nobody@example.com").await, 5);
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
            auth.sign_in(email, PASSWORD).await,
            Err(AuthError::AccountLocked)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_attempts_past_the_free_failures_one_checks_a_password() {
    const CALLERS: usize = 12;
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = Auth::new(
        Options::new(
            db.store_with(PoolConfig::default().max_size(CALLERS as u32))
                .await,
        )
        .password_hasher(hasher.clone())
        .cleanup_interval(None)
        .rate_limits(None),
    )
    .unwrap();
    auth.ready().await.unwrap();
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    assert!(matches!(
        auth.sign_in("ada@example.com", "wrong password").await,
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
            auth.sign_in("ada@example.com", "wrong password").await
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
    assert_eq!(failures(&db, "ada@example.com").await, 6);
}

#[tokio::test]
async fn a_day_without_failure_forgets_the_count_and_the_cleanup_removes_old_counters() {
    let db = TestDb::new().await;
    let auth = Auth::new(
        options(&db, Some(sign_ins(30)))
            .await
            .sign_in_throttle(Some(SignInThrottle::default())),
    )
    .unwrap();
    for email in [
        "old@example.com",
        "recent@example.com",
        "locked@example.com",
    ] {
        for _ in 0..5 {
            assert!(matches!(
                auth.sign_in_with(email, "wrong password", &from("203.0.113.7"))
                    .await,
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
            "UPDATE sign_in_failures SET failures = 100, forget_at = NULL, \
             last_failed_at = now() - interval '400 days' WHERE email_digest = '{}'",
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
        auth.sign_in("old@example.com", "wrong password").await,
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(failures(&db, "old@example.com").await, 1);
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
    let sweeping = Auth::new(
        options(&db, None)
            .await
            .cleanup_interval(Some(StdDuration::from_secs(3600)))
            .cleanup_first_delay(StdDuration::ZERO),
    )
    .unwrap();
    for _ in 0..2000 {
        if sweeping.cleanup_sweeps() > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(sweeping.cleanup_sweeps(), 1);
    assert_eq!(rows(&db, "rate_limits").await, 1, "the live window stays");
    assert_eq!(rows(&db, "sign_in_failures").await, 2);
    assert_eq!(failures(&db, "old@example.com").await, 0);
    assert_eq!(failures(&db, "locked@example.com").await, 100);
    assert_eq!(failures(&db, "recent@example.com").await, 5);
}

#[tokio::test]
async fn mails_are_limited_per_target_email_and_per_address() {
    let db = TestDb::new().await;
    let auth = Auth::new(options(&db, Some(RateLimits::default())).await).unwrap();
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
    let auth = Auth::new(options(&db, None).await).unwrap();
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    for _ in 0..40 {
        auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
            .await
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

/// A hasher whose hashes wait at a gate while it is closed (open at first, so that the dummy hash
/// is made).
pub(crate) struct Gated {
    inner: Argon2id,
    open: Mutex<bool>,
    opened: Condvar,
    entered: AtomicUsize,
    hashes: AtomicUsize,
}

impl Gated {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Argon2id::new(FAST).unwrap(),
            open: Mutex::new(true),
            opened: Condvar::new(),
            entered: AtomicUsize::new(0),
            hashes: AtomicUsize::new(0),
        })
    }

    pub(crate) fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

impl PasswordHasher for Gated {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.inner.hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.inner.verify(password, hash)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_at_once_and_a_dropped_requests_hash_is_skipped() {
    let db = TestDb::new().await;
    let hasher = Gated::new();
    let auth = Auth::new(
        options(&db, None)
            .await
            .password_hasher(hasher.clone())
            .max_concurrent_hashes(1)
            .max_queued_hashes(1),
    )
    .unwrap();
    auth.ready().await.unwrap();
    let dummy = hasher.hashes.load(Ordering::SeqCst);
    hasher.set(false);
    // One hashing, held at the gate; one waiting behind it.
    let running = tokio::spawn({
        let auth = auth.clone();
        async move { auth.sign_up("ada@example.com", PASSWORD, "Ada").await }
    });
    while hasher.entered.load(Ordering::SeqCst) == dummy {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let waiting = tokio::spawn({
        let auth = auth.clone();
        async move { auth.sign_up("bob@example.com", PASSWORD, "Bob").await }
    });
    while auth.hashes_admitted() < 2 {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    // Full: refused at once, whatever the operation.
    let refused = tokio::time::timeout(StdDuration::from_secs(5), async {
        (
            auth.sign_up("eve@example.com", PASSWORD, "Eve").await,
            auth.sign_in("ada@example.com", PASSWORD).await,
        )
    })
    .await
    .expect("a full queue answers at once");
    assert!(matches!(refused.0, Err(AuthError::Busy)), "{:?}", refused.0);
    assert!(matches!(refused.1, Err(AuthError::Busy)), "{:?}", refused.1);
    // The waiting request goes away (its client hung up): its place is free, its job skipped.
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert_eq!(auth.hashes_admitted(), 1);
    hasher.set(true);
    running.await.unwrap().unwrap();
    for _ in 0..2000 {
        if auth.hashes_skipped() == 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert_eq!(auth.hashes_skipped(), 1);
    assert_eq!(
        hasher.hashes.load(Ordering::SeqCst),
        dummy + 1,
        "only Ada's hash ran"
    );
    assert_eq!(rows(&db, "users").await, 1);
    assert_eq!(auth.hashes_admitted(), 0);
}

#[tokio::test]
async fn a_common_password_is_refused_wherever_a_password_is_set() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = Auth::new(
        options(&db, None)
            .await
            .password_hasher(hasher.clone())
            .fresh_age(StdDuration::from_secs(3600)),
    )
    .unwrap();
    auth.ready().await.unwrap();
    let hashes = hasher.count(&hasher.hashes);
    for common in ["password1", "Iloveyou12", " qwertyuiop "] {
        match auth.sign_up("ada@example.com", common, "Ada").await {
            Err(AuthError::InvalidInput {
                field: "password",
                reason: InputReason::TooCommon,
            }) => {}
            other => panic!("{common}: {other:?}"),
        }
    }
    assert_eq!(
        hasher.count(&hasher.hashes),
        hashes,
        "refused before hashing"
    );
    let signed_up = auth
        .sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    let current = authingo::SessionWithUser {
        session: signed_up.session,
        user: signed_up.user,
    };
    assert!(matches!(
        auth.change_password(&current, PASSWORD, "Password123", true)
            .await,
        Err(AuthError::InvalidInput {
            field: "password",
            reason: InputReason::TooCommon,
        })
    ));
    assert!(auth.check_new_password("baseball1").is_err());
    auth.change_password(&current, PASSWORD, "a rarer passphrase", true)
        .await
        .unwrap();
    // Off: allowed.
    let lax = Auth::new(options(&db, None).await.reject_common_passwords(false)).unwrap();
    lax.sign_up("bob@example.com", "password1", "Bob")
        .await
        .unwrap();
}

#[tokio::test]
async fn each_check_is_one_statement() {
    let db = TestDb::new().await;
    let (store, statements) = counted_store(&db).await;
    let auth = Auth::new(
        Options::new(store)
            .argon2(FAST)
            .cleanup_interval(None)
            .sign_in_throttle(Some(SignInThrottle::default())),
    )
    .unwrap();
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    let sent = || statements.load(Ordering::SeqCst);
    let before = sent();
    auth.check_rate_limit(LimitedRoute::Refresh, ip("203.0.113.7"))
        .await
        .unwrap();
    assert_eq!(sent() - before, 1, "a rate-limit check");
    let before = sent();
    assert!(matches!(
        auth.sign_in_with("ada@example.com", "wrong password", &from("203.0.113.7"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    // The address's count, the email's attempt, the user.
    assert_eq!(sent() - before, 3, "a failed sign-in");
    let before = sent();
    auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
        .unwrap();
    // The same three, the count cleared, the session inserted.
    assert_eq!(sent() - before, 5, "a sign-in");
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
    let auth = Auth::new(
        Options::new(store.clone())
            .argon2(FAST)
            .cleanup_interval(None)
            .sign_in_throttle(Some(SignInThrottle::default())),
    )
    .unwrap();
    auth.sign_up("ada@example.com", PASSWORD, "Ada")
        .await
        .unwrap();
    assert!(matches!(
        auth.sign_in_with("ada@example.com", "wrong password", &from("203.0.113.7"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    auth.sign_in_with("ada@example.com", PASSWORD, &from("203.0.113.7"))
        .await
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
