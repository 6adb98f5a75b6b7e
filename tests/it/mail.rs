//! The SMTP mailer against a real SMTP server (aiosmtpd): it mails exactly the address it is
//! given, or nothing; and a mail server that is down changes none of the engine's answers.

use std::sync::Arc;

use authingo::mail::{InvalidRecipient, Mailer as _, Message, SmtpMailer, SmtpSecurity};
use authingo::{RequestContext, SignUp};
use authingo_test_db::SmtpServer;

use crate::support::{EngineBuilder, PASSWORD, TestDb, current, smtp_mailer};

fn message(to: &str) -> Message {
    Message {
        to: to.to_owned(),
        subject: "Verify your address".to_owned(),
        text: "Follow this link.".to_owned(),
        html: Some("<p>Follow this link.</p>".to_owned()),
        link: None,
    }
}

#[tokio::test]
async fn a_recipient_the_mailer_reads_as_another_address_gets_nothing() {
    let smtp = SmtpServer::start();
    let mailer = SmtpMailer::new(
        "127.0.0.1",
        smtp.port(),
        SmtpSecurity::None,
        None,
        "no-reply@example.com",
    )
    .unwrap();
    for to in [
        // A mailbox parser stops at the `>`: today's mail went to ada@evil.example.
        "ada@evil.example>.corp.example",
        // Two recipients, or a display name with another address.
        "ada@evil.example, boss@corp.example",
        "Ada <ada@evil.example>",
        "ada@evil.example (boss@corp.example)",
        " ada@evil.example",
        "ada@evil.example\r\nBcc: boss@corp.example",
        "not an address",
    ] {
        let err = mailer.send(message(to)).await.unwrap_err();
        assert!(
            err.0.downcast_ref::<InvalidRecipient>().is_some(),
            "{to:?}: {err:?}"
        );
        // What the engine logs names no part of the address.
        let logged = format!("{err} {err:?}");
        for part in ["ada", "evil", "boss", "corp", "@"] {
            assert!(!logged.contains(part), "{to:?}: {logged}");
        }
    }
    // The one address that is exactly itself is mailed, and it is the only mail.
    mailer.send(message("ada@example.com")).await.unwrap();
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].header("To").as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn a_mail_server_that_is_down_changes_no_answer() {
    let smtp = SmtpServer::start();
    let port = smtp.port();
    drop(smtp);
    let db = TestDb::new().await;
    let down = Arc::new(
        SmtpMailer::new(
            "127.0.0.1",
            port,
            SmtpSecurity::None,
            None,
            "no-reply@example.com",
        )
        .unwrap(),
    );
    let auth = EngineBuilder::over(&db).await.mailer(down).build();
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
    auth.send_verification_email(&ada.user).await.unwrap();
    auth.request_email_change(
        &current(&ada),
        PASSWORD,
        "new@example.com",
        &RequestContext::default(),
    )
    .await
    .unwrap();
    // The failures were logged off the request path; the engine carries on.
    auth.flush_background().await;
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
}

#[tokio::test]
async fn a_reset_mail_arrives_as_plain_text_and_html_naming_the_product() {
    let smtp = SmtpServer::start();
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(smtp_mailer(&smtp))
        .with(|options| options.product_name("Example & Co"))
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
    auth.request_password_reset("ada@example.com", &RequestContext::default())
        .await
        .unwrap();
    auth.flush_background().await;
    let messages = smtp.wait_for(1).await;
    let reset = &messages[0];
    assert_eq!(
        reset.header("Subject").as_deref(),
        Some("Reset your password")
    );
    let content_type = reset.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let body = reset.body();
    assert!(body.contains("Content-Type: text/plain"), "{body}");
    assert!(body.contains("Content-Type: text/html"), "{body}");
    let token = reset.token().expect("a link in the text part");
    // The link once in the text, and in the HTML as a link whose text is itself; the product
    // named in each part, escaped in the HTML.
    assert_eq!(body.matches(token.as_str()).count(), 3, "{body}");
    assert!(body.contains("your Example & Co account"), "{body}");
    assert!(body.contains("your Example &amp; Co account"), "{body}");
    assert!(
        body.contains(&format!(
            "<a href=\"http://localhost:8080/reset-password?token={token}\">"
        )),
        "{body}"
    );
}
