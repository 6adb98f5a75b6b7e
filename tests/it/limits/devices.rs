//! Device cookies (OWASP's defence against lockout as a weapon): a stranger's failures slow and
//! lock untrusted clients only; a browser that signed in before is counted on its own; the lock
//! expires, and its owner hears of it once. Time moves by rows written in the past.

use super::*;
use crate::support::{
    EngineBuilder, FAST, PASSWORD, TestDb, Watched, count, exec, sign_in_failures,
};
use authingo::mail::CapturingMailer;
use authingo::{SignUp, SignedIn};

const ADA: &str = "ada@example.com";

/// An engine over `db` with the default throttle, no rate limit, a watched hasher, mail captured
/// and a device-cookie key of its own.
async fn engine(db: &TestDb, hasher: &Arc<Watched>, mail: &Arc<CapturingMailer>) -> Auth {
    EngineBuilder::over(db)
        .await
        .hasher(hasher.clone())
        .mailer(mail.clone())
        .rate_limits(None)
        .with(|options| options.device_cookie_key(&[7; 32]))
        .ready()
        .await
}

/// Ada's account, and her browser's device cookie from signing in.
async fn ada_with_a_device(auth: &Auth) -> String {
    auth.sign_up(ADA, PASSWORD, "Ada", &RequestContext::default())
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    device_of(
        &auth
            .sign_in(ADA, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap(),
    )
}

fn device_of(signed_in: &SignedIn) -> String {
    signed_in
        .device
        .as_ref()
        .expect("a sign-in issues a device cookie")
        .expose()
        .to_owned()
}

fn on(device: &str) -> RequestContext {
    RequestContext::default().device(Some(device))
}

/// A stranger's `attempts` wrong passwords at `email`, each let through the back-off by moving
/// the last failure an hour back; returns how many were checked before the lock refused them.
async fn stranger_fails(auth: &Auth, db: &TestDb, email: &str, attempts: usize) -> usize {
    let mut checked = 0;
    for _ in 0..attempts {
        match auth
            .sign_in(email, "wrong password", &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
        {
            Err(AuthError::InvalidCredentials) => checked += 1,
            Err(AuthError::TooManyRequests { .. }) => {}
            Err(AuthError::AccountLocked) => continue,
            other => panic!("unexpected {other:?}"),
        }
        exec(
            &mut db.conn().await,
            "UPDATE sign_in_failures SET last_failed_at = last_failed_at - interval '1 hour'",
        )
        .await;
    }
    checked
}

#[tokio::test]
async fn the_owners_device_signs_in_at_once_after_a_stranger_failed_200_times() {
    let db = TestDb::new().await;
    let (hasher, mail) = (Watched::new(FAST), Arc::new(CapturingMailer::new()));
    let auth = engine(&db, &hasher, &mail).await;
    let device = ada_with_a_device(&auth).await;

    assert_eq!(stranger_fails(&auth, &db, ADA, 200).await, 100);
    assert_eq!(sign_in_failures(&db, ADA).await, 100);
    // A new browser of Ada's, with the right password, is refused as the stranger is, and no
    // password is checked for it.
    let work = hasher.count(&hasher.work);
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::AccountLocked)
    ));
    assert_eq!(hasher.count(&hasher.work), work);
    // Her own browser signs in at once, and gets a new device cookie.
    let again = auth
        .sign_in(ADA, PASSWORD, &on(&device))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_ne!(device_of(&again), device);
    // The untrusted count is the stranger's still: signing in on a device clears nothing of it.
    assert_eq!(sign_in_failures(&db, ADA).await, 100);
    // The old cookie, and the new one, are both the device's until they expire.
    auth.sign_in(ADA, PASSWORD, &on(&device))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    auth.sign_in(ADA, PASSWORD, &on(&device_of(&again)))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn a_new_browser_of_the_owner_is_throttled_like_the_stranger() {
    let db = TestDb::new().await;
    let (hasher, mail) = (Watched::new(FAST), Arc::new(CapturingMailer::new()));
    let auth = engine(&db, &hasher, &mail).await;
    let device = ada_with_a_device(&auth).await;
    for _ in 0..5 {
        assert!(matches!(
            auth.sign_in(ADA, "wrong password", &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // Past the free failures: the new browser waits, the device does not.
    let wait = retry_after(
        auth.sign_in(ADA, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
    );
    assert!(wait > StdDuration::ZERO && wait <= StdDuration::from_secs(1));
    auth.sign_in(ADA, PASSWORD, &on(&device))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    retry_after(
        auth.sign_in(ADA, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
    );
}

#[tokio::test]
async fn a_forged_tampered_or_another_accounts_device_cookie_is_untrusted() {
    let db = TestDb::new().await;
    let (hasher, mail) = (Watched::new(FAST), Arc::new(CapturingMailer::new()));
    let auth = engine(&db, &hasher, &mail).await;
    let device = ada_with_a_device(&auth).await;
    auth.sign_up(
        "eve@example.com",
        PASSWORD,
        "Eve",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    let eves = device_of(
        &auth
            .sign_in("eve@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap(),
    );
    // The same shape under another key: a second engine's, which a forger could run.
    let other_key = EngineBuilder::over(&db)
        .await
        .with(|options| options.device_cookie_key(&[8; 32]))
        .build();
    let forged = device_of(
        &other_key
            .sign_in(ADA, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap(),
    );
    assert_eq!(stranger_fails(&auth, &db, ADA, 101).await, 100);

    let mut tampered = device.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (version, rest) = device.split_once('.').unwrap();
    let later = {
        // The issue time moved a year on, the MAC kept.
        let parts: Vec<&str> = rest.split('.').collect();
        let issued: i64 = parts[1].parse().unwrap();
        format!(
            "{version}.{}.{}.{}",
            parts[0],
            issued + 365 * 86400,
            parts[2]
        )
    };
    for cookie in [
        eves.as_str(),
        forged.as_str(),
        tampered.as_str(),
        later.as_str(),
        "",
        "v1..0.",
        &"A".repeat(5000),
    ] {
        assert!(
            matches!(
                auth.sign_in(ADA, PASSWORD, &on(cookie))
                    .await
                    .and_then(authingo::SignIn::signed_in),
                Err(AuthError::AccountLocked)
            ),
            "{cookie:.40} was trusted"
        );
    }
    // The engine with the same key (another instance) trusts Ada's own.
    let same_key = EngineBuilder::over(&db)
        .await
        .with(|options| options.device_cookie_key(&[7; 32]))
        .build();
    same_key
        .sign_in(ADA, PASSWORD, &on(&device))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn a_device_that_fails_is_throttled_on_its_own_count_then_no_longer_trusted() {
    let db = TestDb::new().await;
    let (hasher, mail) = (Watched::new(FAST), Arc::new(CapturingMailer::new()));
    let auth = engine(&db, &hasher, &mail).await;
    let device = ada_with_a_device(&auth).await;
    let device_failures = || {
        count(
            &db,
            "SELECT coalesce(sum(failures), 0)::bigint AS n FROM sign_in_device_failures",
        )
    };
    for _ in 0..5 {
        assert!(matches!(
            auth.sign_in(ADA, "wrong password", &on(&device))
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert_eq!(device_failures().await, 5);
    // Counted on the device alone: an untrusted client of Ada's is not slowed by them...
    assert_eq!(sign_in_failures(&db, ADA).await, 0);
    // ...and the device is, as an untrusted client would be after five failures.
    let wait = retry_after(
        auth.sign_in(ADA, PASSWORD, &on(&device))
            .await
            .and_then(authingo::SignIn::signed_in),
    );
    assert!(wait > StdDuration::ZERO && wait <= StdDuration::from_secs(1));
    auth.sign_in(ADA, "wrong password", &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap_err();
    assert_eq!(sign_in_failures(&db, ADA).await, 1);
    // Past the device's limit (10 by default) its cookie is no longer trusted: its attempts
    // count as untrusted ones.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_device_failures SET failures = 10, \
         last_failed_at = now() - interval '1 hour'",
    )
    .await;
    assert!(matches!(
        auth.sign_in(ADA, "wrong password", &on(&device))
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(sign_in_failures(&db, ADA).await, 2);
    assert_eq!(device_failures().await, 10);
    // A success, as an untrusted client, clears the untrusted count and gives a new cookie.
    let again = auth
        .sign_in(ADA, PASSWORD, &on(&device))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(sign_in_failures(&db, ADA).await, 0);
    let fresh = device_of(&again);
    auth.sign_in(ADA, "wrong password", &on(&fresh))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap_err();
    assert_eq!(device_failures().await, 11);
    // A success on a trusted device clears that device's count.
    auth.sign_in(ADA, PASSWORD, &on(&fresh))
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(device_failures().await, 10);
    // The cleanup forgets a device's count a day after its last failure.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_device_failures SET forget_at = now() - interval '1 second'",
    )
    .await;
    auth.store()
        .clone()
        .abuse_counters()
        .unwrap()
        .cleanup_rate_limits()
        .await
        .unwrap();
    assert_eq!(device_failures().await, 0);
}

#[tokio::test]
async fn the_lock_expires_after_its_period() {
    let db = TestDb::new().await;
    let (hasher, mail) = (Watched::new(FAST), Arc::new(CapturingMailer::new()));
    let auth = engine(&db, &hasher, &mail).await;
    ada_with_a_device(&auth).await;
    assert_eq!(stranger_fails(&auth, &db, ADA, 100).await, 100);
    // 23 hours after the hundredth failure: still locked.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET last_failed_at = now() - interval '23 hours', \
         forget_at = forget_at - interval '23 hours'",
    )
    .await;
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::AccountLocked)
    ));
    // A day after it: open again, with a fresh count.
    exec(
        &mut db.conn().await,
        "UPDATE sign_in_failures SET last_failed_at = last_failed_at - interval '1 hour', \
         forget_at = forget_at - interval '1 hour'",
    )
    .await;
    auth.sign_in(ADA, PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(sign_in_failures(&db, ADA).await, 0);
    // A lock written by an earlier version (no end) ends a day after its last failure too.
    exec(
        &mut db.conn().await,
        &format!(
            "INSERT INTO sign_in_failures (email_digest, failures, last_failed_at, forget_at) \
             VALUES ('{}', 100, now() - interval '25 hours', NULL)",
            EmailDigest::of(ADA).as_str()
        ),
    )
    .await;
    auth.sign_in(ADA, PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn the_owner_is_mailed_once_when_the_lock_is_reached() {
    let db = TestDb::new().await;
    let (hasher, mail) = (Watched::new(FAST), Arc::new(CapturingMailer::new()));
    let auth = engine(&db, &hasher, &mail).await;
    ada_with_a_device(&auth).await;
    assert_eq!(stranger_fails(&auth, &db, ADA, 99).await, 99);
    auth.flush_background().await;
    assert!(mail.is_empty(), "{:?}", mail.sent());
    assert_eq!(stranger_fails(&auth, &db, ADA, 50).await, 1);
    // An address without an account locks alike, and mails nobody.
    assert_eq!(
        stranger_fails(&auth, &db, "nobody@example.com", 120).await,
        100
    );
    auth.flush_background().await;
    let sent = mail.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let notice = &sent[0];
    assert_eq!(notice.to, ADA);
    assert_eq!(notice.subject, "Your account was locked");
    assert!(
        notice.text.contains("100 failed sign-ins"),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("24 hours"), "{}", notice.text);
    // Its link resets the password, which opens the account at once.
    let token = notice.link_token().expect("a reset link");
    auth.reset_password(&token, "a brand new passphrase", &RequestContext::default())
        .await
        .unwrap();
    auth.sign_in(ADA, "a brand new passphrase", &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}
