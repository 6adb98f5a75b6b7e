//! The links the example server mails, followed in headless Chromium: the example sends through a
//! real SMTP server (aiosmtpd, `SMTP_PORT`), and the test takes each link from the mail that
//! arrived. Verify the address; then forget the password, follow the reset link, choose a new
//! password on the page and sign in with it.

use std::sync::Arc;
use std::time::Instant;

use authingo_test_db::{Received, SmtpServer};
use fantoccini::Locator;

use super::ExampleServer;
use super::browser::{NEW_PASSWORD, Page, in_browser};
use crate::support::PASSWORD;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_verifies_an_address_and_resets_a_password_from_mailed_links() {
    let started = Instant::now();
    let smtp = Arc::new(SmtpServer::start());
    let port = smtp.port().to_string();
    let server = ExampleServer::start_with(&[("SMTP_PORT", &port)]).await;
    in_browser(|page| follow_the_links(page, server.url(""), smtp)).await;
    eprintln!(
        "browser walk through the mailed links took {:?}",
        started.elapsed()
    );
}

async fn follow_the_links(mut page: Page, base: String, smtp: Arc<SmtpServer>) {
    page.goto(&format!("{base}/")).await;
    page.fill("name", "Ada").await;
    page.fill("email", "ada@example.com").await;
    page.fill("password", PASSWORD).await;
    let shown = page.click("sign-up").await;
    assert!(shown.starts_with("POST /api/auth/sign-up → 200"), "{shown}");
    assert!(shown.contains(r#""email_verified": false"#), "{shown}");

    let shown = page.click("send-verification").await;
    assert!(
        shown.starts_with("POST /api/auth/send-verification-email → 200"),
        "{shown}"
    );
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Verify your address")
    );
    let link = link_in(&mail);
    assert!(
        link.starts_with(&format!("{base}/verify-email?token=")),
        "the link leads to this server: {link}"
    );
    page.goto(&link).await;
    assert!(page.shows("verify-view").await);
    assert!(!page.shows("reset-view").await);
    let shown = page.click("verify-email").await;
    assert!(
        shown.starts_with("POST /api/auth/verify-email → 200"),
        "{shown}"
    );
    assert!(shown.contains(r#""email_verified": true"#), "{shown}");
    assert!(!page.shows("verify-view").await, "a used link's view goes");
    assert_eq!(page.url().await, format!("{base}/"), "and its token");

    let shown = page.click("sign-out").await;
    assert!(
        shown.starts_with("POST /api/auth/sign-out → 200"),
        "{shown}"
    );
    page.fill("email", "ada@example.com").await;
    let shown = page.click("forgot-password").await;
    assert!(
        shown.starts_with("POST /api/auth/request-password-reset → 200"),
        "{shown}"
    );
    let mail = smtp.wait_for(2).await.remove(1);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Reset your password")
    );
    let link = link_in(&mail);
    assert!(
        link.starts_with(&format!("{base}/reset-password?token=")),
        "{link}"
    );

    page.goto(&link).await;
    assert!(page.shows("reset-view").await);
    page.fill("reset-new-password", NEW_PASSWORD).await;
    let shown = page.click("reset-password").await;
    assert!(
        shown.starts_with("POST /api/auth/reset-password → 200"),
        "{shown}"
    );
    let shown = page.click("me").await;
    assert!(
        shown.starts_with("GET /api/me → 401"),
        "a reset signs nobody in: {shown}"
    );
    let notice = smtp.wait_for(3).await.remove(2);
    assert_eq!(
        notice.header("Subject").as_deref(),
        Some("Your password was changed")
    );

    page.fill("email", "ada@example.com").await;
    page.fill("password", PASSWORD).await;
    let shown = page.click("sign-in").await;
    assert!(
        shown.starts_with("POST /api/auth/sign-in → 401"),
        "the old password: {shown}"
    );
    page.fill("password", NEW_PASSWORD).await;
    let shown = page.click("sign-in").await;
    assert!(shown.starts_with("POST /api/auth/sign-in → 200"), "{shown}");
    let shown = page.click("me").await;
    assert!(shown.starts_with("GET /api/me → 200"), "{shown}");
    assert!(shown.contains("Hello, Ada!"), "{shown}");
}

/// The link in a message's body: the word that carries its token.
fn link_in(mail: &Received) -> String {
    let body = mail.body();
    let link = body
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("token="))
        .unwrap_or_else(|| panic!("no link in {body}"));
    assert_eq!(mail.token().as_deref(), link.split("token=").nth(1));
    link.to_owned()
}

impl Page {
    /// The address in the browser's address bar.
    async fn url(&self) -> String {
        self.browser.current_url().await.unwrap().to_string()
    }

    /// Whether the element `id` is shown.
    async fn shows(&self, id: &str) -> bool {
        let element = self.browser.find(Locator::Id(id)).await.unwrap();
        element.is_displayed().await.unwrap()
    }
}
