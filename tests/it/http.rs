//! The HTTP layer end to end: the router and protected routes served by `axum::serve` on an
//! ephemeral port, driven over real TCP with reqwest, on a database of the test's own.
//!
//! Cookies are read from the `Set-Cookie` headers and sent back by hand (the default cookies are
//! `Secure`, which reqwest's cookie store keeps off `http://`); one test runs a browser-like
//! cookie jar against `secure(false)`.

use std::collections::BTreeSet;
use std::sync::Mutex;

use authingo::auth::HttpOptions;
use authingo::http::CurrentUser;
use authingo::token::{Token, TokenKind};
use authingo::{Auth, Options};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Duration, Utc};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::db::TestDb;
use crate::fixtures::{FAST, PASSWORD};

const CLIENT_HEADER: &str = "X-Authingo-Client";
const SESSION: &str = "authingo_session";
const REFRESH: &str = "authingo_refresh";
const THIRTY_DAYS: i64 = 30 * 24 * 60 * 60;

// ---------------------------------------------------------------------------------------------
// The application under test.

/// The routes nested under `prefix`, plus three routes of "the user's own":
/// `/api/me` behind `require_auth()` (reads `Extension<CurrentUser>`), `/api/profile` with the
/// `CurrentUser` extractor and `Auth` as state, `/api/whoami` with `Option<CurrentUser>`.
fn app(auth: &Auth, prefix: &str) -> Router {
    Router::new()
        .nest(prefix, auth.router())
        .route("/api/me", get(me).layer(auth.require_auth()))
        .route("/api/profile", get(profile))
        .route("/api/whoami", get(whoami))
        .with_state(auth.clone())
}

fn describe(current: &CurrentUser) -> Value {
    json!({
        "user_id": current.user.id,
        "email": current.user.email,
        "session_id": current.session.id,
        "session_user_id": current.session.user_id,
    })
}

async fn me(Extension(current): Extension<CurrentUser>) -> Json<Value> {
    Json(describe(&current))
}

async fn profile(current: CurrentUser) -> Json<Value> {
    Json(describe(&current))
}

async fn whoami(current: Option<CurrentUser>) -> Json<Value> {
    Json(json!({ "user_id": current.map(|current| current.user.id) }))
}

/// An engine over `db`'s default store with fast hashing, no cleanup loop, and `http`.
async fn engine(db: &TestDb, http: HttpOptions) -> Auth {
    engine_on(db.store().await, http)
}

fn engine_on(store: authingo::postgres::PgStore, http: HttpOptions) -> Auth {
    Auth::new(
        Options::new(store)
            .argon2(FAST)
            .cleanup_interval(None)
            .http(http),
    )
    .unwrap()
}

/// A server with the default options, the routes under `/api/auth`.
async fn default_server(db: &TestDb) -> TestServer {
    let auth = engine(db, HttpOptions::default()).await;
    TestServer::start(app(&auth, "/api/auth")).await
}

// ---------------------------------------------------------------------------------------------
// The harness: a served app, replies, cookies.

/// `app` served on 127.0.0.1 on an ephemeral port until dropped. Every reply it fetched is kept,
/// so a test can check at its end that no body carried a secret.
struct TestServer {
    base: String,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    seen: Mutex<Vec<Reply>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(app: Router) -> Self {
        Self::start_with(app, reqwest::Client::new()).await
    }

    /// The listener is bound before the server task starts, so the first request cannot race
    /// it: it waits in the listen backlog.
    async fn start_with(app: Router, http: reqwest::Client) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            http,
            task,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// A request as the library's client sends it: with `X-Authingo-Client: true`.
    fn client(&self, method: Method, path: &str) -> RequestBuilder {
        self.bare(method, path).header(CLIENT_HEADER, "true")
    }

    /// A request without the anti-CSRF header.
    fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    async fn send(&self, request: RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let cookies = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| SetCookie::parse(value.to_str().unwrap()))
            .collect();
        let body = response.text().await.unwrap();
        let reply = Reply {
            status,
            headers,
            cookies,
            body,
        };
        self.seen.lock().unwrap().push(reply.clone());
        reply
    }

    /// `POST {path}` with a JSON body and the client header.
    async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client(Method::POST, path).json(body)).await
    }

    /// Signs up `email` with [`PASSWORD`], expecting success; returns the reply and its tokens.
    async fn sign_up(&self, email: &str) -> (Reply, Tokens) {
        let reply = self
            .post_json(
                "/api/auth/sign-up",
                &json!({"email": email, "password": PASSWORD, "name": "Ada"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let tokens = Tokens::of(&reply);
        (reply, tokens)
    }

    /// Checks every body fetched so far: no password of `passwords`, no argon2 hash, no token
    /// seen in any `Set-Cookie`, no digest of one, and no key that names a secret.
    fn assert_no_secrets(&self, passwords: &[&str]) {
        let seen = self.seen.lock().unwrap();
        let tokens: Vec<&str> = seen
            .iter()
            .flat_map(|reply| &reply.cookies)
            .map(|cookie| cookie.value.as_str())
            .filter(|value| !value.is_empty())
            .collect();
        assert!(!tokens.is_empty(), "the flow saw no token to look for");
        let digests: Vec<String> = tokens
            .iter()
            .filter_map(|value| {
                Token::parse(value, TokenKind::Access)
                    .or_else(|| Token::parse(value, TokenKind::Refresh))
            })
            .map(|token| token.digest().as_str().to_owned())
            .collect();
        assert_eq!(digests.len(), tokens.len(), "every cookie value is a token");
        for reply in seen.iter() {
            let body = &reply.body;
            assert!(!body.contains("$argon2"), "a hash in {body}");
            for password in passwords {
                assert!(!body.contains(password), "the password in {body}");
            }
            for secret in tokens
                .iter()
                .copied()
                .chain(digests.iter().map(String::as_str))
            {
                assert!(!body.contains(secret), "a token or digest in {body}");
            }
            if let Ok(value) = serde_json::from_str::<Value>(body) {
                for key in keys(&value) {
                    let key = key.to_lowercase();
                    assert!(
                        !(key.contains("password") || key.contains("token") || key == "digest"),
                        "key {key} in {body}"
                    );
                }
            }
        }
    }
}

/// Every object key anywhere in `value`.
fn keys(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| std::iter::once(key.clone()).chain(keys(value)))
            .collect(),
        Value::Array(items) => items.iter().flat_map(keys).collect(),
        _ => Vec::new(),
    }
}

fn key_set(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

#[derive(Debug, Clone)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    cookies: Vec<SetCookie>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }

    fn cookie(&self, name: &str) -> &SetCookie {
        self.cookies
            .iter()
            .find(|cookie| cookie.name == name)
            .unwrap_or_else(|| panic!("no Set-Cookie {name} in {:?}", self.cookies))
    }

    /// Asserts an error reply: `status`, a JSON content type, and the body
    /// `{"error": code, "message": text}` (plus `"field"` for invalid input). Returns the body.
    fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let content_type = self.headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap());
        assert_eq!(content_type, Some("application/json"), "{}", self.body);
        let body = self.json();
        assert_eq!(body["error"], code, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no message in {body}");
        let keys = key_set(&body);
        let allowed: BTreeSet<&str> = ["error", "message", "field"].into();
        assert!(keys.is_subset(&allowed), "{body}");
        body
    }

    /// Asserts that the reply expires both cookies with the attributes they were set with.
    fn assert_expires_both(&self, refresh_path: &str) {
        assert_eq!(self.cookies.len(), 2, "{:?}", self.cookies);
        let session = self.cookie(SESSION);
        session.assert_removal();
        session.assert_attributes("/", "Lax", true);
        let refresh = self.cookie(REFRESH);
        refresh.assert_removal();
        refresh.assert_attributes(refresh_path, "Strict", true);
    }
}

/// One `Set-Cookie` header: name, value, and attributes (names lower-cased).
#[derive(Debug, Clone)]
struct SetCookie {
    name: String,
    value: String,
    attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    fn parse(header: &str) -> Self {
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .unwrap_or_else(|| panic!("malformed Set-Cookie {header:?}"));
        let attributes = parts
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('=') {
                Some((key, value)) => (key.trim().to_lowercase(), Some(value.trim().to_owned())),
                None => (part.to_lowercase(), None),
            })
            .collect();
        Self {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        }
    }

    /// The value of attribute `name`; `Some(None)` for a flag, `None` when absent.
    fn attr(&self, name: &str) -> Option<Option<&str>> {
        let found: Vec<_> = self
            .attributes
            .iter()
            .filter(|(key, _)| key == name)
            .collect();
        assert!(found.len() <= 1, "{name} given twice in {self:?}");
        found.first().map(|(_, value)| value.as_deref())
    }

    fn value_of(&self, name: &str) -> Option<&str> {
        self.attr(name).flatten()
    }

    fn attribute_names(&self) -> BTreeSet<&str> {
        self.attributes
            .iter()
            .map(|(key, _)| key.as_str())
            .collect()
    }

    fn max_age(&self) -> Option<i64> {
        self.value_of("max-age").map(|v| v.parse().unwrap())
    }

    fn expires(&self) -> Option<DateTime<Utc>> {
        self.value_of("expires").map(|v| {
            DateTime::parse_from_rfc2822(v)
                .unwrap_or_else(|err| panic!("Expires={v}: {err}"))
                .with_timezone(&Utc)
        })
    }

    /// Path, SameSite, HttpOnly, Secure (or not) and no Domain.
    fn assert_attributes(&self, path: &str, same_site: &str, secure: bool) {
        assert_eq!(self.value_of("path"), Some(path), "{self:?}");
        assert_eq!(self.value_of("samesite"), Some(same_site), "{self:?}");
        assert_eq!(self.attr("httponly"), Some(None), "{self:?}");
        if secure {
            assert_eq!(self.attr("secure"), Some(None), "{self:?}");
        } else {
            assert_eq!(self.attr("secure"), None, "{self:?}");
        }
        assert_eq!(self.attr("domain"), None, "{self:?}");
    }

    /// Lives as long as a refresh token issued between `before` and `after`: 30 days.
    fn assert_lasts_thirty_days(&self, before: DateTime<Utc>, after: DateTime<Utc>) {
        let max_age = self
            .max_age()
            .unwrap_or_else(|| panic!("no Max-Age: {self:?}"));
        assert!(
            (THIRTY_DAYS - 60..=THIRTY_DAYS).contains(&max_age),
            "Max-Age={max_age}"
        );
        let expires = self
            .expires()
            .unwrap_or_else(|| panic!("no Expires: {self:?}"));
        let thirty = Duration::seconds(THIRTY_DAYS);
        assert!(
            expires >= before + thirty - Duration::seconds(1) && expires <= after + thirty,
            "Expires={expires}, issued between {before} and {after}"
        );
    }

    /// An emptied value that the browser drops at once.
    fn assert_removal(&self) {
        assert_eq!(self.value, "", "{self:?}");
        let max_age = self.max_age();
        let expires = self.expires();
        assert!(max_age.is_some() || expires.is_some(), "{self:?}");
        if let Some(max_age) = max_age {
            assert_eq!(max_age, 0, "{self:?}");
        }
        if let Some(expires) = expires {
            assert!(expires < Utc::now(), "{self:?}");
        }
    }
}

/// The two raw tokens a client holds after a sign-up, sign-in or refresh.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
}

impl Tokens {
    fn of(reply: &Reply) -> Self {
        let access = reply.cookie(SESSION).value.clone();
        let refresh = reply.cookie(REFRESH).value.clone();
        assert!(
            Token::parse(&access, TokenKind::Access).is_some(),
            "{access}"
        );
        assert!(
            Token::parse(&refresh, TokenKind::Refresh).is_some(),
            "{refresh}"
        );
        Self { access, refresh }
    }

    fn access_cookie(&self) -> String {
        format!("{SESSION}={}", self.access)
    }

    fn refresh_cookie(&self) -> String {
        format!("{REFRESH}={}", self.refresh)
    }

    fn both(&self) -> String {
        format!("{}; {}", self.access_cookie(), self.refresh_cookie())
    }
}

/// A token-shaped access token the server never issued.
fn unknown_access_token() -> String {
    Token::generate(TokenKind::Access)
        .unwrap()
        .expose()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Cookies.

#[tokio::test]
async fn sign_up_sets_both_cookies_with_the_exact_attributes() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;

    let before = Utc::now();
    let (reply, tokens) = server.sign_up("ada@example.com").await;
    let after = Utc::now();

    assert_eq!(reply.cookies.len(), 2, "{:?}", reply.cookies);
    let expected: BTreeSet<&str> = [
        "path", "httponly", "secure", "samesite", "max-age", "expires",
    ]
    .into_iter()
    .collect();
    let session = reply.cookie(SESSION);
    session.assert_attributes("/", "Lax", true);
    session.assert_lasts_thirty_days(before, after);
    assert_eq!(session.attribute_names(), expected, "{session:?}");
    let refresh = reply.cookie(REFRESH);
    refresh.assert_attributes("/api/auth/refresh", "Strict", true);
    refresh.assert_lasts_thirty_days(before, after);
    assert_eq!(refresh.attribute_names(), expected, "{refresh:?}");
    assert_eq!(session.expires(), refresh.expires());
    assert_ne!(tokens.access, tokens.refresh);

    let body = reply.json();
    assert_eq!(key_set(&body), ["user"].into());
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["name"], "Ada");
    assert_eq!(body["user"]["email_verified"], false);
    assert!(body["user"]["id"].as_str().unwrap().starts_with("usr_"));
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_in_and_refresh_set_the_same_attributes_as_sign_up() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;

    let before = Utc::now();
    let signed_in = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    let tokens = Tokens::of(&signed_in);
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    let after = Utc::now();
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);

    for reply in [&signed_in, &refreshed] {
        assert_eq!(reply.cookies.len(), 2, "{:?}", reply.cookies);
        let session = reply.cookie(SESSION);
        session.assert_attributes("/", "Lax", true);
        session.assert_lasts_thirty_days(before, after);
        let refresh = reply.cookie(REFRESH);
        refresh.assert_attributes("/api/auth/refresh", "Strict", true);
        refresh.assert_lasts_thirty_days(before, after);
        assert_eq!(key_set(&reply.json()), ["user"].into());
    }
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn refresh_cookie_path_follows_the_mount_prefix() {
    let db = TestDb::new().await;
    let auth = engine(&db, HttpOptions::default()).await;
    let cases = [
        (
            "/auth",
            Router::new().nest("/auth", auth.router()),
            "/auth/refresh",
        ),
        (
            "/api/v1/auth",
            Router::new().nest("/api", Router::new().nest("/v1/auth", auth.router())),
            "/api/v1/auth/refresh",
        ),
    ];
    for (i, (prefix, router, expected)) in cases.into_iter().enumerate() {
        let server = TestServer::start(router).await;
        let reply = server
            .post_json(
                &format!("{prefix}/sign-up"),
                &json!({"email": format!("ada{i}@example.com"), "password": PASSWORD, "name": "Ada"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
            .cookie(REFRESH)
            .assert_attributes(expected, "Strict", true);
        reply.cookie(SESSION).assert_attributes("/", "Lax", true);

        // The refresh route, answering under the prefix, sets the same path again.
        let tokens = Tokens::of(&reply);
        let refreshed = server
            .send(
                server
                    .client(Method::POST, &format!("{prefix}/refresh"))
                    .header(COOKIE, tokens.refresh_cookie()),
            )
            .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
        refreshed
            .cookie(REFRESH)
            .assert_attributes(expected, "Strict", true);

        let signed_out = server
            .send(
                server
                    .client(Method::POST, &format!("{prefix}/sign-out"))
                    .header(COOKIE, Tokens::of(&refreshed).access_cookie()),
            )
            .await;
        assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
        signed_out.assert_expires_both(expected);
    }
}

#[tokio::test]
async fn refresh_path_option_overrides_the_derived_path() {
    let db = TestDb::new().await;
    let auth = engine(
        &db,
        HttpOptions::default().refresh_path(Some("/custom/refresh".to_owned())),
    )
    .await;
    let server = TestServer::start(app(&auth, "/api/auth")).await;

    let (reply, tokens) = server.sign_up("ada@example.com").await;
    reply
        .cookie(REFRESH)
        .assert_attributes("/custom/refresh", "Strict", true);
    reply.cookie(SESSION).assert_attributes("/", "Lax", true);

    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    signed_out.assert_expires_both("/custom/refresh");
}

/// A client with a cookie store, as a browser, against `secure(false)` cookies (reqwest does not
/// send `Secure` cookies over `http://`). The refresh cookie only goes to the refresh route.
#[tokio::test]
async fn browser_like_cookie_jar_flow_with_insecure_cookies() {
    let db = TestDb::new().await;
    let auth = engine(&db, HttpOptions::default().secure(false)).await;
    let jar_client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let server = TestServer::start_with(app(&auth, "/api/auth"), jar_client).await;

    let (signed_up, first) = server.sign_up("ada@example.com").await;
    signed_up
        .cookie(SESSION)
        .assert_attributes("/", "Lax", false);
    signed_up
        .cookie(REFRESH)
        .assert_attributes("/api/auth/refresh", "Strict", false);
    let user_id = signed_up.json()["user"]["id"].clone();

    let me = server.send(server.client(Method::GET, "/api/me")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["user_id"], user_id);

    let refreshed = server
        .send(server.client(Method::POST, "/api/auth/refresh"))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let second = Tokens::of(&refreshed);
    assert_ne!(second.access, first.access);
    assert_ne!(second.refresh, first.refresh);

    let session = server
        .send(server.client(Method::GET, "/api/auth/session"))
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    assert_eq!(session.json()["user"]["id"], user_id);

    let signed_out = server
        .send(server.client(Method::POST, "/api/auth/sign-out"))
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    assert_eq!(signed_out.json(), json!({"success": true}));

    // The jar dropped both cookies: nothing is sent any more.
    let me = server.send(server.client(Method::GET, "/api/me")).await;
    me.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    let whoami = server.send(server.client(Method::GET, "/api/whoami")).await;
    assert_eq!(whoami.json(), json!({"user_id": null}));
    server.assert_no_secrets(&[PASSWORD]);
}

// ---------------------------------------------------------------------------------------------
// The session route and the signed-in user.

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

// ---------------------------------------------------------------------------------------------
// Refresh and sign-out.

#[tokio::test]
async fn refresh_rotates_both_cookies_and_refuses_the_old_ones() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (signed_up, old) = server.sign_up("ada@example.com").await;
    let user_id = signed_up.json()["user"]["id"].clone();

    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, old.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(refreshed.json()["user"]["id"], user_id);
    let new = Tokens::of(&refreshed);
    assert_ne!(new.access, old.access);
    assert_ne!(new.refresh, old.refresh);

    // The old refresh token is spent: 401, and both cookies are expired.
    let replayed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, old.refresh_cookie()),
        )
        .await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    replayed.assert_expires_both("/api/auth/refresh");

    // The old access token is refused everywhere; the new one works.
    for path in ["/api/auth/session", "/api/me"] {
        let stale = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, old.access_cookie()),
            )
            .await;
        stale.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        let fresh = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, new.access_cookie()),
            )
            .await;
        assert_eq!(fresh.status, StatusCode::OK, "{path}: {}", fresh.body);
    }

    // A refresh without a refresh cookie, or with garbage, is refused the same way.
    let none = server
        .send(server.client(Method::POST, "/api/auth/refresh"))
        .await;
    none.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    none.assert_expires_both("/api/auth/refresh");
    let garbage = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, format!("{REFRESH}=garbage")),
        )
        .await;
    garbage.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    garbage.assert_expires_both("/api/auth/refresh");

    // The replay of the spent token did not end the rotated session.
    let still = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, new.refresh_cookie()),
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_out_expires_both_cookies_and_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({"success": true}));
    reply.assert_expires_both("/api/auth/refresh");

    for path in ["/api/auth/session", "/api/me", "/api/profile"] {
        let after = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, tokens.access_cookie()),
            )
            .await;
        after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    }
    // The session's refresh token went with it.
    let refresh = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    refresh.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");

    // Signing out again, or with no cookie at all, still succeeds and expires both.
    for cookie in [Some(tokens.access_cookie()), None] {
        let mut request = server.client(Method::POST, "/api/auth/sign-out");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let again = server.send(request).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.json(), json!({"success": true}));
        again.assert_expires_both("/api/auth/refresh");
    }
    server.assert_no_secrets(&[PASSWORD]);
}

#[tokio::test]
async fn sign_out_with_only_the_refresh_cookie_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.assert_expires_both("/api/auth/refresh");
    let after = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

/// The Go library's browser client posts `Content-Type: application/json` with no body.
#[tokio::test]
async fn refresh_and_sign_out_accept_json_content_type_with_an_empty_body() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(CONTENT_TYPE, "application/json")
                .header(COOKIE, tokens.refresh_cookie())
                .body(""),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let rotated = Tokens::of(&refreshed);

    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(CONTENT_TYPE, "application/json")
                .header(COOKIE, rotated.access_cookie())
                .body(""),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    assert_eq!(signed_out.json(), json!({"success": true}));
    signed_out.assert_expires_both("/api/auth/refresh");
    let after = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, rotated.access_cookie()),
        )
        .await;
    after.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

// ---------------------------------------------------------------------------------------------
// The error table, each status from a real request.

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
            let reply = server
                .send(
                    server
                        .client(Method::POST, path)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body),
                )
                .await;
            let error = reply.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
            assert!(error.get("field").is_none(), "{error}");
            assert!(reply.cookies.is_empty(), "{:?}", reply.cookies);
        }
    }
    // Bytes that are not UTF-8.
    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-up")
                .header(CONTENT_TYPE, "application/json")
                .body(b"{\"email\": \"\xff\xfe\"}".to_vec()),
        )
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
        let reply = server
            .post_json(
                "/api/auth/sign-up",
                &json!({"email": email, "password": PASSWORD, "name": "Ada"}),
            )
            .await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        assert_eq!(error["field"], "email", "{email}");
        assert!(reply.cookies.is_empty());
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
        let reply = server
            .post_json(
                "/api/auth/sign-up",
                &json!({"email": email, "password": password, "name": name}),
            )
            .await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        assert_eq!(error["field"], field, "{}", reply.body);
        assert!(reply.cookies.is_empty());
    }
    let sign_in = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "ada@example.com", "password": "correct\0horse"}),
        )
        .await;
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
        let mut request = server
            .client(Method::POST, "/api/auth/sign-up")
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let reply = server.send(request).await;
        reply.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert!(reply.cookies.is_empty());
    }
    // Nothing was made: the same body declared as JSON signs up.
    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-up")
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
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
        .send(
            server
                .client(Method::POST, "/api/auth/sign-up")
                .header(CONTENT_TYPE, "application/json")
                .body(sign_up_body_of(16 * 1024 + 1)),
        )
        .await;
    over.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let huge = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-in")
                .header(CONTENT_TYPE, "application/json")
                .body(sign_up_body_of(1024 * 1024)),
        )
        .await;
    huge.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // At the limit the body is read, and the over-long name refused on its own merits.
    let at_limit = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-up")
                .header(CONTENT_TYPE, "application/json")
                .body(sign_up_body_of(16 * 1024)),
        )
        .await;
    let error = at_limit.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(error["field"], "name");
}

#[tokio::test]
async fn a_duplicate_email_in_another_case_is_409() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;
    let reply = server
        .post_json(
            "/api/auth/sign-up",
            &json!({"email": " ADA@Example.COM ", "password": "another password", "name": "Eve"}),
        )
        .await;
    reply.assert_error(StatusCode::CONFLICT, "email_taken");
    assert!(reply.cookies.is_empty(), "{:?}", reply.cookies);
    server.assert_no_secrets(&[PASSWORD, "another password"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_identical_401s() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    server.sign_up("ada@example.com").await;

    let wrong = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "ada@example.com", "password": "not the password"}),
        )
        .await;
    let unknown = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    unknown.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.cookies.is_empty() && unknown.cookies.is_empty());
    server.assert_no_secrets(&[PASSWORD, "not the password"]);
}

#[tokio::test]
async fn every_route_of_the_router_requires_the_client_header() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let requests = [
        (Method::POST, "/api/auth/sign-up"),
        (Method::POST, "/api/auth/sign-in"),
        (Method::GET, "/api/auth/session"),
        (Method::POST, "/api/auth/refresh"),
        (Method::POST, "/api/auth/sign-out"),
    ];
    for (method, path) in requests {
        for value in [None, Some("false"), Some("TRUE")] {
            let mut request = server
                .bare(method.clone(), path)
                .header(COOKIE, tokens.both())
                .json(&json!({"email": "eve@example.com", "password": PASSWORD, "name": "Eve"}));
            if let Some(value) = value {
                request = request.header(CLIENT_HEADER, value);
            }
            let reply = server.send(request).await;
            reply.assert_error(StatusCode::FORBIDDEN, "missing_client_header");
            assert!(reply.cookies.is_empty(), "{path}: {:?}", reply.cookies);
        }
    }
    // None of them acted: the session lives, its refresh token is unspent, Eve has no account.
    let session = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
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
        let reply = server
            .send(
                server
                    .client(Method::GET, "/api/auth/session")
                    .header(COOKIE, cookie),
            )
            .await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        assert!(reply.cookies.is_empty(), "{:?}", reply.cookies);
    }
    let none = server
        .send(server.client(Method::GET, "/api/auth/session"))
        .await;
    none.assert_error(StatusCode::UNAUTHORIZED, "no_session");
}

/// A store whose only connection the test holds: every route that needs the database answers
/// 503 with `Retry-After`, clears no cookie and signs nobody out.
#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after_and_clears_no_cookie() {
    let db = TestDb::new().await;
    let store = db.one_connection_store().await;
    let pool = store.pool().clone();
    let auth = engine_on(store, HttpOptions::default());
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;

    let held = pool.get().await.unwrap();
    let requests = [
        server
            .client(Method::GET, "/api/auth/session")
            .header(COOKIE, tokens.access_cookie()),
        server
            .client(Method::POST, "/api/auth/refresh")
            .header(COOKIE, tokens.refresh_cookie()),
        server
            .client(Method::POST, "/api/auth/sign-out")
            .header(COOKIE, tokens.both()),
        server
            .client(Method::POST, "/api/auth/sign-in")
            .json(&json!({"email": "ada@example.com", "password": PASSWORD})),
        server
            .client(Method::POST, "/api/auth/sign-up")
            .json(&json!({"email": "eve@example.com", "password": PASSWORD, "name": "Eve"})),
        server
            .client(Method::GET, "/api/me")
            .header(COOKIE, tokens.access_cookie()),
        server
            .client(Method::GET, "/api/profile")
            .header(COOKIE, tokens.access_cookie()),
        server
            .client(Method::GET, "/api/whoami")
            .header(COOKIE, tokens.access_cookie()),
    ];
    for request in requests {
        let reply = server.send(request).await;
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        let retry_after = reply
            .headers
            .get(RETRY_AFTER)
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", reply.headers));
        let seconds: u64 = retry_after.to_str().unwrap().parse().unwrap();
        assert!(seconds > 0);
        assert!(reply.cookies.is_empty(), "{:?}", reply.cookies);
    }
    drop(held);

    // Nothing was decided while the store was away: the tokens still work.
    let session = server
        .send(
            server
                .client(Method::GET, "/api/auth/session")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    server.sign_up("eve@example.com").await;
    server.assert_no_secrets(&[PASSWORD]);
}

// ---------------------------------------------------------------------------------------------
// Secrets.

/// A whole flow, every body checked against every token the cookies carried.
#[tokio::test]
async fn no_body_ever_carries_a_password_hash_or_token() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, first) = server.sign_up("ada@example.com").await;
    let signed_in = server
        .post_json(
            "/api/auth/sign-in",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    let second = Tokens::of(&signed_in);
    for tokens in [&first, &second] {
        for path in [
            "/api/auth/session",
            "/api/me",
            "/api/profile",
            "/api/whoami",
        ] {
            let reply = server
                .send(
                    server
                        .client(Method::GET, path)
                        .header(COOKIE, tokens.access_cookie()),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        }
    }
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, first.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let replayed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, first.refresh_cookie()),
        )
        .await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, second.both()),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    // Three pairs were issued: by sign-up, sign-in and refresh.
    let issued = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|reply| &reply.cookies)
        .filter(|cookie| !cookie.value.is_empty())
        .count();
    assert_eq!(issued, 6);
    server.assert_no_secrets(&[PASSWORD]);
}

// ---------------------------------------------------------------------------------------------
// Expiry, written into the database (its `now()` decides), and the other cookie settings.

/// Moves every session's access expiry (and, if `refresh` is set, its refresh expiry) into the
/// past.
async fn expire_sessions(db: &TestDb, refresh: bool) {
    let mut conn = db.conn().await;
    let sql = if refresh {
        "UPDATE sessions SET expires_at = now() - interval '2 minutes', \
         refresh_expires_at = now() - interval '1 minute'"
    } else {
        "UPDATE sessions SET expires_at = now() - interval '1 minute'"
    };
    crate::db::exec(&mut conn, sql).await;
}

#[tokio::test]
async fn an_expired_access_cookie_is_401_until_a_refresh_renews_it() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, old) = server.sign_up("ada@example.com").await;
    expire_sessions(&db, false).await;

    for path in ["/api/auth/session", "/api/me", "/api/profile"] {
        let reply = server
            .send(
                server
                    .client(Method::GET, path)
                    .header(COOKIE, old.access_cookie()),
            )
            .await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        assert!(reply.cookies.is_empty(), "{path}: {:?}", reply.cookies);
    }
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, old.refresh_cookie()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let new = Tokens::of(&refreshed);
    let me = server
        .send(
            server
                .client(Method::GET, "/api/me")
                .header(COOKIE, new.access_cookie()),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
}

/// Deliberate difference 6: the access cookie outlives its token, so sign-out still finds the
/// session of a user idle past the access TTL.
#[tokio::test]
async fn sign_out_with_an_expired_access_cookie_still_ends_the_session() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    expire_sessions(&db, false).await;

    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    signed_out.assert_expires_both("/api/auth/refresh");
    let refresh = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    refresh.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
}

#[tokio::test]
async fn an_expired_refresh_cookie_is_401_and_expires_both() {
    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let (_, tokens) = server.sign_up("ada@example.com").await;
    expire_sessions(&db, true).await;

    let reply = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, tokens.refresh_cookie()),
        )
        .await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
    reply.assert_expires_both("/api/auth/refresh");
}

#[tokio::test]
async fn the_domain_option_is_on_set_and_expired_cookies() {
    let db = TestDb::new().await;
    let auth = engine(
        &db,
        HttpOptions::default().domain(Some("example.com".to_owned())),
    )
    .await;
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    let (signed_up, tokens) = server.sign_up("ada@example.com").await;
    let signed_out = server
        .send(
            server
                .client(Method::POST, "/api/auth/sign-out")
                .header(COOKIE, tokens.access_cookie()),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    for reply in [&signed_up, &signed_out] {
        for name in [SESSION, REFRESH] {
            let cookie = reply.cookie(name);
            assert_eq!(cookie.value_of("domain"), Some("example.com"), "{cookie:?}");
            assert_eq!(cookie.attr("secure"), Some(None), "{cookie:?}");
        }
    }
}

#[tokio::test]
async fn custom_cookie_names_are_set_and_read() {
    let db = TestDb::new().await;
    let auth = engine(&db, HttpOptions::default().cookie_names("sid", "rid")).await;
    let server = TestServer::start(app(&auth, "/api/auth")).await;
    let reply = server
        .post_json(
            "/api/auth/sign-up",
            &json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let names: BTreeSet<&str> = reply.cookies.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["rid", "sid"].into());
    let access = reply.cookie("sid").value.clone();
    let refresh = reply.cookie("rid").value.clone();
    reply
        .cookie("rid")
        .assert_attributes("/api/auth/refresh", "Strict", true);

    // The default names mean nothing to this server.
    let default_name = server
        .send(
            server
                .client(Method::GET, "/api/me")
                .header(COOKIE, format!("{SESSION}={access}")),
        )
        .await;
    default_name.assert_error(StatusCode::UNAUTHORIZED, "no_session");
    let me = server
        .send(
            server
                .client(Method::GET, "/api/me")
                .header(COOKIE, format!("sid={access}")),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let refreshed = server
        .send(
            server
                .client(Method::POST, "/api/auth/refresh")
                .header(COOKIE, format!("rid={refresh}")),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_ne!(refreshed.cookie("sid").value, access);
}

/// A body sent without `Content-Length` (chunked) is held to the same limit. Written over a raw
/// socket, since reqwest here has no streaming bodies.
#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let db = TestDb::new().await;
    let server = default_server(&db).await;
    let body = sign_up_body_of(16 * 1024 + 1);
    let addr = server.base.trim_start_matches("http://");
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

/// Of concurrent refreshes with one refresh cookie, one rotates; the others are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_refreshes_with_one_cookie_one_succeeds() {
    const CALLERS: usize = 8;
    let db = TestDb::new().await;
    let server = std::sync::Arc::new(default_server(&db).await);
    let (_, tokens) = server.sign_up("ada@example.com").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (server, barrier, cookie) =
                (server.clone(), barrier.clone(), tokens.refresh_cookie());
            tokio::spawn(async move {
                let request = server
                    .client(Method::POST, "/api/auth/refresh")
                    .header(COOKIE, cookie);
                barrier.wait().await;
                server.send(request).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == StatusCode::OK {
            winners.push(Tokens::of(&reply));
        } else {
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_session");
        }
    }
    assert_eq!(winners.len(), 1);
    let me = server
        .send(
            server
                .client(Method::GET, "/api/me")
                .header(COOKIE, winners[0].access_cookie()),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    server.assert_no_secrets(&[PASSWORD]);
}
