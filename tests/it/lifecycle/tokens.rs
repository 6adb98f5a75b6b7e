//! Every outstanding link of a user dies with the events that should end them, and a reset link
//! only works for the address it was mailed to.

use authingo::{RequestContext, SignUp};
use std::sync::Arc;

use authingo::mail::CapturingMailer;
use authingo::{Auth, AuthError, SignedIn, TokenPurpose};

use super::{issue, tokens_of};
use crate::support::{EngineBuilder, PASSWORD, TestDb, count, current, exec};

/// The raw tokens a user holds, one of each purpose.
struct Links {
    verify: String,
    reset: String,
    change: String,
    cancel: String,
}

async fn every_link(auth: &Auth, signed_in: &SignedIn, new_email: &str) -> Links {
    let (user, email) = (&signed_in.user, signed_in.user.email.as_str());
    Links {
        verify: issue(auth, user, TokenPurpose::VerifyEmail, Some(email)).await,
        reset: issue(auth, user, TokenPurpose::ResetPassword, Some(email)).await,
        change: issue(auth, user, TokenPurpose::ChangeEmail, Some(new_email)).await,
        cancel: issue(auth, user, TokenPurpose::CancelEmailChange, Some(email)).await,
    }
}

/// Each link of `links` but `used` is refused.
async fn all_refused(auth: &Auth, links: &Links, used: &str) {
    for (name, token) in [
        ("verify", &links.verify),
        ("reset", &links.reset),
        ("change", &links.change),
        ("cancel", &links.cancel),
    ] {
        if token == used {
            continue;
        }
        let refused = match name {
            "verify" => auth
                .verify_email(token, &RequestContext::default())
                .await
                .err(),
            "reset" => auth
                .reset_password(token, "a brand new password", &RequestContext::default())
                .await
                .err(),
            "change" => auth
                .confirm_email_change(token, &RequestContext::default())
                .await
                .err(),
            _ => auth
                .cancel_email_change(token, &RequestContext::default())
                .await
                .err(),
        };
        assert!(
            matches!(refused, Some(AuthError::InvalidToken)),
            "the {name} link outlived the event: {refused:?}"
        );
    }
}

#[tokio::test]
async fn every_link_of_a_user_dies_with_a_reset_a_password_change_a_sign_out_everywhere_and_an_email_change()
 {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db).await.mailer(mail.clone()).build();
    let events = [
        "reset",
        "change password",
        "sign out everywhere",
        "end every session (admin)",
        "change of email",
    ];
    for (i, event) in events.into_iter().enumerate() {
        let email = format!("user{i}@example.com");
        let new_email = format!("moved{i}@example.com");
        let signed_in = auth
            .sign_up(&email, PASSWORD, "Ada", &RequestContext::default())
            .await
            .and_then(SignUp::signed_in)
            .unwrap();
        let links = every_link(&auth, &signed_in, &new_email).await;
        let used = match event {
            "reset" => {
                auth.reset_password(
                    &links.reset,
                    "a brand new password",
                    &RequestContext::default(),
                )
                .await
                .unwrap();
                links.reset.clone()
            }
            "change password" => {
                auth.change_password(&current(&signed_in), PASSWORD, "a brand new password", true)
                    .await
                    .unwrap();
                String::new()
            }
            "sign out everywhere" => {
                auth.revoke_all_sessions(&current(&signed_in))
                    .await
                    .unwrap();
                String::new()
            }
            "end every session (admin)" => {
                auth.revoke_user_sessions(&signed_in.user.id).await.unwrap();
                String::new()
            }
            _ => {
                auth.confirm_email_change(&links.change, &RequestContext::default())
                    .await
                    .unwrap();
                links.change.clone()
            }
        };
        assert_eq!(tokens_of(&db, &signed_in.user).await, 0, "after: {event}");
        all_refused(&auth, &links, &used).await;
    }
}

#[tokio::test]
async fn ending_the_other_sessions_keeps_the_links() {
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
    every_link(&auth, &ada, "new@example.com").await;
    auth.revoke_other_sessions(&current(&ada)).await.unwrap();
    assert_eq!(tokens_of(&db, &ada.user).await, 4);
}

#[tokio::test]
async fn a_reset_link_works_only_for_the_address_it_was_mailed_to() {
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
    auth.request_password_reset("ada@example.com", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    let reset = mail.sent_to("ada@example.com")[0].link_token().unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM one_time_tokens \
             WHERE purpose = 'reset_password' AND email = 'ada@example.com'"
        )
        .await,
        1
    );

    // The address moves by a path that left the link in place (the application's own code).
    exec(
        &mut db.conn().await,
        &format!(
            "UPDATE users SET email = 'elsewhere@example.com' WHERE id = '{}'",
            ada.user.id
        ),
    )
    .await;
    assert!(matches!(
        auth.reset_password(&reset, "a brand new password", &RequestContext::default())
            .await,
        Err(AuthError::InvalidToken)
    ));
    auth.sign_in(
        "elsewhere@example.com",
        PASSWORD,
        &RequestContext::default(),
    )
    .await
    .and_then(authingo::SignIn::signed_in)
    .unwrap();
}
