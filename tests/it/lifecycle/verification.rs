//! Verification cannot dead-end: a new link by email, without a session and without telling
//! who has an account; a reset through a mailed link verifies the address.

use std::sync::Arc;

use authingo::auth::{RequestContext, SignUp};
use authingo::mail::{CapturingMailer, Message};
use authingo::{Auth, AuthError};

use crate::support::{EngineBuilder, FAST, PASSWORD, TestDb, Watched, counted_store, exec};

#[tokio::test]
async fn an_unverified_user_whose_link_expired_gets_a_new_one_by_email_without_a_session() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .verification_required()
        .build();
    let signed_up = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .unwrap();
    assert!(matches!(signed_up, SignUp::VerificationSent));
    auth.flush_background().await;
    let expired = mail.sent_to("ada@example.com")[0].link_token().unwrap();
    exec(
        &mut db.conn().await,
        "UPDATE one_time_tokens SET expires_at = NOW() - INTERVAL '1 minute'",
    )
    .await;
    assert!(matches!(
        auth.verify_email(&expired, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));

    auth.resend_verification(" ADA@example.com ", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    let messages = mail.sent_to("ada@example.com");
    assert_eq!(messages.len(), 2);
    let fresh = messages[1].link_token().unwrap();
    assert!(
        auth.verify_email(&fresh, &RequestContext::default())
            .await
            .unwrap()
            .email_verified
    );
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn a_resend_request_does_the_same_work_for_any_address_and_mails_only_the_unverified() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let (store, statements) = counted_store(&db).await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::on(store)
        .hasher(hasher.clone())
        .mailer(mail.clone())
        .verification_required()
        .ready()
        .await;
    for email in ["ada@example.com", "bob@example.com"] {
        auth.sign_up(email, PASSWORD, "A", &RequestContext::default())
            .await
            .unwrap();
    }
    auth.flush_background().await;
    let bob = mail.sent_to("bob@example.com")[0].link_token().unwrap();
    auth.verify_email(&bob, &RequestContext::default())
        .await
        .unwrap();
    let before = mail.sent().len();

    let mut seen = Vec::new();
    for email in ["ada@example.com", "bob@example.com", "nobody@example.com"] {
        let hashes = hasher.count(&hasher.work);
        let task = tokio::spawn({
            let auth = auth.clone();
            async move {
                auth.resend_verification(email, &RequestContext::default())
                    .await
            }
        });
        let id = task.id();
        task.await.unwrap().unwrap();
        seen.push((statements.by(id), hasher.count(&hasher.work) - hashes));
    }
    // Unverified, verified, unknown: the per-email mail limit only, no hashing.
    assert_eq!(seen, [(1, 0), (1, 0), (1, 0)]);
    auth.flush_background().await;
    let sent = &mail.sent()[before..];
    assert_eq!(sent.len(), 1, "only the unverified address gets a link");
    assert_eq!(sent[0].to, "ada@example.com");
    assert!(matches!(
        auth.resend_verification("not an address", &RequestContext::default())
            .await,
        Err(AuthError::InvalidInput { field: "email", .. })
    ));
}

/// An engine that requires verification, mailing into a capture, and Ada signed up on it.
async fn ada_signed_up_unverified(db: &TestDb) -> (Auth, Arc<CapturingMailer>) {
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(db)
        .await
        .mailer(mail.clone())
        .verification_required()
        .build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    // The account is written off the request path: a reset asked now could look Ada up first.
    auth.flush_background().await;
    (auth, mail)
}

#[tokio::test]
async fn a_completed_reset_through_a_mailed_link_verifies_the_address() {
    let db = TestDb::new().await;
    let (auth, mail) = ada_signed_up_unverified(&db).await;
    auth.request_password_reset("ada@example.com", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    let reset = mail
        .sent_to("ada@example.com")
        .iter()
        .find(|m| m.subject == "Reset your password")
        .and_then(Message::link_token)
        .unwrap();
    auth.reset_password(&reset, "a brand new password", &RequestContext::default())
        .await
        .unwrap();
    let signed_in = auth
        .sign_in(
            "ada@example.com",
            "a brand new password",
            &RequestContext::default(),
        )
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert!(signed_in.user.email_verified);
}

#[tokio::test]
async fn the_verification_mail_tells_a_stranger_to_ignore_it() {
    let db = TestDb::new().await;
    let (auth, mail) = ada_signed_up_unverified(&db).await;
    auth.flush_background().await;
    let text = &mail.sent_to("ada@example.com")[0].text;
    assert!(
        text.contains("If you did not sign up") && text.contains("ignore this message"),
        "{text}"
    );
}
