//! The harness: an app served on an ephemeral port, and one-line requests to it, after crates.io's
//! `RequestHelper`.
//!
//! `server.get(path)` and `server.post(path)` start a request as the library's client sends it
//! (with `X-Authingo-Client: true`); `.cookie(..)`, `.json(..)` and the like adjust it, and
//! `.send().await` returns the [`Reply`]. The routes the tests call most, under `/api/auth`, have
//! one call each: `server.sign_up(email)`, `server.session(cookie)`, `server.refresh(cookie, &RequestContext::default())`, ...

use std::sync::Mutex;

use authingo::token::{Token, TokenKind};
use axum::Router;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use serde_json::{Value, json};

use super::reply::{DEVICE, Reply, SetCookie, Tokens};
use crate::support::PASSWORD;

/// The anti-CSRF header every route of the router requires.
const CLIENT_HEADER: &str = "X-Authingo-Client";

/// `app` served on 127.0.0.1 on an ephemeral port until dropped. Every reply it fetched is kept,
/// so a test can check at its end that no body carried a secret.
pub(super) struct TestServer {
    addr: String,
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
    pub(super) async fn start(app: Router) -> Self {
        Self::start_with(app, reqwest::Client::new()).await
    }

    /// `app` driven by `http` (a client with a cookie store, say). The listener is bound before
    /// the server task starts, so the first request cannot race it: it waits in the backlog.
    pub(super) async fn start_with(app: Router, http: reqwest::Client) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            // With the peer's address, as a deployment that records it serves the app.
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            http,
            task,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// `host:port`, for a test that writes HTTP by hand.
    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// `GET {path}` with the client header.
    pub(super) fn get(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::GET, path)
    }

    /// `POST {path}` with the client header.
    pub(super) fn post(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::POST, path)
    }

    /// `{method} {path}` with the client header.
    pub(super) fn request(&self, method: Method, path: &str) -> TestRequest<'_> {
        TestRequest {
            server: self,
            method,
            path: path.to_owned(),
            client_header: Some("true".to_owned()),
            cookie: None,
            content_type: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET {path}` sending `cookie`.
    pub(super) async fn get_with_cookie(&self, path: &str, cookie: &str) -> Reply {
        self.get(path).cookie(cookie).send().await
    }

    /// `POST {path}` with `body` as JSON.
    pub(super) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post(path).json(body).send().await
    }

    /// Signs up `email` with [`PASSWORD`] as "Ada", expecting success; returns the reply and its
    /// tokens.
    pub(super) async fn sign_up(&self, email: &str) -> (Reply, Tokens) {
        let reply = self.try_sign_up(email, PASSWORD, "Ada").await;
        reply.assert_ok();
        let tokens = reply.tokens();
        (reply, tokens)
    }

    /// `POST /api/auth/sign-up` with `email`, `password` and `name`, whatever the outcome.
    pub(super) async fn try_sign_up(&self, email: &str, password: &str, name: &str) -> Reply {
        let body = json!({"email": email, "password": password, "name": name});
        self.post_json("/api/auth/sign-up", &body).await
    }

    /// `POST /api/auth/sign-in` with `email` and `password`.
    pub(super) async fn sign_in(&self, email: &str, password: &str) -> Reply {
        let body = json!({"email": email, "password": password});
        self.post_json("/api/auth/sign-in", &body).await
    }

    /// `GET /api/auth/session` sending `cookie`.
    pub(super) async fn session(&self, cookie: &str) -> Reply {
        self.get_with_cookie("/api/auth/session", cookie).await
    }

    /// `POST /api/auth/refresh` sending `cookie`.
    pub(super) async fn refresh(&self, cookie: &str) -> Reply {
        self.post("/api/auth/refresh").cookie(cookie).send().await
    }

    /// `POST /api/auth/sign-out` sending `cookie`.
    pub(super) async fn sign_out(&self, cookie: &str) -> Reply {
        self.post("/api/auth/sign-out").cookie(cookie).send().await
    }

    /// How many cookies with a value (tokens) the replies so far set, device cookies aside.
    pub(super) fn tokens_issued(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|reply| &reply.cookies)
            .filter(|cookie| !cookie.value.is_empty() && cookie.name != DEVICE)
            .map(|cookie| cookie.value.clone())
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// Checks every body fetched so far: no password of `passwords`, no argon2 hash, no token
    /// or device cookie seen in any `Set-Cookie`, no digest of a token, and no key that names a
    /// secret.
    pub(super) fn assert_no_secrets(&self, passwords: &[&str]) {
        let seen = self.seen.lock().unwrap();
        let (devices, tokens): (Vec<&SetCookie>, Vec<&SetCookie>) = seen
            .iter()
            .flat_map(|reply| &reply.cookies)
            .filter(|cookie| !cookie.value.is_empty())
            .partition(|cookie| cookie.name == DEVICE);
        let devices: Vec<&str> = devices.iter().map(|cookie| cookie.value.as_str()).collect();
        let tokens: Vec<&str> = tokens.iter().map(|cookie| cookie.value.as_str()).collect();
        assert!(!tokens.is_empty(), "the flow saw no token to look for");
        let digests: Vec<String> = tokens
            .iter()
            .filter_map(|value| {
                Token::parse(value, TokenKind::Access)
                    .or_else(|| Token::parse(value, TokenKind::Refresh))
                    // A second factor's challenge or trusted browser.
                    .or_else(|| Token::parse(value, TokenKind::OneTime))
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
                .chain(&devices)
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

/// A request being built; nothing is sent before [`TestRequest::send`].
pub(super) struct TestRequest<'s> {
    server: &'s TestServer,
    method: Method,
    path: String,
    client_header: Option<String>,
    cookie: Option<Vec<u8>>,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl TestRequest<'_> {
    /// Sends `cookie` (`name=value`, or several joined by `; `) in the `Cookie` header; a second
    /// call adds to the first.
    pub(super) fn cookie(self, cookie: &str) -> Self {
        self.raw_cookie(cookie.as_bytes())
    }

    /// As [`cookie`](Self::cookie), with bytes that need not be ASCII (browsers send raw UTF-8).
    pub(super) fn raw_cookie(mut self, cookie: &[u8]) -> Self {
        let mut value = self.cookie.take().unwrap_or_default();
        if !value.is_empty() {
            value.extend_from_slice(b"; ");
        }
        value.extend_from_slice(cookie);
        self.cookie = Some(value);
        self
    }

    /// Sends `X-Authingo-Client: {value}` instead of `true`; `None` sends no such header.
    pub(super) fn client_header(mut self, value: Option<&str>) -> Self {
        self.client_header = value.map(str::to_owned);
        self
    }

    /// `body` serialised, as `application/json`.
    pub(super) fn json(self, body: &Value) -> Self {
        self.raw_json(serde_json::to_vec(body).unwrap())
    }

    /// `body` exactly as given (malformed, say), declared as `application/json`.
    pub(super) fn raw_json(self, body: impl Into<Vec<u8>>) -> Self {
        self.content_type("application/json").body(body)
    }

    /// Any other header, e.g. `X-Forwarded-For` or `User-Agent`.
    pub(super) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The `Content-Type` header.
    pub(super) fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = Some(content_type.to_owned());
        self
    }

    /// The body as given, with no `Content-Type` of its own.
    pub(super) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends the request and reads the whole reply, which the server keeps for
    /// [`TestServer::assert_no_secrets`].
    pub(super) async fn send(self) -> Reply {
        let server = self.server;
        let url = format!("http://{}{}", server.addr, self.path);
        let mut request = server.http.request(self.method.clone(), url);
        if let Some(value) = self.client_header {
            request = request.header(CLIENT_HEADER, value);
        }
        if let Some(cookie) = self.cookie {
            request = request.header(COOKIE, HeaderValue::from_bytes(&cookie).unwrap());
        }
        if let Some(content_type) = self.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request.body(body);
        }
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
            request: format!("{} {}", self.method, self.path),
            status,
            headers,
            cookies,
            body,
        };
        server.seen.lock().unwrap().push(reply.clone());
        reply
    }
}
