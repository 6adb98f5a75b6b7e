//! What an address means: one that a mail library, a proxy or a person can take for another is
//! refused on every route that takes an address, before anything is stored; and one address has
//! one spelling.

use reqwest::StatusCode;
use serde_json::json;

use super::app::default_server;
use super::reply::Tokens;
use super::server::TestServer;
use crate::support::{PASSWORD, TestDb, rows};

/// Addresses a mail library, a proxy or a person reads as another address (or several), each
/// with a word of the reason the answer must give.
const AMBIGUOUS: &[(&str, &str)] = &[
    // A mailbox parser stops at `>` and mails ada@evil.example.
    ("ada@evil.example>.corp.example", "domain"),
    // Two recipients.
    ("a@b.example,c@d.example", "form"),
    ("a@b.example, c@d.example", "whitespace"),
    ("a@b.example;c@d.example", "form"),
    // A display name, angle brackets, a comment, a quoted local part, an address literal.
    ("Eve <eve@example.com>", "whitespace"),
    ("<ada@example.com>", "before the @"),
    ("ada(corp.example)@example.com", "before the @"),
    ("\"ada@corp\"@example.com", "form"),
    ("\"ada\"@example.com", "before the @"),
    ("ada@[127.0.0.1]", "domain"),
    ("ada\\@example.com", "before the @"),
    ("ada:x@example.com", "before the @"),
    // Dots that are not single and interior.
    (".ada@example.com", "before the @"),
    ("ada.@example.com", "before the @"),
    ("a..da@example.com", "before the @"),
    // Domains that are not host names.
    ("ada@localhost", "domain"),
    ("ada@example.com.", "domain"),
    ("ada@-example.com", "domain"),
    ("ada@example-.com", "domain"),
    ("ada@exa_mple.com", "domain"),
    ("ada@example..com", "domain"),
    ("ada@1.2.3.4", "domain"),
    // A Cyrillic "а" among Latin letters: reads as paypal@example.com.
    ("p\u{430}ypal@example.com", "writing systems"),
    // The same trick in the domain, typed and as its A-label.
    ("ada@p\u{430}ypal.com", "writing systems"),
    ("ada@xn--pypal-4ve.com", "writing systems"),
    // A full-width "@" is not an "@".
    ("ada\u{FF20}evil.example@example.com", "before the @"),
];

/// Signs up a fresh account; its session is fresh enough to change the address.
async fn signed_up(server: &TestServer) -> Tokens {
    server.sign_up("owner@example.com").await.1
}

/// Asserts a 400 `invalid_input` on `field` whose message says `why`.
#[track_caller]
fn assert_refused(reply: &super::reply::Reply, field: &str, address: &str, why: &str) {
    let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(error["field"], field, "{address:?}: {error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(why), "{address:?}: {message}");
    reply.assert_no_cookies();
}

#[tokio::test]
async fn an_address_that_reads_as_another_is_400_on_every_route_that_takes_one() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let owner = signed_up(&server).await;
    for &(address, why) in AMBIGUOUS {
        let reply = server.try_sign_up(address, PASSWORD, "Eve").await;
        assert_refused(&reply, "email", address, why);
        let reply = server.sign_in(address, PASSWORD).await;
        assert_refused(&reply, "email", address, why);
        let reply = server
            .post_json(
                "/api/auth/request-password-reset",
                &json!({ "email": address }),
            )
            .await;
        assert_refused(&reply, "email", address, why);
        let reply = server
            .post("/api/auth/change-email")
            .cookie(&owner.access_cookie())
            .json(&json!({ "new_email": address, "password": PASSWORD }))
            .send()
            .await;
        assert_refused(&reply, "new_email", address, why);
    }
    assert_eq!(rows(&db, "users").await, 1);
    assert_eq!(rows(&db, "one_time_tokens").await, 0);
}

#[tokio::test]
async fn an_address_is_stored_in_one_spelling() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    // An internationalised domain, typed in Unicode: stored as typed, in lower case.
    let (reply, _) = server.sign_up("Jos\u{e9}@B\u{fc}cher.Example").await;
    assert_eq!(
        reply.json()["user"]["email"],
        "jos\u{e9}@b\u{fc}cher.example"
    );
    // Its A-label is the same domain, so the same account.
    server
        .try_sign_up("jos\u{e9}@xn--bcher-kva.example", PASSWORD, "Jose")
        .await
        .assert_error(StatusCode::CONFLICT, "email_taken");
    server
        .sign_in("JOS\u{c9}@xn--bcher-kva.example", PASSWORD)
        .await
        .assert_ok();
    // A local part in one script other than Latin, and Latin with Japanese, are addresses.
    server
        .sign_up("\u{441}\u{435}\u{440}\u{433}\u{435}\u{439}@example.com")
        .await;
    server.sign_up("taro\u{7530}\u{4e2d}@example.jp").await;
    server.sign_up("o'brien+news@mail.example.co.uk").await;
    assert_eq!(rows(&db, "users").await, 4);
}
