//! The session route and the signed-in user, through `require_auth()` and the extractors.

use chrono::{DateTime, Duration, Utc};
use reqwest::header::COOKIE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::app::default_server;
use super::server::{CLIENT_HEADER, SESSION, key_set, unknown_access_token};
use crate::db::TestDb;
use crate::fixtures::PASSWORD;

#[tokio::test]
async fn session_route_returns_user_and_session_without_secrets() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (signed_up, tokens) = server.sign_up("Ada@Example.com").await;
    let user_id = signed_up.json()["user"]["id"].clone();

    let reply = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.cookies.is_empty(), "{:?}", reply.cookies);
    let body = reply.json();
    assert_eq!(key_set(&body), ["session", "user"].into());
    let user = &body["user"];
    assert_eq!(
        key_set(user),
        [
            "created_at",
            "email",
            "email_verified",
            "id",
            "name",
            "updated_at"
        ]
        .into()
    );
    assert_eq!(user["id"], user_id);
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["email_verified"], false);
    let session = &body["session"];
    assert_eq!(
        key_set(session),
        [
            "created_at",
            "expires_at",
            "id",
            "refresh_expires_at",
            "user_id"
        ]
        .into()
    );
    assert!(session["id"].as_str().unwrap().starts_with("ses_"));
    assert_eq!(session["user_id"], user_id);
    let at = |value: &Value| {
        DateTime::parse_from_rfc3339(value.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let created = at(&session["created_at"]);
    assert_eq!(at(&session["expires_at"]) - created, Duration::minutes(15));
    assert_eq!(
        at(&session["refresh_expires_at"]) - created,
        Duration::days(30)
    );
    assert!(at(&user["created_at"]) <= Utc::now());
    assert!(at(&user["updated_at"]) >= at(&user["created_at"]));
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn protected_routes_require_the_client_header_and_a_valid_cookie() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (ada_reply, ada) = server.sign_up("ada@example.com").await;
    let (bob_reply, bob) = server.sign_up("bob@example.com").await;
    let ada_id = ada_reply.json()["user"]["id"].clone();
    let bob_id = bob_reply.json()["user"]["id"].clone();
    assert_ne!(ada_id, bob_id);

    // `/api/me` sits behind `require_auth()`; `/api/profile` uses the extractor alone.
    for path in ["/api/me", "/api/profile"] {
        let without_header = server
            .send(
                server
                    .bare(Method::GET, path)
                    .header(COOKIE, ada.access_cookie()),
            )
            .await;
        without_header.assert_error(StatusCode::FORBIDDEN, "missing_client_header");
        for wrong in ["TRUE", "True", "1", "yes", "true, true", ""] {
            let reply = server
                .send(
                    server
                        .bare(Method::GET, path)
                        .header(CLIENT_HEADER, wrong)
                        .header(COOKIE, ada.access_cookie()),
                )
                .await;
            reply.assert_error(StatusCode::FORBIDDEN, "missing_client_header");
        }

        let without_cookie = server.send(server.client(Method::GET, path)).await;
        without_cookie.assert_error(StatusCode::UNAUTHORIZED, "no_session");
        let empty_cookie = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, format!("{SESSION}=")),
            )
            .await;
        empty_cookie.assert_error(StatusCode::UNAUTHORIZED, "no_session");
        let only_refresh = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, ada.refresh_cookie()),
            )
            .await;
        only_refresh.assert_error(StatusCode::UNAUTHORIZED, "no_session");

        let unknown = unknown_access_token();
        for garbage in [
            "garbage",
            "%00",
            "a%3Bb",
            unknown.as_str(),
            ada.refresh.as_str(),
            &"a".repeat(4000),
        ] {
            let reply = server
                .send(
                    server
                        .client(Method::GET, path)
                        .header(COOKIE, format!("{SESSION}={garbage}")),
                )
                .await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
            assert!(reply.cookies.is_empty(), "{:?}", reply.cookies);
        }
        // A value that does not percent-decode to UTF-8 is not read as a cookie at all.
        let undecodable = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, format!("{SESSION}=%ff%fe")),
            )
            .await;
        undecodable.assert_error(StatusCode::UNAUTHORIZED, "no_session");

        for (tokens, id) in [(&ada, &ada_id), (&bob, &bob_id)] {
            let reply = server
                .send(
                    server
                        .client(Method::GET, path)
                        .header(COOKIE, tokens.both()),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            let body = reply.json();
            assert_eq!(&body["user_id"], id, "{path}");
            assert_eq!(&body["session_user_id"], id, "{path}");
            assert!(body["session_id"].as_str().unwrap().starts_with("ses_"));
        }
    }
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn optional_current_user_is_none_without_a_valid_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (reply, tokens) = server.sign_up("ada@example.com").await;
    let user_id = reply.json()["user"]["id"].clone();

    let anonymous = [
        server.bare(Method::GET, "/api/whoami"),
        server
            .bare(Method::GET, "/api/whoami")
            .header(COOKIE, tokens.access_cookie()),
        server.client(Method::GET, "/api/whoami"),
        server
            .client(Method::GET, "/api/whoami")
            .header(COOKIE, format!("{SESSION}=garbage")),
        server
            .client(Method::GET, "/api/whoami")
            .header(COOKIE, format!("{SESSION}={}", unknown_access_token())),
    ];
    for request in anonymous {
        let reply = server.send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json(), json!({"user_id": null}));
    }
    let signed_in = server
        .send(
            server
                .client(Method::GET, "/api/whoami")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    assert_eq!(signed_in.json(), json!({ "user_id": user_id }));
}
