//! The harness: a served app, replies, cookies.

use std::collections::BTreeSet;
use std::sync::Mutex;

use authingo::token::{Token, TokenKind};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::PASSWORD;

pub(super) const CLIENT_HEADER: &str = "X-Authingo-Client";
pub(super) const SESSION: &str = "authingo_session";
pub(super) const REFRESH: &str = "authingo_refresh";
const THIRTY_DAYS: i64 = 30 * 24 * 60 * 60;

/// `app` served on 127.0.0.1 on an ephemeral port until dropped. Every reply it fetched is kept,
/// so a test can check at its end that no body carried a secret.
pub(super) struct TestServer {
    pub(super) base: String,
    pub(super) http: reqwest::Client,
    pub(super) task: tokio::task::JoinHandle<()>,
    pub(super) seen: Mutex<Vec<Reply>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub(super) async fn start(app: Router) -> Self {
        Self::start_with(app, reqwest::Client::new()).await
    }

    /// The listener is bound before the server task starts, so the first request cannot race
    /// it: it waits in the listen backlog.
    pub(super) async fn start_with(app: Router, http: reqwest::Client) -> Self {
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
    pub(super) fn client(&self, method: Method, path: &str) -> RequestBuilder {
        self.bare(method, path).header(CLIENT_HEADER, "true")
    }

    /// A request without the anti-CSRF header.
    pub(super) fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    pub(super) async fn send(&self, request: RequestBuilder) -> Reply {
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
    pub(super) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client(Method::POST, path).json(body)).await
    }

    /// Signs up `email` with [`PASSWORD`], expecting success; returns the reply and its tokens.
    pub(super) async fn sign_up(&self, email: &str) -> (Reply, Tokens) {
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
    pub(super) fn assert_no_secrets(&self, passwords: &[&str]) {
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
pub(super) fn keys(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| std::iter::once(key.clone()).chain(keys(value)))
            .collect(),
        Value::Array(items) => items.iter().flat_map(keys).collect(),
        _ => Vec::new(),
    }
}

pub(super) fn key_set(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) cookies: Vec<SetCookie>,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }

    pub(super) fn cookie(&self, name: &str) -> &SetCookie {
        self.cookies
            .iter()
            .find(|cookie| cookie.name == name)
            .unwrap_or_else(|| panic!("no Set-Cookie {name} in {:?}", self.cookies))
    }

    /// Asserts an error reply: `status`, a JSON content type, and the body
    /// `{"error": code, "message": text}` (plus `"field"` for invalid input). Returns the body.
    pub(super) fn assert_error(&self, status: StatusCode, code: &str) -> Value {
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
    pub(super) fn assert_expires_both(&self, refresh_path: &str) {
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
pub(super) struct SetCookie {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub(super) fn parse(header: &str) -> Self {
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
    pub(super) fn attr(&self, name: &str) -> Option<Option<&str>> {
        let found: Vec<_> = self
            .attributes
            .iter()
            .filter(|(key, _)| key == name)
            .collect();
        assert!(found.len() <= 1, "{name} given twice in {self:?}");
        found.first().map(|(_, value)| value.as_deref())
    }

    pub(super) fn value_of(&self, name: &str) -> Option<&str> {
        self.attr(name).flatten()
    }

    pub(super) fn attribute_names(&self) -> BTreeSet<&str> {
        self.attributes
            .iter()
            .map(|(key, _)| key.as_str())
            .collect()
    }

    pub(super) fn max_age(&self) -> Option<i64> {
        self.value_of("max-age").map(|v| v.parse().unwrap())
    }

    pub(super) fn expires(&self) -> Option<DateTime<Utc>> {
        self.value_of("expires").map(|v| {
            DateTime::parse_from_rfc2822(v)
                .unwrap_or_else(|err| panic!("Expires={v}: {err}"))
                .with_timezone(&Utc)
        })
    }

    /// Path, SameSite, HttpOnly, Secure (or not) and no Domain.
    pub(super) fn assert_attributes(&self, path: &str, same_site: &str, secure: bool) {
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
    pub(super) fn assert_lasts_thirty_days(&self, before: DateTime<Utc>, after: DateTime<Utc>) {
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
    pub(super) fn assert_removal(&self) {
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
pub(super) struct Tokens {
    pub(super) access: String,
    pub(super) refresh: String,
}

impl Tokens {
    pub(super) fn of(reply: &Reply) -> Self {
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

    pub(super) fn access_cookie(&self) -> String {
        format!("{SESSION}={}", self.access)
    }

    pub(super) fn refresh_cookie(&self) -> String {
        format!("{REFRESH}={}", self.refresh)
    }

    pub(super) fn both(&self) -> String {
        format!("{}; {}", self.access_cookie(), self.refresh_cookie())
    }
}

/// A token-shaped access token the server never issued.
pub(super) fn unknown_access_token() -> String {
    Token::generate(TokenKind::Access)
        .unwrap()
        .expose()
        .to_owned()
}
