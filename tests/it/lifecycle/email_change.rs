//! A change of email: it takes the current password, counted as a sign-in attempt, and the old
//! address hears of it at once, with a link that cancels it.

use authingo::{RequestContext, SignUp};
use std::sync::Arc;

use authingo::AuthError;
use authingo::mail::CapturingMailer;

use super::tokens_of;
use crate::support::{EngineBuilder, FAST, PASSWORD, TestDb, Watched, current, sign_in_failures};

#[tokio::test]
async fn a_change_of_email_needs_the_current_password_and_a_wrong_one_counts_as_a_failed_sign_in() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(None)
        .mailer(mail.clone())
        .ready()
        .await;
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

    assert!(matches!(
        auth.request_email_change(
            &current(&ada),
            "",
            "thief@example.com",
            &RequestContext::default()
        )
        .await,
        Err(AuthError::InvalidInput {
            field: "current_password",
            ..
        })
    ));
    let verifies = hasher.count(&hasher.verifies);
    assert!(matches!(
        auth.request_email_change(
            &current(&ada),
            "a guessed password",
            "thief@example.com",
            &RequestContext::default()
        )
        .await,
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(hasher.count(&hasher.verifies) - verifies, 1);
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 1);
    auth.flush_background().await;
    assert!(
        mail.sent().is_empty(),
        "nothing is mailed for a wrong password"
    );
    assert_eq!(tokens_of(&db, &ada.user).await, 0);

    // The right one: one verification, the failures cleared, the links sent.
    let verifies = hasher.count(&hasher.verifies);
    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "ada@new.example",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    assert_eq!(hasher.count(&hasher.verifies) - verifies, 1);
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 0);
    auth.flush_background().await;
    assert_eq!(mail.sent_to("ada@new.example").len(), 1);
}

#[tokio::test]
async fn a_change_of_email_stops_at_the_sign_in_lock_of_the_account() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(None)
        .sign_in_throttle(Some(
            authingo::SignInThrottle::default()
                .free_failures(0)
                .lock_after(Some(1)),
        ))
        .mailer(mail.clone())
        .ready()
        .await;
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
    assert!(matches!(
        auth.sign_in(
            "ada@example.com",
            "a guessed password",
            &RequestContext::default()
        )
        .await
        .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    // Locked by failed sign-ins: the right password does not get through the change of email
    // either, and is not even checked.
    let verifies = hasher.count(&hasher.verifies);
    assert!(matches!(
        auth.request_email_change(
            &current(&ada),
            PASSWORD,
            "thief@example.com",
            &RequestContext::default()
        )
        .await,
        Err(AuthError::AccountLocked)
    ));
    assert_eq!(hasher.count(&hasher.verifies), verifies);
}

#[tokio::test]
async fn the_old_address_hears_of_a_change_at_once_with_the_new_one_masked_and_can_cancel_it() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
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
    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "thief@evil.example",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    auth.flush_background().await;

    let notices = mail.sent_to("ada@example.com");
    assert_eq!(
        notices.len(),
        1,
        "the old address is told before any confirmation"
    );
    let notice = &notices[0];
    assert!(notice.text.contains("t***@e***.example"), "{}", notice.text);
    assert!(!notice.text.contains("thief"), "the new address is masked");
    assert!(!notice.text.contains("evil"), "the new address is masked");
    let cancel = notice.link_token().unwrap();
    assert!(
        notice
            .link
            .as_deref()
            .unwrap()
            .starts_with("http://localhost:8080/cancel-email-change?token=")
    );
    let change = mail.sent_to("thief@evil.example")[0].link_token().unwrap();

    auth.cancel_email_change(&cancel, &RequestContext::default())
        .await
        .unwrap();
    assert!(matches!(
        auth.confirm_email_change(&change, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        auth.cancel_email_change(&cancel, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    assert_eq!(tokens_of(&db, &ada.user).await, 0);
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();

    // A cancel link of a change already confirmed is dead: the change of email ended it.
    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "ada@new.example",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    auth.flush_background().await;
    let cancel = mail
        .last_to("ada@example.com")
        .unwrap()
        .link_token()
        .unwrap();
    let change = mail.sent_to("ada@new.example")[0].link_token().unwrap();
    auth.confirm_email_change(&change, &RequestContext::default())
        .await
        .unwrap();
    assert!(matches!(
        auth.cancel_email_change(&cancel, &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
}
