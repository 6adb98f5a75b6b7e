//! The client's address behind trusted proxies, end to end: only the header the application
//! names, read from the right through trusted addresses and ranges, as a session records it.

use authingo::{ForwardedHeader, HttpOptions, IpNet};
use serde_json::json;

use super::app::app;
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb};

/// The app behind a proxy on this host (the test's requests come from 127.0.0.1).
async fn behind_proxy(db: &TestDb, http: HttpOptions) -> TestServer {
    let auth = EngineBuilder::over(db).await.http(http).build();
    TestServer::start(app(&auth, "/api/auth")).await
}

/// The address the session of a sign-up of `email` sent with `headers` records.
async fn recorded(server: &TestServer, email: &str, headers: &[(&str, &str)]) -> String {
    let mut request = server
        .post("/api/auth/sign-up")
        .json(&json!({"email": email, "password": PASSWORD, "name": "Ada"}));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let tokens = request.send().await.tokens();
    let reply = server
        .get_with_cookie("/api/auth/sessions", &tokens.access_cookie())
        .await;
    reply.assert_ok();
    reply.json()["sessions"][0]["ip"]
        .as_str()
        .unwrap_or_else(|| panic!("no address recorded: {}", reply.body))
        .to_owned()
}

fn range(text: &str) -> IpNet {
    text.parse().unwrap()
}

#[tokio::test]
async fn junk_a_client_sends_before_its_address_leaves_it_on_its_own_address() {
    // The proxy appended the client's address to what the client sent; before, one unreadable
    // entry put every such client on the proxy's address (and its rate-limit counter).
    let db = TestDb::new().await;
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let server = behind_proxy(&db, HttpOptions::default().trusted_proxies([loopback])).await;
    let chain = [("x-forwarded-for", "not an address, 198.51.100.7")];
    assert_eq!(
        recorded(&server, "ada@example.com", &chain).await,
        "198.51.100.7"
    );
}

#[tokio::test]
async fn only_the_configured_header_is_believed() {
    // A proxy that writes `Forwarded` passes a client's own `X-Forwarded-For` on untouched.
    let db = TestDb::new().await;
    let server = behind_proxy(
        &db,
        HttpOptions::default()
            .trusted_proxies([range("127.0.0.0/8")])
            .forwarded_header(ForwardedHeader::Forwarded),
    )
    .await;
    let spoofed = [
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=\"[2001:db8::7]:4711\";proto=https"),
    ];
    assert_eq!(
        recorded(&server, "ada@example.com", &spoofed).await,
        "2001:db8::7"
    );
    // And the other way round, by default.
    let db = TestDb::new().await;
    let server = behind_proxy(
        &db,
        HttpOptions::default().trusted_proxies([range("127.0.0.0/8")]),
    )
    .await;
    let spoofed = [
        ("forwarded", "for=6.6.6.6"),
        ("x-forwarded-for", "198.51.100.7"),
    ];
    assert_eq!(
        recorded(&server, "ada@example.com", &spoofed).await,
        "198.51.100.7"
    );
    // With neither, the peer, whatever a trusted proxy sends.
    let db = TestDb::new().await;
    let server = behind_proxy(
        &db,
        HttpOptions::default()
            .trusted_proxies([range("127.0.0.0/8")])
            .forwarded_header(ForwardedHeader::None),
    )
    .await;
    assert_eq!(
        recorded(&server, "ada@example.com", &spoofed).await,
        "127.0.0.1"
    );
}

#[tokio::test]
async fn a_trusted_range_passes_the_chain_on_to_the_first_address_outside_it() {
    let db = TestDb::new().await;
    let server = behind_proxy(
        &db,
        HttpOptions::default().trusted_proxies([range("127.0.0.0/8"), range("10.0.0.0/8")]),
    )
    .await;
    // 10.1.2.3 and 10.200.0.1 are proxies of the range; 6.6.6.6 is the client's own claim.
    let chain = [(
        "x-forwarded-for",
        "6.6.6.6, 198.51.100.7, 10.1.2.3, 10.200.0.1",
    )];
    assert_eq!(
        recorded(&server, "ada@example.com", &chain).await,
        "198.51.100.7"
    );
    // A proxy of the range that could not name its client: that proxy, not the claim left of it.
    let chain = [("x-forwarded-for", "6.6.6.6, unknown, 10.1.2.3")];
    assert_eq!(
        recorded(&server, "bob@example.com", &chain).await,
        "10.1.2.3"
    );
}
