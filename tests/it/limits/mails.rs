//! Links and mails as an abuse vector: every use of a link's token is counted per client
//! address, one account cannot mail any number of strangers, and a sign-up that mails a taken
//! address stays within that address's mail limit, with its answer unchanged.

use authingo::mail::CapturingMailer;
use authingo::{SignUp, SignedIn};

use super::*;
use crate::support::{EngineBuilder, PASSWORD, TestDb, Watched, current};

async fn signed_up(auth: &Auth, email: &str) -> SignedIn {
    auth.sign_up(email, PASSWORD, "Ada", &RequestContext::default())
        .await
        .and_then(SignUp::signed_in)
        .unwrap()
}

#[tokio::test]
async fn every_token_route_counts_on_the_clients_token_limit_before_any_work() {
    let db = TestDb::new().await;
    let hasher = Watched::new(crate::support::FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .rate_limits(Some(
            RateLimits::default().token(Some(RateLimit::new(4, FIVE_MINUTES))),
        ))
        .ready()
        .await;
    let stranger = from("198.51.100.9");
    let bogus = "Bogus0123456789Bogus0123456789Bogus0123456";
    // Four uses of random tokens, one per route: each an invalid token.
    assert!(matches!(
        auth.verify_email(bogus, &stranger).await,
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        auth.confirm_email_change(bogus, &stranger).await,
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        auth.cancel_email_change(bogus, &stranger).await,
        Err(AuthError::InvalidToken)
    ));
    let _ = auth
        .reset_password(bogus, "a brand new password", &stranger)
        .await;
    // The fifth is refused whatever the route, and a reset then hashes nothing.
    let work = hasher.count(&hasher.work);
    retry_after(
        auth.reset_password(bogus, "a brand new password", &stranger)
            .await,
    );
    retry_after(auth.verify_email(bogus, &stranger).await);
    assert_eq!(hasher.count(&hasher.work), work);
    // Another address has its own count.
    assert!(matches!(
        auth.verify_email(bogus, &from("203.0.113.7")).await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn one_account_cannot_mail_any_number_of_new_addresses() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db).await.mailer(mail.clone()).build();
    let ada = signed_up(&auth, "ada@example.com").await;
    // The default allows five changes of email an hour per account, each to a new address.
    for n in 0..5 {
        auth.request_email_change(
            &current(&ada),
            PASSWORD,
            &format!("stranger{n}@example.net"),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    }
    let refused = auth
        .request_email_change(
            &current(&ada),
            PASSWORD,
            "stranger5@example.net",
            &RequestContext::default(),
        )
        .await;
    retry_after(refused);
    auth.flush_background().await;
    assert!(mail.sent_to("stranger5@example.net").is_empty());
    let strangers = mail
        .sent()
        .iter()
        .filter(|message| message.to.starts_with("stranger"))
        .count();
    assert_eq!(strangers, 5);
}

#[tokio::test]
async fn a_change_of_email_counts_the_clients_mail_limit() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(Some(
            RateLimits::default().mail_per_address(Some(RateLimit::new(1, FIVE_MINUTES))),
        ))
        .build();
    let ada = signed_up(&auth, "ada@example.com").await;
    let client = from("198.51.100.9");
    auth.request_email_change(&current(&ada), PASSWORD, "one@example.net", &client)
        .await
        .unwrap();
    retry_after(
        auth.request_email_change(&current(&ada), PASSWORD, "two@example.net", &client)
            .await,
    );
}

#[tokio::test]
async fn sign_ups_of_a_taken_address_mail_its_owner_within_the_mail_limit_and_answer_the_same() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .verification_required()
        .build();
    let anyone = RequestContext::default();
    let sign_up = || auth.sign_up("ada@example.com", PASSWORD, "Ada", &anyone);
    assert!(matches!(sign_up().await, Ok(SignUp::VerificationSent)));
    auth.flush_background().await;
    // Ten more sign-ups of the now taken address: each answers as the first did...
    for _ in 0..10 {
        assert!(matches!(sign_up().await, Ok(SignUp::VerificationSent)));
    }
    auth.flush_background().await;
    // ...and the owner gets mail only within the address's limit (2 an hour by default): the
    // link, then two notices, counted apart from the links so that they do not spend them.
    let subjects: Vec<_> = mail
        .sent_to("ada@example.com")
        .into_iter()
        .map(|message| message.subject)
        .collect();
    assert_eq!(
        subjects,
        [
            "Verify your address",
            "Someone tried to sign up with your address",
            "Someone tried to sign up with your address",
        ]
    );
    // The owner's own link is still within its budget.
    auth.resend_verification("ada@example.com", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    assert_eq!(mail.sent_to("ada@example.com").len(), 4);
}
