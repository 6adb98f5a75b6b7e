//! The error table, each status from a real request.

use reqwest::header::RETRY_AFTER;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::app::{app, default_server};
use super::reply::{SESSION, unknown_access_token};
use super::server::TestServer;
use crate::support::{EngineBuilder, PASSWORD, TestDb, rows};

#[tokio::test]
async fn malformed_json_is_400() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    for body in [
        "",
        "{\"email\":",
        "not json",
        "\"a string\"",
        "null",
        "[]",
        "[\"ada@example.com\", \"correct horse\", \"Ada\"]",
        "{\"email\": 5, \"password\": \"correct horse\", \"name\": \"Ada\"}",
    ] {
        for path in ["/api/auth/sign-up", "/api/auth/sign-in"] {
            let reply = server.post(path).raw_json(body).send().await;
            let error = reply.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
            assert!(error.get("field").is_none(), "{error}");
            reply.assert_no_cookies();
        }
    }
    // Bytes that are not UTF-8.
    let reply = server
        .post("/api/auth/sign-up")
        .raw_json(b"{\"email\": \"\xff\xfe\"}".to_vec())
        .send()
        .await;
    reply.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
}

#[tokio::test]
async fn a_missing_field_is_400_naming_it() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let cases = [
        (
            "/api/auth/sign-up",
            json!({"email": "ada@example.com", "password": PASSWORD}),
            "name",
        ),
        (
            "/api/auth/sign-up",
            json!({"password": PASSWORD, "name": "Ada"}),
            "email",
        ),
        (
            "/api/auth/sign-up",
            json!({"email": "ada@example.com", "name": "Ada"}),
            "password",
        ),
        ("/api/auth/sign-in", json!({"password": PASSWORD}), "email"),
    ];
    for (path, body, field) in cases {
        let reply = server.post_json(path, &body).await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        assert_eq!(error["field"], field, "{path} {body}");
    }
    // Nothing was made: the email is still free.
    server.sign_up("ada@example.com").await;
}

#[tokio::test]
async fn an_invalid_email_is_400() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    for email in ["not-an-email", "a@b@c", "a b@example.com", "@example.com"] {
        let reply = server.try_sign_up(email, PASSWORD, "Ada").await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        assert_eq!(error["field"], "email", "{email}");
        reply.assert_no_cookies();
    }
}

/// NUL bytes (PostgreSQL text cannot hold them) and values longer than the columns are refused
/// before anything is written, naming the field.
#[tokio::test]
async fn nul_bytes_and_over_long_fields_are_400_naming_the_field() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let long = "x".repeat(300);
    let long_email = format!("{long}@example.com");
    let long_password = "p".repeat(1025);
    let cases = [
        ("a\0da@example.com", PASSWORD, "Ada", "email"),
        ("ada@example.com", "correct\0horse", "Ada", "password"),
        ("ada@example.com", PASSWORD, "A\0da", "name"),
        (long_email.as_str(), PASSWORD, "Ada", "email"),
        ("ada@example.com", long_password.as_str(), "Ada", "password"),
        ("ada@example.com", PASSWORD, long.as_str(), "name"),
        ("ada@example.com", "short", "Ada", "password"),
    ];
    for (email, password, name, field) in cases {
        let reply = server.try_sign_up(email, password, name).await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        assert_eq!(error["field"], field, "{}", reply.body);
        reply.assert_no_cookies();
    }
    let sign_in = server.sign_in("ada@example.com", "correct\0horse").await;
    let error = sign_in.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(error["field"], "password");
    // Nothing was written: the email is still free.
    server.sign_up("ada@example.com").await;
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_415() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = server.post("/api/auth/sign-up").body(body.clone());
        if let Some(content_type) = content_type {
            request = request.content_type(content_type);
        }
        let reply = request.send().await;
        reply.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        reply.assert_no_cookies();
    }
    // Nothing was made: the same body declared as JSON signs up.
    let reply = server
        .post("/api/auth/sign-up")
        .content_type("application/json; charset=utf-8")
        .body(body)
        .send()
        .await;
    reply.assert_ok();
}

/// A sign-up body of exactly `len` bytes, padded in the name.
fn sign_up_body_of(len: usize) -> String {
    let empty = json!({"email": "ada@example.com", "password": PASSWORD, "name": ""}).to_string();
    let body = json!({
        "email": "ada@example.com",
        "password": PASSWORD,
        "name": "n".repeat(len - empty.len()),
    })
    .to_string();
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn a_body_over_16_kib_is_413() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let over = server
        .post("/api/auth/sign-up")
        .raw_json(sign_up_body_of(16 * 1024 + 1))
        .send()
        .await;
    over.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let huge = server
        .post("/api/auth/sign-in")
        .raw_json(sign_up_body_of(1024 * 1024))
        .send()
        .await;
    huge.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // At the limit the body is read, and the over-long name refused on its own merits.
    let at_limit = server
        .post("/api/auth/sign-up")
        .raw_json(sign_up_body_of(16 * 1024))
        .send()
        .await;
    let error = at_limit.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(error["field"], "name");
}

/// A body sent without `Content-Length` (chunked) is held to the same limit. Written over a raw
/// socket, since reqwest here has no streaming bodies.
#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let body = sign_up_body_of(16 * 1024 + 1);
    let addr = server.addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST /api/auth/sign-up HTTP/1.1\r\nHost: {addr}\r\nX-Authingo-Client: true\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(4096) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).unwrap());
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 413 "),
        "{}",
        response.lines().next().unwrap_or_default()
    );
    let (_, json_body) = response.split_once("\r\n\r\n").unwrap();
    let error: Value = serde_json::from_str(json_body).unwrap();
    assert_eq!(error["error"], "payload_too_large");
    // Nothing was made.
    server.sign_up("ada@example.com").await;
}

#[tokio::test]
async fn a_duplicate_email_in_another_case_is_409() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;
    let reply = server
        .try_sign_up(" ADA@Example.COM ", "another password", "Eve")
        .await;
    reply.assert_error(StatusCode::CONFLICT, "email_taken");
    reply.assert_no_cookies();
    server.assert_no_secrets(&[PASSWORD, "another password"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_identical_401s() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;

    let wrong = server.sign_in("ada@example.com", "not the password").await;
    let unknown = server.sign_in("nobody@example.com", PASSWORD).await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    unknown.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    wrong.assert_no_cookies();
    unknown.assert_no_cookies();
    server.assert_no_secrets(&[PASSWORD, "not the password"]);
}

#[tokio::test]
async fn every_route_of_the_router_requires_the_client_header() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let routes = [
        (Method::POST, "/api/auth/sign-up"),
        (Method::POST, "/api/auth/sign-in"),
        (Method::GET, "/api/auth/session"),
        (Method::POST, "/api/auth/refresh"),
        (Method::POST, "/api/auth/sign-out"),
    ];
    let eve = json!({"email": "eve@example.com", "password": PASSWORD, "name": "Eve"});
    for (method, path) in routes {
        for header in [None, Some("false"), Some("TRUE")] {
            let reply = server
                .request(method.clone(), path)
                .client_header(header)
                .cookie(&tokens.both())
                .json(&eve)
                .send()
                .await;
            reply.assert_error(StatusCode::FORBIDDEN, "missing_client_header");
            reply.assert_no_cookies();
        }
    }
    // None of them acted: the session lives, its refresh token is unspent, Eve has no account.
    server.session(&tokens.access_cookie()).await.assert_ok();
    server.refresh(&tokens.refresh_cookie()).await.assert_ok();
    server.sign_up("eve@example.com").await;
}

#[tokio::test]
async fn a_garbage_cookie_on_the_session_route_is_401_and_clears_nothing() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    for cookie in [
        format!("{SESSION}=garbage"),
        format!("{SESSION}={}", unknown_access_token()),
        format!("{SESSION}={}", "x".repeat(43)),
    ] {
        let reply = server.session(&cookie).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        reply.assert_no_cookies();
    }
    let none = server.get("/api/auth/session").send().await;
    none.assert_error(StatusCode::UNAUTHORIZED, "no_session");
}

/// A store whose only connection the test holds: every route that needs the database answers
/// 503 with `Retry-After`, clears no cookie and signs nobody out.
#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after_and_clears_no_cookie() {
    let db = TestDb::new().await;
    let store = db.one_connection_store().await;
    let pool = store.pool().clone();
    let auth = EngineBuilder::on(store).build();
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let (access, refresh, both) = (
        tokens.access_cookie(),
        tokens.refresh_cookie(),
        tokens.both(),
    );

    let held = pool.get().await.unwrap();
    let requests = [
        server.get("/api/auth/session").cookie(&access),
        server.post("/api/auth/refresh").cookie(&refresh),
        server.post("/api/auth/sign-out").cookie(&both),
        server
            .post("/api/auth/sign-in")
            .json(&json!({"email": "ada@example.com", "password": PASSWORD})),
        server
            .post("/api/auth/sign-up")
            .json(&json!({"email": "eve@example.com", "password": PASSWORD, "name": "Eve"})),
        server.get("/api/me").cookie(&access),
        server.get("/api/profile").cookie(&access),
        server.get("/api/whoami").cookie(&access),
    ];
    for request in requests {
        let reply = request.send().await;
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        let retry_after = reply
            .headers
            .get(RETRY_AFTER)
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", reply.headers));
        let seconds: u64 = retry_after.to_str().unwrap().parse().unwrap();
        assert!(seconds > 0);
        reply.assert_no_cookies();
    }
    drop(held);

    // Nothing was decided while the store was away: the tokens still work.
    server.session(&access).await.assert_ok();
    server.refresh(&refresh).await.assert_ok();
    server.sign_up("eve@example.com").await;
    server.assert_no_secrets(&[PASSWORD]);
}

/// Bodies for `route` that name a key twice: the key the route reads (spelled alike, then
/// through an escape, which JSON decodes to the same key), a key it ignores, and keys deeper
/// down, in an object and in an array.
fn twice_named(route: &str) -> Vec<String> {
    let (read, escaped, first, second, rest) = match route {
        "/api/auth/sign-in" => (
            "password",
            "p\\u0061ssword",
            "\"wrong password\"".to_owned(),
            format!("{PASSWORD:?}"),
            "\"email\": \"owner@example.com\"".to_owned(),
        ),
        "/api/auth/request-password-reset" => (
            "email",
            "em\\u0061il",
            "\"eve@example.com\"".to_owned(),
            "\"owner@example.com\"".to_owned(),
            "\"x\": 0".to_owned(),
        ),
        _ => (
            "email",
            "em\\u0061il",
            "\"eve@example.com\"".to_owned(),
            "\"ada@example.com\"".to_owned(),
            format!("\"password\": {PASSWORD:?}, \"name\": \"Ada\""),
        ),
    };
    let whole = format!("\"{read}\": {second}, {rest}");
    vec![
        format!("{{\"{read}\": {first}, {rest}, \"{read}\": {second}}}"),
        format!("{{\"{read}\": {first}, {rest}, \"{escaped}\": {second}}}"),
        format!("{{{whole}, \"extra\": 1, \"extra\": 2}}"),
        format!("{{{whole}, \"extra\": {{\"a\": 1, \"a\": 2}}}}"),
        format!("{{{whole}, \"extra\": [{{}}, {{\"a\": {{\"b\": 1, \"b\": 1}}}}]}}"),
    ]
}

#[tokio::test]
async fn a_body_that_names_a_key_twice_is_400_at_any_depth() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, owner) = server.sign_up("owner@example.com").await;
    for route in [
        "/api/auth/sign-up",
        "/api/auth/sign-in",
        "/api/auth/request-password-reset",
    ] {
        for body in twice_named(route) {
            let reply = server.post(route).raw_json(body.clone()).send().await;
            let error = reply.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
            assert!(
                error["message"].as_str().unwrap().contains("twice"),
                "{route} {body}: {error}"
            );
            reply.assert_no_cookies();
        }
    }
    // Routes behind a session too.
    let body = format!(
        "{{\"new_email\": \"eve@example.com\", \"new_email\": \"ada@example.com\", \"password\": {PASSWORD:?}}}"
    );
    server
        .post("/api/auth/change-email")
        .cookie(&owner.access_cookie())
        .raw_json(body)
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    assert_eq!(rows(&db, "users").await, 1);

    // The check reads every depth, within serde_json's recursion limit: deeper is malformed,
    // not a stack overflow.
    let deep = format!(
        "{{\"email\": \"ada@example.com\", \"x\": {}{}}}",
        "[".repeat(1_000),
        "]".repeat(1_000)
    );
    server
        .post("/api/auth/sign-in")
        .raw_json(deep)
        .send()
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");

    // One key in two objects is no duplicate.
    let body: Value = serde_json::from_str(&format!(
        "{{\"email\": \"ada@example.com\", \"password\": {PASSWORD:?}, \"name\": \"Ada\", \
         \"a\": {{\"x\": 1}}, \"b\": [{{\"x\": 1}}, {{\"x\": 1}}]}}"
    ))
    .unwrap();
    server
        .post_json("/api/auth/sign-up", &body)
        .await
        .assert_ok();
}
