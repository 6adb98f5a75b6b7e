//! The HTTP section's pieces: in-process axum servers on 127.0.0.1 (the crate's router, and a
//! minimal handler that runs `get_session`'s statement on the baseline's pool), sessions whose
//! raw tokens the bench knows, accounts to sign in with, and the requests it times.
//!
//! The loaded sessions' raw tokens (`tok<i>`) are not shaped like the crate's tokens, and the
//! engine refuses such a cookie before any lookup. So the HTTP section adds sessions of its own:
//! session `k` has the raw access token `h` followed by `k` in 42 digits (43 characters of the
//! URL-safe alphabet, which `Token::parse` accepts), stored as its SHA-256 digest.

use authingo::{RequestContext, SignUp};
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use authingo::http::{SessionView, UserView};
use authingo::token::{Token, TokenKind};
use authingo::{Auth, SessionWithUser};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::Result;
use super::baseline;
use super::measure::Caller;

/// Where the crate's routes are mounted, and where the minimal handler answers.
pub(crate) const MOUNT: &str = "/api/auth";

/// The anti-CSRF header every request of the crate's client carries.
pub(crate) const CLIENT_HEADER: &str = "x-authingo-client";

/// The raw access token of the HTTP section's session `k`.
fn raw_token(k: u64) -> String {
    format!("h{k:042}")
}

/// Inserts `count` live sessions with the tokens of [`raw_token`], spread over the loaded users,
/// then vacuums and analyzes the table as the load does.
pub(crate) async fn insert_sessions(client: &Client, count: u64, users: u64) -> Result<()> {
    let (count, users) = (i64::try_from(count)?, i64::try_from(users)?);
    client
        .execute(
            "INSERT INTO sessions (id, user_id, token, refresh_token, expires_at, \
                                   refresh_expires_at, created_at) \
             SELECT 'ses_h' || lpad(to_hex(k), 31, '0'), \
                    'usr_' || lpad(to_hex(1 + k % $2::bigint), 32, '0'), \
                    encode(sha256(('h' || lpad(k::text, 42, '0'))::bytea), 'hex'), \
                    encode(sha256(('hr' || k)::bytea), 'hex'), \
                    now() + interval '2 hours', now() + interval '30 days', now() \
             FROM generate_series(0, $1::bigint - 1) AS k",
            &[&count, &users],
        )
        .await?;
    client.batch_execute("VACUUM (ANALYZE) sessions").await?;
    Ok(())
}

/// Signs up `count` accounts through the engine; returns each one's email and password.
pub(crate) async fn sign_up(auth: &Auth, count: usize) -> Result<Vec<(String, String)>> {
    sign_up_as(auth, "signin", count).await
}

/// The email and password of account `n` of the group `prefix`: derived, not stored, so that a
/// flood generator in another process signs in with the accounts this one signed up.
pub(crate) fn account(prefix: &str, n: usize) -> (String, String) {
    (
        format!("{prefix}{n}@bench.example"),
        format!("correct horse battery {n}"),
    )
}

/// Signs up accounts `0..count` of the group `prefix` (see [`account`]) through the engine;
/// returns each one's email and password.
pub(crate) async fn sign_up_as(
    auth: &Auth,
    prefix: &str,
    count: usize,
) -> Result<Vec<(String, String)>> {
    let mut accounts = Vec::with_capacity(count);
    for n in 0..count {
        let (email, password) = account(prefix, n);
        auth.sign_up(
            &email,
            &password,
            &format!("Sign-in {n}"),
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)?;
        accounts.push((email, password));
    }
    Ok(accounts)
}

/// An axum server on a free port of 127.0.0.1, on the bench's runtime.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) async fn start(app: Router) -> Result<Self> {
        Self::start_as(app, false).await
    }

    /// As [`start`](Self::start), with each request's peer address, as an app that records or
    /// rate-limits clients is served.
    pub(crate) async fn start_with_peers(app: Router) -> Result<Self> {
        Self::start_as(app, true).await
    }

    async fn start_as(app: Router, peers: bool) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // As reqwest does on its side: no Nagle delay on small responses.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                eprintln!("TCP_NODELAY: {err}");
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // A dropped sender stops the server too.
            let stopped = async move {
                let _ = stopped.await;
            };
            if peers {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            } else {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        });
        Ok(Self { addr, stop, task })
    }

    pub(crate) fn url(&self, path: &str) -> Result<reqwest::Url> {
        Ok(reqwest::Url::parse(&format!("http://{}{path}", self.addr))?)
    }

    /// Stops accepting, lets open requests finish, and waits (a few seconds at most) for the
    /// connections to close.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// The HTTP client of every request: HTTP/1.1, keep-alive, one connection per worker.
pub(crate) fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// State of the minimal handlers.
#[derive(Clone)]
struct Minimal {
    pool: baseline::Pool,
    auth: Auth,
    cookie: Arc<str>,
}

/// The body of `GET /session`, in the crate's own wire types.
#[derive(Serialize)]
struct SessionBody<'a> {
    user: UserView<'a>,
    session: SessionView<'a>,
}

/// Two handlers of `GET /session` that do the least an application could: the header check, the
/// cookie, and the same JSON body.
///
/// - `{MOUNT}/session` checks the token's shape, digests it and runs `get_session`'s statement,
///   prepared once per connection, on the baseline's pool: the minimal handler.
/// - `{MOUNT}/engine/session` calls `auth.get_session` (the engine over `PgStore`) instead: what
///   the router costs beyond it is the crate's HTTP layer, what it costs beyond the minimal
///   handler is the engine and the store.
pub(crate) fn minimal_router(pool: baseline::Pool, auth: Auth, session_cookie: &str) -> Router {
    Router::new()
        .route(&format!("{MOUNT}/session"), get(minimal_session))
        .route(&format!("{MOUNT}/engine/session"), get(engine_session))
        .with_state(Minimal {
            pool,
            auth,
            cookie: Arc::from(session_cookie),
        })
}

async fn minimal_session(State(state): State<Minimal>, headers: HeaderMap) -> Response {
    let token = match presented(&headers, &state.cookie) {
        Ok(value) => Token::parse(value, TokenKind::Access),
        Err(status) => return status.into_response(),
    };
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let found = baseline::get_session(&state.pool, &token.digest()).await;
    respond(found.map_err(drop))
}

async fn engine_session(State(state): State<Minimal>, headers: HeaderMap) -> Response {
    match presented(&headers, &state.cookie) {
        Ok(value) => respond(state.auth.get_session(value).await.map_err(drop)),
        Err(status) => status.into_response(),
    }
}

/// The session cookie's value of a request from the client.
pub(crate) fn presented<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, StatusCode> {
    let from_client = headers
        .get(CLIENT_HEADER)
        .is_some_and(|value| value.as_bytes() == b"true");
    if !from_client {
        return Err(StatusCode::FORBIDDEN);
    }
    cookie(headers, name).ok_or(StatusCode::UNAUTHORIZED)
}

fn respond(found: Result<Option<SessionWithUser>, ()>) -> Response {
    match found {
        Ok(Some(found)) => Json(SessionBody {
            user: (&found.user).into(),
            session: (&found.session).into(),
        })
        .into_response(),
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(()) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        })
}

/// A worker sending `GET /session` with a random session of [`insert_sessions`] in its cookie.
#[derive(Debug)]
pub(crate) struct GetSession {
    client: reqwest::Client,
    url: reqwest::Url,
    cookie: Arc<str>,
    sessions: u64,
    rng: SmallRng,
}

impl GetSession {
    pub(crate) fn new(
        client: reqwest::Client,
        url: reqwest::Url,
        cookie: Arc<str>,
        sessions: u64,
        seed: u64,
    ) -> Self {
        Self {
            client,
            url,
            cookie,
            sessions,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

impl Caller for GetSession {
    /// The `Cookie` header.
    type Input = String;

    fn input(&mut self) -> String {
        let k = self.rng.random_range(0..self.sessions);
        format!("{}={}", self.cookie, raw_token(k))
    }

    fn call(&self, cookie: &String) -> impl Future<Output = Result<bool>> + Send {
        let request = self
            .client
            .get(self.url.clone())
            .header(header::COOKIE, cookie.as_str())
            .header(CLIENT_HEADER, "true");
        async move {
            let response = request.send().await?;
            let found = response.status().is_success();
            // Read to the end, as a client does, so that the connection is reused.
            let body = response.bytes().await?;
            Ok(found && !black_box(body).is_empty())
        }
    }
}

/// A worker signing in with one account's correct password, back to back.
#[derive(Debug)]
pub(crate) struct SignIn {
    client: reqwest::Client,
    url: reqwest::Url,
    body: String,
}

impl SignIn {
    pub(crate) fn new(
        client: reqwest::Client,
        url: reqwest::Url,
        email: &str,
        password: &str,
    ) -> Result<Self> {
        let body = serde_json::to_string(&serde_json::json!({
            "email": email,
            "password": password,
        }))?;
        Ok(Self { client, url, body })
    }
}

impl Caller for SignIn {
    type Input = ();

    fn input(&mut self) {}

    fn call(&self, (): &()) -> impl Future<Output = Result<bool>> + Send {
        let request = self
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(CLIENT_HEADER, "true")
            .body(self.body.clone());
        async move {
            let response = request.send().await?;
            let signed_in = response.status().is_success();
            black_box(response.bytes().await?);
            Ok(signed_in)
        }
    }
}
