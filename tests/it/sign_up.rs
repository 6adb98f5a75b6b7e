//! Enumeration-safe sign-up (email verification required), against the real database, with the
//! mail captured: the request answers before the account is written, so a new address and a taken
//! one cost the same; what the answer can no longer report is logged. (The timing itself is
//! measured by the bench's `signup-timing` section, not here.)

use std::sync::Arc;

use authingo::auth::{RequestContext, SignUp};
use authingo::mail::CapturingMailer;

use crate::support::{EngineBuilder, PASSWORD, TestDb, capture_logs, exec, rows};

#[tokio::test]
async fn with_verification_required_a_failed_account_write_is_logged_not_answered() {
    let mail = Arc::new(CapturingMailer::new());
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .verification_required()
        .build();
    // Every new row of users fails, as a lost primary or a full disk would make the insert.
    exec(
        &mut db.conn().await,
        "ALTER TABLE users ADD CONSTRAINT refuse_every_row CHECK (false) NOT VALID",
    )
    .await;
    let (logs, _guard) = capture_logs();
    let outcome = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await;
    // The answer a taken address gets: a 503 here would tell that the address was new.
    assert!(
        matches!(outcome, Ok(SignUp::VerificationSent)),
        "{outcome:?}"
    );
    auth.flush_background().await;
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sign-up not stored"), "{logs}");
    assert!(logs.contains("user.id=\"usr_"), "{logs}");
    assert!(!logs.contains("ada@"), "an address in the log: {logs}");
    assert_eq!(rows(&db, "users").await, 0);
    assert!(mail.is_empty(), "{} sent", mail.len());
}
