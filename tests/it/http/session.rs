//! The session route and the signed-in user, through `require_auth()` and the extractors.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::app::default_server;
use super::reply::{SESSION, key_set, unknown_access_token};
use crate::support::{PASSWORD, TestDb};

#[tokio::test]
async fn session_route_returns_user_and_session_without_secrets() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (signed_up, tokens) = server.sign_up("Ada@Example.com").await;
    let user_id = signed_up.user_id();

    let reply = server.session(&tokens.access_cookie()).await;
    reply.assert_ok();
    reply.assert_no_cookies();
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
            "two_factor_enabled",
            "updated_at"
        ]
        .into()
    );
    assert_eq!(user["two_factor_enabled"], false);
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
    let (ada_id, bob_id) = (ada_reply.user_id(), bob_reply.user_id());
    assert_ne!(ada_id, bob_id);

    // `/api/me` sits behind `require_auth()`; `/api/profile` uses the extractor alone.
    for path in ["/api/me", "/api/profile"] {
        // No client header, or one whose value is not exactly `true`.
        let headers = [
            None,
            Some("TRUE"),
            Some("True"),
            Some("1"),
            Some("yes"),
            Some("true, true"),
            Some(""),
        ];
        for header in headers {
            let reply = server
                .get(path)
                .client_header(header)
                .cookie(&ada.access_cookie())
                .send()
                .await;
            reply.assert_error(StatusCode::FORBIDDEN, "missing_client_header");
        }

        let without_cookie = server.get(path).send().await;
        without_cookie.assert_error(StatusCode::UNAUTHORIZED, "no_session");
        let empty_cookie = server.get_with_cookie(path, &format!("{SESSION}=")).await;
        empty_cookie.assert_error(StatusCode::UNAUTHORIZED, "no_session");
        let only_refresh = server.get_with_cookie(path, &ada.refresh_cookie()).await;
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
                .get_with_cookie(path, &format!("{SESSION}={garbage}"))
                .await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
            reply.assert_no_cookies();
        }
        // Cookie values are taken as sent, never percent-decoded: this one cannot be a token.
        let undecodable = server
            .get_with_cookie(path, &format!("{SESSION}=%ff%fe"))
            .await;
        undecodable.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");

        for (tokens, id) in [(&ada, &ada_id), (&bob, &bob_id)] {
            let reply = server.get_with_cookie(path, &tokens.both()).await;
            reply.assert_ok();
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
    let user_id = reply.user_id();

    let whoami = || server.get("/api/whoami");
    let anonymous = [
        whoami().client_header(None),
        whoami().client_header(None).cookie(&tokens.access_cookie()),
        whoami(),
        whoami().cookie(&format!("{SESSION}=garbage")),
        whoami().cookie(&format!("{SESSION}={}", unknown_access_token())),
    ];
    for request in anonymous {
        let reply = request.send().await;
        reply.assert_ok();
        assert_eq!(reply.json(), json!({"user_id": null}));
    }
    let signed_in = whoami().cookie(&tokens.access_cookie()).send().await;
    signed_in.assert_ok();
    assert_eq!(signed_in.json(), json!({ "user_id": user_id }));
}
