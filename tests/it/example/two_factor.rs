//! The second factor on the demo page in headless Chromium, with the codes of an authenticator app
//! computed by `oathtool`: enable it (the QR code drawn), confirm it (the recovery codes shown),
//! then sign in with a code, and again with a recovery code; a wrong code is refused.

use std::time::Instant;

use serde_json::json;

use super::ExampleServer;
use super::browser::{Page, answer, in_browser};
use crate::support::{PASSWORD, code_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_enrols_and_signs_in_with_a_code_and_a_recovery_code() {
    let started = Instant::now();
    // No `AUTHINGO_ENCRYPTION_KEY`: the key drawn at start serves this one server's life.
    let server = ExampleServer::start().await;
    in_browser(|page| walk_through_the_second_factor(page, server.url(""))).await;
    eprintln!(
        "browser walk through the second factor took {:?}",
        started.elapsed()
    );
}

async fn walk_through_the_second_factor(mut page: Page, base: String) {
    page.goto(&format!("{base}/")).await;
    page.fill("name", "Ada").await;
    page.fill("email", "ada@example.com").await;
    page.fill("password", PASSWORD).await;
    let shown = page.click("sign-up").await;
    assert!(shown.starts_with("POST /api/auth/sign-up → 200"), "{shown}");

    let secret = enable(&mut page).await;
    let recovery_codes = confirm(&mut page, &secret).await;

    sign_out_and_in(&mut page).await;
    page.fill("code", &wrong_code(&secret)).await;
    let shown = page.click("verify-two-factor").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/verify → 401"),
        "a wrong code: {shown}"
    );
    assert_eq!(answer(&shown)["error"], json!("invalid_code"), "{shown}");
    assert_signed_out(&mut page).await;

    // A step on from the confirmation's: that step is spent.
    page.fill("code", &code_in(&secret, 1)).await;
    let shown = page.click("verify-two-factor").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/verify → 200"),
        "{shown}"
    );
    assert_eq!(
        answer(&shown)["user"]["email"],
        json!("ada@example.com"),
        "{shown}"
    );
    assert_signed_in(&mut page).await;

    sign_out_and_in(&mut page).await;
    page.fill("recovery-code", &recovery_codes[0]).await;
    let shown = page.click("verify-recovery-code").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/verify → 200"),
        "{shown}"
    );
    assert_signed_in(&mut page).await;

    sign_out_and_in(&mut page).await;
    let shown = page.click("verify-recovery-code").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/verify → 401"),
        "a recovery code works once: {shown}"
    );
    assert_eq!(answer(&shown)["error"], json!("invalid_code"), "{shown}");
    assert_signed_out(&mut page).await;
    page.fill("recovery-code", &recovery_codes[1]).await;
    let shown = page.click("verify-recovery-code").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/verify → 200"),
        "another recovery code: {shown}"
    );
    assert_signed_in(&mut page).await;
}

/// Enables the second factor with the password; checks the answer and the QR code drawn, and
/// returns the secret.
async fn enable(page: &mut Page) -> String {
    page.fill("two-factor-password", PASSWORD).await;
    let shown = page.click("enable-two-factor").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/enable → 200"),
        "{shown}"
    );
    let enrolment = answer(&shown);
    let secret = enrolment["secret"].as_str().unwrap_or_default().to_owned();
    assert_eq!(secret.len(), 32, "160 bits in base32: {shown}");
    let uri = enrolment["otpauth_uri"].as_str().unwrap_or_default();
    assert!(uri.starts_with("otpauth://totp/"), "{shown}");
    assert!(uri.contains(&format!("secret={secret}")), "{shown}");
    // Parsed into the page as an SVG element, with its modules drawn.
    assert_eq!(page.count("#qr > svg").await, 1, "the QR code is shown");
    assert!(
        page.count("#qr > svg path").await > 0,
        "the QR code is drawn"
    );
    secret
}

/// Confirms the second factor with the app's code now; returns the recovery codes shown.
async fn confirm(page: &mut Page, secret: &str) -> Vec<String> {
    page.fill("code", &code_in(secret, 0)).await;
    let shown = page.click("confirm-two-factor").await;
    assert!(
        shown.starts_with("POST /api/auth/two-factor/confirm → 200"),
        "{shown}"
    );
    let codes: Vec<String> = answer(&shown)["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no recovery codes: {shown}"))
        .iter()
        .filter_map(|code| code.as_str().map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 10, "{shown}");
    assert_eq!(
        page.count("#qr *").await,
        0,
        "the QR code goes once confirmed"
    );
    codes
}

/// Signs out, then in with the password: the answer asks for the second factor.
async fn sign_out_and_in(page: &mut Page) {
    let shown = page.click("sign-out").await;
    assert!(
        shown.starts_with("POST /api/auth/sign-out → 200"),
        "{shown}"
    );
    let shown = page.click("sign-in").await;
    assert!(shown.starts_with("POST /api/auth/sign-in → 200"), "{shown}");
    assert_eq!(
        answer(&shown),
        json!({"two_factor_required": true}),
        "{shown}"
    );
    assert_no_cookie_in_reach(page).await;
    assert_signed_out(page).await;
}

/// The password alone opened no session.
async fn assert_signed_out(page: &mut Page) {
    let shown = page.click("session").await;
    assert!(
        shown.starts_with("GET /api/auth/session → 401"),
        "no session before the second factor: {shown}"
    );
}

async fn assert_signed_in(page: &mut Page) {
    assert_no_cookie_in_reach(page).await;
    let shown = page.click("session").await;
    assert!(shown.starts_with("GET /api/auth/session → 200"), "{shown}");
    assert_eq!(
        answer(&shown)["user"]["two_factor_enabled"],
        json!(true),
        "{shown}"
    );
}

/// The challenge and session cookies are HttpOnly: the page's script cannot read them.
async fn assert_no_cookie_in_reach(page: &Page) {
    let cookies = page
        .browser
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(cookies, json!(""));
}

/// A code of six digits that the app shows at no step the server could accept now.
fn wrong_code(secret: &str) -> String {
    let near: Vec<String> = (-2..=2).map(|steps| code_in(secret, steps)).collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .unwrap_or_default()
}
