//! Recovery and verification by mail, against the real database, with the mail captured
//! (`CapturingMailer`): email verification, password reset, change of email, enumeration-safe
//! sign-up. Token expiry is written into the past; concurrency is started behind a Barrier. The
//! same flows through a real SMTP server are the HTTP and example tests' (feature `smtp`).

use std::sync::Arc;

use authingo::AuthError;
use authingo::auth::{RequestContext, SignUp};
use authingo::mail::{CapturingMailer, Message};
use tokio::sync::Barrier;

use crate::support::{
    EngineBuilder, FAST, PASSWORD, Statements, TestDb, Watched, count, counted_store, current, exec,
};

/// The one message to `address` among `messages`.
fn to<'m>(messages: &'m [Message], address: &str) -> &'m Message {
    let matching: Vec<_> = messages.iter().filter(|m| m.to == address).collect();
    let sent: Vec<_> = messages.iter().map(|m| (&m.to, &m.subject)).collect();
    assert_eq!(matching.len(), 1, "one message to {address}: {sent:?}");
    matching[0]
}

#[tokio::test]
async fn a_verification_link_verifies_once_and_a_newer_link_voids_the_older() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db).await.mailer(mail.clone()).build();
    let ada = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    assert!(!ada.user.email_verified);
    auth.send_verification_email(&ada.user).await.unwrap();
    auth.flush_background().await;
    let first = mail.sent()[0].clone();
    assert_eq!(first.subject, "Verify your address");
    assert!(
        first
            .text
            .contains("http://localhost:8080/verify-email?token=")
    );
    let older = first.link_token().unwrap();
    auth.send_verification_email(&ada.user).await.unwrap();
    auth.flush_background().await;
    let newer = mail
        .sent()
        .iter()
        .filter_map(Message::link_token)
        .find(|token| *token != older)
        .unwrap();
    // Only the digest is stored.
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) AS n FROM one_time_tokens WHERE token LIKE '%{newer}%'")
        )
        .await,
        0
    );

    assert!(matches!(
        auth.verify_email(&older, &RequestContext::default()).await,
        Err(AuthError::InvalidToken)
    ));
    let verified = auth
        .verify_email(&newer, &RequestContext::default())
        .await
        .unwrap();
    assert!(verified.email_verified);
    assert!(matches!(
        auth.verify_email(&newer, &RequestContext::default()).await,
        Err(AuthError::InvalidToken)
    ));
    // Verified already: nothing more is sent.
    auth.send_verification_email(&verified).await.unwrap();
    auth.flush_background().await;
    assert_eq!(mail.len(), 2);
}

#[tokio::test]
async fn a_reset_ends_every_session_signs_nobody_in_and_notifies_the_owner() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db).await.mailer(mail.clone()).build();
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
        .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    auth.request_password_reset(" ADA@example.com ", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    let link = mail.sent()[0].clone();
    assert_eq!(link.subject, "Reset your password");
    let token = link.link_token().unwrap();

    assert!(matches!(
        auth.reset_password(&token, "short", &RequestContext::default())
            .await,
        Err(AuthError::InvalidInput {
            field: "password",
            ..
        })
    ));
    auth.reset_password(&token, "a brand new password", &RequestContext::default())
        .await
        .unwrap();
    for signed_in in [&first, &second] {
        assert!(
            auth.get_session(signed_in.tokens.access_token.expose())
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(count(&db, "SELECT count(*) AS n FROM sessions").await, 0);
    assert!(matches!(
        auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    auth.sign_in(
        "ada@example.com",
        "a brand new password",
        &RequestContext::default(),
    )
    .await
    .and_then(authingo::SignIn::signed_in)
    .unwrap();
    assert!(matches!(
        auth.reset_password(&token, "another new password", &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    auth.flush_background().await;
    let notice = mail
        .sent()
        .into_iter()
        .find(|m| m.link_token().is_none())
        .unwrap();
    assert_eq!(notice.subject, "Your password was changed");
    assert_eq!(notice.link_token(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_confirmations_exactly_one_wins() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let store = db
        .store_with(authingo::postgres::PoolConfig::default().max_size(20))
        .await;
    let auth = Arc::new(EngineBuilder::on(store).mailer(mail.clone()).build());
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    auth.request_password_reset("ada@example.com", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    let token = mail.sent()[0].link_token().unwrap();
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (auth, barrier, token) = (auth.clone(), barrier.clone(), token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                auth.reset_password(
                    &token,
                    &format!("new password number {i}"),
                    &RequestContext::default(),
                )
                .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(AuthError::InvalidToken) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM one_time_tokens").await,
        0
    );
}

#[tokio::test]
async fn expired_malformed_and_other_purpose_tokens_are_one_invalid_token() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let (store, statements) = counted_store(&db).await;
    let auth = EngineBuilder::on(store).mailer(mail.clone()).build();
    let ada = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    auth.send_verification_email(&ada.user).await.unwrap();
    auth.flush_background().await;
    let verification = mail.sent()[0].link_token().unwrap();

    // Malformed: refused before any statement.
    let before = statements.total();
    for garbage in ["", "x", "not a token", &"a".repeat(500), "\0"] {
        assert!(matches!(
            auth.verify_email(garbage, &RequestContext::default()).await,
            Err(AuthError::InvalidToken)
        ));
        assert!(matches!(
            auth.reset_password(garbage, "a brand new password", &RequestContext::default())
                .await,
            Err(AuthError::InvalidToken)
        ));
        assert!(matches!(
            auth.confirm_email_change(garbage, &RequestContext::default())
                .await,
            Err(AuthError::InvalidToken)
        ));
    }
    assert_eq!(statements.total(), before);

    // Another purpose: refused, and the token still works for its own.
    assert!(matches!(
        auth.reset_password(
            &verification,
            "a brand new password",
            &RequestContext::default()
        )
        .await,
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        auth.confirm_email_change(&verification, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    // Expired: written an hour into the past.
    exec(
        &mut db.conn().await,
        "UPDATE one_time_tokens SET expires_at = NOW() - INTERVAL '1 hour'",
    )
    .await;
    assert!(matches!(
        auth.verify_email(&verification, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    assert_eq!(
        auth.store()
            .clone()
            .one_time_tokens()
            .unwrap()
            .cleanup_expired_tokens()
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM one_time_tokens").await,
        0
    );
}

#[tokio::test]
async fn a_change_of_email_goes_to_the_new_address_and_tells_the_old_one() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db).await.mailer(mail.clone()).build();
    let ada = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    auth.sign_up(
        "taken@example.com",
        PASSWORD,
        "T",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "Ada@New.example",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "taken@example.com",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    auth.flush_background().await;
    // Each request: a link to the new address and a notice to the current one.
    let messages = mail.sent();
    // The second request voided the first link.
    let first = to(&messages, "ada@new.example").link_token().unwrap();
    assert!(matches!(
        auth.confirm_email_change(&first, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    let taken = to(&messages, "taken@example.com").link_token().unwrap();
    assert!(matches!(
        auth.confirm_email_change(&taken, &RequestContext::default())
            .await,
        Err(AuthError::EmailTaken)
    ));

    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "ada@new.example",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    auth.flush_background().await;
    // The new link: the one to the new address that is not the voided first.
    let link = mail
        .sent()
        .iter()
        .filter(|m| m.to == "ada@new.example")
        .filter_map(Message::link_token)
        .find(|token| *token != first)
        .unwrap();
    let moved = auth
        .confirm_email_change(&link, &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(moved.email, "ada@new.example");
    assert!(moved.email_verified);
    assert!(matches!(
        auth.confirm_email_change(&link, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    auth.flush_background().await;
    let messages = mail.sent();
    let notice = messages
        .iter()
        .find(|m| m.subject == "Your address was changed")
        .unwrap();
    // The new address masked, as at the request: a reader of the old mailbox learns not where
    // the account went.
    assert!(notice.text.contains("a***@n***.example"));
    assert!(!notice.text.contains("ada@new.example"));
    auth.sign_in("ada@new.example", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();

    // A stale session cannot ask.
    exec(
        &mut db.conn().await,
        "UPDATE sessions SET created_at = NOW() - INTERVAL '2 days'",
    )
    .await;
    let stale = auth
        .get_session(ada.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        auth.request_email_change(
            &stale,
            PASSWORD,
            "elsewhere@example.com",
            &RequestContext::default()
        )
        .await,
        Err(AuthError::ReauthenticationRequired)
    ));
}

/// Runs `work` as a task of its own and returns its outcome with the statements it sent itself.
async fn on_its_own_task<T: Send + 'static>(
    statements: &Statements,
    work: impl Future<Output = T> + Send + 'static,
) -> (T, usize) {
    let task = tokio::spawn(work);
    let id = task.id();
    let outcome = task.await.unwrap();
    (outcome, statements.by(id))
}

#[tokio::test]
async fn a_reset_request_does_the_same_work_for_any_address() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let (store, statements) = counted_store(&db).await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::on(store)
        .hasher(hasher.clone())
        .mailer(mail.clone())
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
    auth.ready().await.unwrap();
    let mut seen = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let hashes = hasher.count(&hasher.work);
        let auth2 = auth.clone();
        let (outcome, on_path) = on_its_own_task(&statements, async move {
            auth2
                .request_password_reset(email, &RequestContext::default())
                .await
        })
        .await;
        outcome.unwrap();
        seen.push((on_path, hasher.count(&hasher.work) - hashes));
    }
    // The per-email mail limit is counted for any address alike; nothing else, no hashing.
    assert_eq!(seen[0], seen[1]);
    assert_eq!(
        seen[0],
        (1, 0),
        "(statements, argon2 operations) on the request path"
    );
    auth.flush_background().await;
    // Only the account's owner got a link.
    let messages = mail.sent();
    assert_eq!(messages.len(), 1);
    to(&messages, "ada@example.com");
}

#[tokio::test]
async fn with_verification_required_sign_up_reveals_nothing_and_sign_in_waits_for_it() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let (store, statements) = counted_store(&db).await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::on(store)
        .hasher(hasher.clone())
        .mailer(mail.clone())
        .verification_required()
        .build();
    auth.ready().await.unwrap();
    let mut seen = Vec::new();
    for (email, password) in [
        ("ada@example.com", PASSWORD),
        ("ada@example.com", "another password"),
    ] {
        let hashes = hasher.count(&hasher.work);
        let auth2 = auth.clone();
        let (outcome, on_path) = on_its_own_task(&statements, async move {
            auth2
                .sign_up(email, password, "Ada", &RequestContext::default())
                .await
        })
        .await;
        assert!(
            matches!(outcome, Ok(SignUp::VerificationSent)),
            "{outcome:?}"
        );
        seen.push((on_path, hasher.count(&hasher.work) - hashes));
        // The account is written off the request path: the second sign-up must find it.
        auth.flush_background().await;
    }
    // New and taken: one hash and no statement on the request path each (the insert, whose
    // commit only a new address pays for, runs on a task of its own).
    assert_eq!(seen, [(0, 1), (0, 1)]);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM users").await, 1);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM sessions").await, 0);
    let messages = mail.sent();
    let mut subjects: Vec<_> = messages.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Someone tried to sign up with your address",
            "Verify your address"
        ]
    );
    let first = messages
        .iter()
        .find_map(Message::link_token)
        .expect("the verification link");

    // Unverified: the right password is refused as a wrong one is, so that the answer tells
    // nothing to whoever chose it at sign-up; the owner gets a fresh link.
    for password in ["wrong password", PASSWORD] {
        assert!(matches!(
            auth.sign_in("ada@example.com", password, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    auth.flush_background().await;
    let reminded = mail.sent();
    assert_eq!(reminded.last().unwrap().subject, "Verify your address");
    let link = reminded
        .last()
        .and_then(Message::link_token)
        .expect("a fresh link");
    // The fresh link voided the first.
    assert!(matches!(
        auth.verify_email(&first, &RequestContext::default()).await,
        Err(AuthError::InvalidToken)
    ));
    auth.verify_email(&link, &RequestContext::default())
        .await
        .unwrap();
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn a_reset_with_a_random_token_spends_no_password_hash() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .ready()
        .await;
    let hashes = hasher.count(&hasher.hashes);
    for _ in 0..3 {
        let random = authingo::token::Token::generate(authingo::token::TokenKind::OneTime).unwrap();
        let refused = auth
            .reset_password(
                random.expose(),
                "a brand new password",
                &RequestContext::default(),
            )
            .await;
        assert!(
            matches!(refused, Err(AuthError::InvalidToken)),
            "{refused:?}"
        );
    }
    assert_eq!(hasher.count(&hasher.hashes), hashes);
    assert_eq!(auth.hashes_admitted(), 0);
}
