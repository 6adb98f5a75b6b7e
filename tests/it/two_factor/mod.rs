//! The second factor in the engine, against PostgreSQL, with codes from `oathtool`: enrolment,
//! the sign-in's challenge, replay and guessing, races, recovery codes, trusted browsers, the
//! ways in that must not bypass it, and the keys at rest.

use std::sync::Arc;

use authingo::mail::CapturingMailer;
use authingo::{
    Auth, AuthError, EncryptionKey, RecoveryCodes, RequestContext, SecondFactorCode, SignIn,
    SignUp, SignedIn, TotpEnrolment, TwoFactorProof,
};
use tokio::sync::Barrier;

use crate::support::{EngineBuilder, PASSWORD, TestDb, code_in, count, exec};

const ADA: &str = "ada@example.com";

fn key() -> EncryptionKey {
    EncryptionKey::new([42; 32])
}

/// An engine over `db` with an encryption key, mail captured, and no rate limit or throttle
/// unless a test turns them on.
async fn engine(db: &TestDb, mail: &Arc<CapturingMailer>) -> Auth {
    builder(db, mail).await.ready().await
}

async fn builder(db: &TestDb, mail: &Arc<CapturingMailer>) -> EngineBuilder {
    EngineBuilder::over(db)
        .await
        .mailer(mail.clone())
        .rate_limits(None)
        .sign_in_throttle(None)
        .with(|options| options.encryption_key(key()))
}

fn client() -> RequestContext {
    RequestContext::default()
}

/// Ada signed up, with her enrolment answered (not yet confirmed).
async fn enrolled(auth: &Auth) -> (SignedIn, TotpEnrolment) {
    let ada = auth
        .sign_up(ADA, PASSWORD, "Ada", &client())
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    let enrolment = auth.enable_two_factor(&current, PASSWORD).await.unwrap();
    (ada, enrolment)
}

/// Ada with a confirmed second factor: her session, the secret (base32) and her recovery codes.
async fn protected(auth: &Auth) -> (SignedIn, String, RecoveryCodes) {
    let (ada, enrolment) = enrolled(auth).await;
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    let codes = auth
        .confirm_two_factor(&current, &code_in(&enrolment.secret, 0))
        .await
        .unwrap();
    (ada, enrolment.secret, codes)
}

/// A sign-in with the right password: its challenge token.
async fn challenge(auth: &Auth) -> String {
    match auth.sign_in(ADA, PASSWORD, &client()).await.unwrap() {
        SignIn::TwoFactorRequired(challenge) => challenge.expose().to_owned(),
        SignIn::SignedIn(_) => panic!("a session opened without the second factor"),
    }
}

async fn sessions(db: &TestDb) -> i64 {
    count(db, "SELECT count(*) AS n FROM sessions").await
}

/// Lets any step be accepted again: what the window tests need between attempts.
async fn forget_last_step(db: &TestDb) {
    exec(
        &mut db.conn().await,
        "UPDATE totp_secrets SET last_used_step = 0",
    )
    .await;
}

#[tokio::test]
async fn enrolment_answers_a_secret_oathtool_agrees_with_and_protects_nothing_until_confirmed() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, enrolment) = enrolled(&auth).await;
    assert_eq!(enrolment.secret.len(), 32, "160 bits in base32");
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(enrolment.otpauth_uri.contains(&enrolment.secret));
    assert!(enrolment.qr_svg.contains("<svg"));
    // Pending: the password alone still signs in.
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &client()).await.unwrap(),
        SignIn::SignedIn(_)
    ));
    let stored = count(
        &db,
        "SELECT count(*) AS n FROM totp_secrets WHERE confirmed_at IS NULL",
    )
    .await;
    assert_eq!(stored, 1);
    // Only a ciphertext is stored: the secret's bytes are nowhere in the row.
    let secret = data_encoding_free_base32(&enrolment.secret);
    let leaked = count(
        &db,
        &format!(
            "SELECT count(*) AS n FROM totp_secrets WHERE position('\\x{}'::bytea in ciphertext) > 0",
            hex(&secret)
        ),
    )
    .await;
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn a_confirmed_factor_asks_every_sign_in_for_a_code_which_works_once() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, secret, codes) = protected(&auth).await;
    assert_eq!(codes.0.len(), 10);
    auth.flush_background().await;
    assert!(
        mail.sent_to(ADA)
            .iter()
            .any(|m| m.subject.contains("Two-step sign-in is on"))
    );
    let before = sessions(&db).await;
    let token = challenge(&auth).await;
    assert_eq!(sessions(&db).await, before, "no session before the code");
    // The confirmation used this step's code: the next step's is new.
    let code = code_in(&secret, 1);
    let signed_in = auth
        .verify_two_factor(&token, SecondFactorCode::Totp(&code), false, &client())
        .await
        .unwrap();
    assert_eq!(signed_in.user.email, ADA);
    assert_eq!(sessions(&db).await, before + 1);
    // The same code again, on a new challenge: refused.
    let again = challenge(&auth).await;
    assert!(matches!(
        auth.verify_two_factor(&again, SecondFactorCode::Totp(&code), false, &client())
            .await,
        Err(AuthError::InvalidCode)
    ));
    // The used challenge is gone.
    assert!(matches!(
        auth.verify_two_factor(
            &token,
            SecondFactorCode::Totp(&code_in(&secret, 1)),
            false,
            &client()
        )
        .await,
        Err(AuthError::InvalidChallenge)
    ));
}

#[tokio::test]
async fn codes_one_step_either_side_are_accepted_and_two_steps_are_not() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, secret, _) = protected(&auth).await;
    let step = || chrono::Utc::now().timestamp() / 30;
    for (steps, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
        // An attempt that straddles a step's end measured another offset: it is made again.
        loop {
            forget_last_step(&db).await;
            let token = challenge(&auth).await;
            let before = step();
            let code = code_in(&secret, steps);
            let outcome = auth
                .verify_two_factor(&token, SecondFactorCode::Totp(&code), false, &client())
                .await;
            if step() != before {
                continue;
            }
            assert_eq!(outcome.is_ok(), accepted, "{steps} steps: {outcome:?}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_answers_with_one_code_open_one_session() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, secret, _) = protected(&auth).await;
    let code = code_in(&secret, 1);
    // Twenty sign-ins' challenges (a thief with the password and one observed code), and twenty
    // answers to one challenge.
    for shared in [false, true] {
        forget_last_step(&db).await;
        let one = challenge(&auth).await;
        let mut tokens = Vec::new();
        for _ in 0..20 {
            tokens.push(if shared {
                one.clone()
            } else {
                challenge(&auth).await
            });
        }
        let before = sessions(&db).await;
        let barrier = Arc::new(Barrier::new(20));
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let (auth, barrier, code) = (auth.clone(), barrier.clone(), code.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    auth.verify_two_factor(&token, SecondFactorCode::Totp(&code), false, &client())
                        .await
                })
            })
            .collect();
        let mut opened = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => opened += 1,
                Err(AuthError::InvalidCode | AuthError::InvalidChallenge) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(opened, 1, "shared challenge: {shared}");
        assert_eq!(sessions(&db).await, before + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recovery_code_opens_one_session_once_even_in_a_race_and_the_owner_hears_of_it() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, _, codes) = protected(&auth).await;
    let code = codes.0[3].clone();
    let first = challenge(&auth).await;
    let second = challenge(&auth).await;
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [first, second]
        .into_iter()
        .map(|token| {
            let (auth, barrier, code) = (auth.clone(), barrier.clone(), code.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                auth.verify_two_factor(
                    &token,
                    SecondFactorCode::RecoveryCode(&code),
                    false,
                    &client(),
                )
                .await
            })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            opened += 1;
        }
    }
    assert_eq!(opened, 1);
    let again = challenge(&auth).await;
    assert!(matches!(
        auth.verify_two_factor(
            &again,
            SecondFactorCode::RecoveryCode(&code),
            false,
            &client()
        )
        .await,
        Err(AuthError::InvalidCode)
    ));
    // Typed in capitals with spaces, another code works.
    let typed = codes.0[4].to_uppercase().replace('-', " ");
    auth.verify_two_factor(
        &again,
        SecondFactorCode::RecoveryCode(&typed),
        false,
        &client(),
    )
    .await
    .unwrap();
    auth.flush_background().await;
    let notices: Vec<_> = mail
        .sent_to(ADA)
        .into_iter()
        .filter(|m| m.subject.contains("recovery code"))
        .collect();
    assert_eq!(notices.len(), 2);
    assert!(notices[1].text.contains("8 unused codes"));
    assert_eq!(
        auth.two_factor_status(&protected_id(&db).await)
            .await
            .unwrap()
            .recovery_codes_left,
        8
    );
}

async fn protected_id(db: &TestDb) -> String {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        user_id: String,
    }
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query("SELECT user_id FROM totp_secrets")
        .get_result::<Id>(&mut db.conn().await)
        .await
        .unwrap()
        .user_id
}

#[tokio::test]
async fn a_stolen_password_alone_gets_no_session_by_any_route() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, secret, _) = protected(&auth).await;
    let before = sessions(&db).await;

    // Five wrong codes end the challenge.
    let token = challenge(&auth).await;
    for _ in 0..5 {
        assert!(matches!(
            auth.verify_two_factor(&token, SecondFactorCode::Totp("000000"), false, &client())
                .await,
            Err(AuthError::InvalidCode)
        ));
    }
    assert!(matches!(
        auth.verify_two_factor(
            &token,
            SecondFactorCode::Totp(&code_in(&secret, 1)),
            false,
            &client()
        )
        .await,
        Err(AuthError::InvalidChallenge)
    ));
    // Trust asked without a code gives nothing either; a forged trust cookie is ignored.
    let forged = client().trusted_device(Some(&"A".repeat(43)));
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &forged).await.unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
    // A password reset signs nobody in and leaves the second factor on.
    auth.request_password_reset(ADA, &client()).await.unwrap();
    auth.flush_background().await;
    let reset = mail.last_to(ADA).unwrap().link_token().unwrap();
    auth.reset_password(&reset, "a brand new password", &client())
        .await
        .unwrap();
    assert_eq!(
        sessions(&db).await,
        0,
        "the reset ended every session and opened none"
    );
    assert!(matches!(
        auth.sign_in(ADA, "a brand new password", &client())
            .await
            .unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
    assert!(before > 0);
}

#[tokio::test]
async fn a_change_of_email_keeps_the_factor_and_ends_waiting_sign_ins() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (ada, secret, _) = protected(&auth).await;
    let waiting = challenge(&auth).await;
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    auth.request_email_change(&current, PASSWORD, "ada@new.example", &client())
        .await
        .unwrap();
    auth.flush_background().await;
    let link = mail
        .last_to("ada@new.example")
        .unwrap()
        .link_token()
        .unwrap();
    let before = sessions(&db).await;
    auth.confirm_email_change(&link, &client()).await.unwrap();
    assert_eq!(sessions(&db).await, before, "confirming opens no session");
    assert!(matches!(
        auth.verify_two_factor(
            &waiting,
            SecondFactorCode::Totp(&code_in(&secret, 1)),
            false,
            &client()
        )
        .await,
        Err(AuthError::InvalidChallenge)
    ));
    assert!(matches!(
        auth.sign_in("ada@new.example", PASSWORD, &client())
            .await
            .unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
}

#[tokio::test]
async fn confirming_ends_the_sessions_the_password_alone_opened() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (ada, enrolment) = enrolled(&auth).await;
    let older = auth
        .sign_in(ADA, PASSWORD, &client())
        .await
        .and_then(SignIn::signed_in)
        .unwrap();
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    auth.confirm_two_factor(&current, &code_in(&enrolment.secret, 0))
        .await
        .unwrap();
    assert!(
        auth.refresh(older.tokens.refresh_token.expose(), &client())
            .await
            .is_err(),
        "an older session cannot be refreshed past the second factor"
    );
    assert!(
        auth.get_session(ada.tokens.access_token.expose())
            .await
            .unwrap()
            .is_some(),
        "the session that confirmed stays"
    );
}

#[tokio::test]
async fn a_trusted_browser_skips_the_code_until_every_session_ends() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (_, secret, _) = protected(&auth).await;
    let token = challenge(&auth).await;
    let signed_in = auth
        .verify_two_factor(
            &token,
            SecondFactorCode::Totp(&code_in(&secret, 1)),
            true,
            &client(),
        )
        .await
        .unwrap();
    let trust = signed_in.trusted_device.clone().expect("trust was asked");
    let trusted = client().trusted_device(Some(trust.expose()));
    let again = auth.sign_in(ADA, PASSWORD, &trusted).await.unwrap();
    assert!(matches!(again, SignIn::SignedIn(_)));
    // Only the digest is stored.
    let raw = count(
        &db,
        &format!(
            "SELECT count(*) AS n FROM trusted_devices WHERE device_digest = '{}'",
            trust.expose()
        ),
    )
    .await;
    assert_eq!(raw, 0);
    // Signing out everywhere ends the trust.
    let current = auth
        .get_session(again.signed_in().unwrap().tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    auth.revoke_all_sessions(&current).await.unwrap();
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &trusted).await.unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
}

#[tokio::test]
async fn wrong_codes_count_on_the_sign_in_throttle_which_a_right_password_does_not_clear() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .rate_limits(None)
        .with(|options| options.encryption_key(key()))
        .ready()
        .await;
    let (_, _, _) = protected(&auth).await;
    let failures = || async {
        count(
            &db,
            "SELECT coalesce(max(failures), 0)::bigint AS n FROM sign_in_failures",
        )
        .await
    };
    let token = challenge(&auth).await;
    let after_password = failures().await;
    assert_eq!(after_password, 1, "the right password is not yet a success");
    let _ = auth
        .verify_two_factor(&token, SecondFactorCode::Totp("000000"), false, &client())
        .await;
    assert_eq!(failures().await, 2);
    // Without moving time, the throttle now slows the thief down.
    let mut refused = false;
    for _ in 0..10 {
        match auth.sign_in(ADA, PASSWORD, &client()).await {
            Err(AuthError::TooManyRequests { .. }) => {
                refused = true;
                break;
            }
            Ok(SignIn::TwoFactorRequired(token)) => {
                let _ = auth
                    .verify_two_factor(
                        token.expose(),
                        SecondFactorCode::Totp("000000"),
                        false,
                        &client(),
                    )
                    .await;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused, "password and wrong codes in a loop are throttled");
}

#[tokio::test]
async fn disabling_needs_the_password_or_a_code_and_tells_the_owner() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (ada, secret, _) = protected(&auth).await;
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        auth.disable_two_factor(&current, TwoFactorProof::Password("wrong password"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        auth.disable_two_factor(&current, TwoFactorProof::Totp("000000"))
            .await,
        Err(AuthError::InvalidCode)
    ));
    auth.disable_two_factor(&current, TwoFactorProof::Totp(&code_in(&secret, 1)))
        .await
        .unwrap();
    assert!(!auth.two_factor_status(&ada.user.id).await.unwrap().enabled);
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM recovery_codes").await,
        0
    );
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &client()).await.unwrap(),
        SignIn::SignedIn(_)
    ));
    auth.flush_background().await;
    assert!(
        mail.sent_to(ADA)
            .iter()
            .any(|m| m.subject.contains("Two-step sign-in is off"))
    );
    assert!(matches!(
        auth.disable_two_factor(&current, TwoFactorProof::Password(PASSWORD))
            .await,
        Err(AuthError::TwoFactorNotEnabled)
    ));
}

#[tokio::test]
async fn new_recovery_codes_void_the_old_ones() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (ada, secret, old) = protected(&auth).await;
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    let new = auth
        .regenerate_recovery_codes(&current, &code_in(&secret, 1))
        .await
        .unwrap();
    assert!(old.0.iter().all(|code| !new.0.contains(code)));
    let token = challenge(&auth).await;
    assert!(matches!(
        auth.verify_two_factor(
            &token,
            SecondFactorCode::RecoveryCode(&old.0[0]),
            false,
            &client()
        )
        .await,
        Err(AuthError::InvalidCode)
    ));
    auth.verify_two_factor(
        &token,
        SecondFactorCode::RecoveryCode(&new.0[0]),
        false,
        &client(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_key_no_factor_is_enrolled_and_a_rotated_key_still_opens_old_secrets() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let keyless = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .rate_limits(None)
        .sign_in_throttle(None)
        .ready()
        .await;
    let ada = keyless
        .sign_up(ADA, PASSWORD, "Ada", &client())
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let current = keyless
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        keyless.enable_two_factor(&current, PASSWORD).await,
        Err(AuthError::NoEncryptionKey)
    ));

    let auth = engine(&db, &mail).await;
    let enrolment = auth.enable_two_factor(&current, PASSWORD).await.unwrap();
    auth.confirm_two_factor(&current, &code_in(&enrolment.secret, 0))
        .await
        .unwrap();
    // The engine without the key still asks for the code: removing the key removes nothing.
    assert!(matches!(
        keyless.sign_in(ADA, PASSWORD, &client()).await.unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
    // A new key, the old one kept: codes work, and the secret is sealed again under the new key.
    let newer = EncryptionKey::new([43; 32]);
    let rotated = builder(&db, &mail)
        .await
        .with(|options| {
            options
                .encryption_key(newer.clone())
                .old_encryption_keys([key()])
        })
        .ready()
        .await;
    let token = challenge(&rotated).await;
    rotated
        .verify_two_factor(
            &token,
            SecondFactorCode::Totp(&code_in(&enrolment.secret, 1)),
            false,
            &client(),
        )
        .await
        .unwrap();
    let resealed = count(
        &db,
        &format!(
            "SELECT count(*) AS n FROM totp_secrets WHERE key_id = '{}'",
            newer.id()
        ),
    )
    .await;
    assert_eq!(resealed, 1);
}

/// The bytes of a base32 (RFC 4648, no padding) text.
fn data_encoding_free_base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.bytes() {
        let index = ALPHABET.iter().position(|&a| a == c).unwrap() as u64;
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn base32_reads_as_rfc_4648_says() {
    assert_eq!(data_encoding_free_base32("MZXW6YTBOI"), b"foobar");
}

#[tokio::test]
async fn a_factor_added_by_a_thief_is_removed_by_the_link_mailed_to_the_owner() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    // The thief holds the password and a fresh session, and adds an app of theirs.
    let (thief, _, _) = protected(&auth).await;
    auth.flush_background().await;
    let notice = mail
        .sent_to(ADA)
        .into_iter()
        .find(|m| m.subject.contains("Two-step sign-in is on"))
        .unwrap();
    assert!(notice.text.contains("/remove-two-factor?token="));
    let link = notice.link_token().unwrap();
    // The owner, locked out by the factor, follows the link from the mailbox.
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &client()).await.unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
    auth.remove_two_factor_by_link(&link, &client())
        .await
        .unwrap();
    assert!(
        auth.get_session(thief.tokens.access_token.expose())
            .await
            .unwrap()
            .is_none(),
        "every session ended, the thief's too"
    );
    assert_eq!(sessions(&db).await, 0);
    assert!(
        !auth
            .two_factor_status(&thief.user.id)
            .await
            .unwrap()
            .enabled
    );
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &client()).await.unwrap(),
        SignIn::SignedIn(_)
    ));
    assert!(matches!(
        auth.remove_two_factor_by_link(&link, &client()).await,
        Err(AuthError::InvalidToken)
    ));
    auth.flush_background().await;
    assert!(
        mail.sent_to(ADA)
            .iter()
            .any(|m| m.subject.contains("Two-step sign-in is off"))
    );
}

#[tokio::test]
async fn wrong_confirmation_codes_are_throttled_like_sign_ins() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .rate_limits(None)
        .with(|options| options.encryption_key(key()))
        .ready()
        .await;
    let (ada, _) = enrolled(&auth).await;
    let current = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    let mut refused = false;
    for _ in 0..20 {
        match auth.confirm_two_factor(&current, "000000").await {
            Err(AuthError::InvalidCode) => {}
            Err(AuthError::TooManyRequests { .. }) => {
                refused = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused, "a session holder cannot guess the confirmation");
}

#[tokio::test]
async fn revoking_a_session_ends_the_trust_a_phisher_asked_for() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (ada, secret, _) = protected(&auth).await;
    let token = challenge(&auth).await;
    let phisher = auth
        .verify_two_factor(
            &token,
            SecondFactorCode::Totp(&code_in(&secret, 1)),
            true,
            &client(),
        )
        .await
        .unwrap();
    let trusted = client().trusted_device(Some(phisher.trusted_device.as_ref().unwrap().expose()));
    let owner = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(
        auth.revoke_session(&owner.user, &phisher.session.id)
            .await
            .unwrap()
    );
    assert!(matches!(
        auth.sign_in(ADA, PASSWORD, &trusted).await.unwrap(),
        SignIn::TwoFactorRequired(_)
    ));
}

#[tokio::test]
async fn the_removal_link_outlives_the_thiefs_sign_out_everywhere() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (thief, _, _) = protected(&auth).await;
    auth.flush_background().await;
    let link = mail
        .sent_to(ADA)
        .into_iter()
        .find(|m| m.subject.contains("Two-step sign-in is on"))
        .and_then(|m| m.link_token())
        .unwrap();
    let current = auth
        .get_session(thief.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    auth.revoke_all_sessions(&current).await.unwrap();
    auth.remove_two_factor_by_link(&link, &client())
        .await
        .unwrap();
    assert!(
        !auth
            .two_factor_status(&thief.user.id)
            .await
            .unwrap()
            .enabled
    );
}

#[tokio::test]
async fn old_keys_without_a_current_one_are_refused() {
    let db = TestDb::new().await;
    let refused = authingo::Auth::new(
        authingo::Options::new(db.store().await)
            .cleanup_interval(None)
            .old_encryption_keys([key()]),
    );
    assert!(matches!(refused, Err(authingo::ConfigError::Bounds(_))));
}

/// Whether a statement of another connection to this test's database waits for a lock.
async fn someone_waits_on_users(db: &TestDb) -> bool {
    count(
        db,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await
        > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_sign_in_racing_the_confirmation_keeps_no_session() {
    use diesel_async::{AsyncConnection as _, SimpleAsyncConnection as _};

    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = engine(&db, &mail).await;
    let (ada, _) = enrolled(&auth).await;
    // The confirmation, as confirm_totp writes it, holds the user's lock while a sign-in with
    // the password (which saw no factor yet, had it looked first) reaches its insert.
    let mut confirming = diesel_async::AsyncPgConnection::establish(db.url())
        .await
        .unwrap();
    confirming
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM users WHERE id = '{0}' FOR NO KEY UPDATE;",
            ada.user.id
        ))
        .await
        .unwrap();
    let signing_in = {
        let auth = auth.clone();
        tokio::spawn(async move { auth.sign_in(ADA, PASSWORD, &client()).await })
    };
    while !someone_waits_on_users(&db).await {
        tokio::task::yield_now().await;
    }
    confirming
        .batch_execute(&format!(
            "UPDATE totp_secrets SET confirmed_at = now(), last_used_step = 1 WHERE user_id = '{0}';
             DELETE FROM sessions WHERE user_id = '{0}' AND id <> '{1}';
             COMMIT;",
            ada.user.id, ada.session.id
        ))
        .await
        .unwrap();
    let outcome = signing_in.await.unwrap().unwrap();
    assert!(
        matches!(outcome, SignIn::TwoFactorRequired(_)),
        "a password-only session opened after the factor was confirmed"
    );
    assert_eq!(sessions(&db).await, 1, "only the session that confirmed");
}
