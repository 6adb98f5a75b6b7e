//! The peers section: one protected `GET /api/me` (the signed-in user as JSON, in the example
//! server's shape) served three ways on one copy of the seed, each by an axum server of its own
//! on 127.0.0.1, in alternating rounds at every `--concurrency`:
//!
//! - **authingo**: `auth.router()` at `/api/auth` and `/api/me` behind `auth.require_auth()`,
//!   reading `CurrentUser`, on `PgStore`;
//! - **axum-login**: axum-login + tower-sessions with tower-sessions-sqlx-store's
//!   `PostgresStore`, set up as axum-login's `sqlite` example sets them up (see
//!   [`axum_login_app`]), the users read from the same `users` table with sqlx;
//! - **minimal**: one handler that checks the header, reads the cookie, digests the token and
//!   runs `get_session.sql` on the baseline's pool.
//!
//! Each client signs in once per system before the clock starts (a real sign-in with the
//! password on both authingo and axum-login; the minimal handler reads the sessions authingo's
//! sign-ins made), then asks for `/api/me` with its cookie back to back. An answer counts when it
//! is 200 with the client's email in its body.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use authingo::http::{CurrentUser, UserView};
use authingo::password::{Argon2Params, Argon2id, PasswordError, PasswordHasher as _};
use authingo::postgres::{PgStore, PoolConfig, connect_with};
use authingo::token::{Token, TokenKind};
use authingo::{Auth, HttpOptions, RateLimits};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::task::JoinError;
use tower_sessions::cookie::{Cookie, Key, time};
use tower_sessions::{ExpiredDeletion as _, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use super::Result;
use super::baseline;
use super::cli::Options;
use super::cpu;
use super::db::{self, with_application_name};
use super::figures;
use super::measure::{self, Caller, Samples, Stats, Until};
use super::web::{self, CLIENT_HEADER, MOUNT, Server};

/// `application_name` of each system's connections, to read their backends' CPU time.
const AUTHINGO_APP: &str = "authingo_bench_peers_authingo";
const AXUM_LOGIN_APP: &str = "authingo_bench_peers_axum_login";
const MINIMAL_APP: &str = "authingo_bench_peers_minimal";

/// The route every system serves.
const ME: &str = "/api/me";

/// axum-login's sign-in route, as in its examples.
const LOGIN: &str = "/login";

/// tower-sessions' cookie, under its default name.
const SESSION_ID_COOKIE: &str = "id";

/// The axum-login example's session settings, printed with the results.
const AXUM_LOGIN_SETTINGS: &str = "signed cookie (Key::generate), with_secure(false), \
     Expiry::OnInactivity(1 day), always_save off, expired rows deleted every 60 s, \
     login_required! in front of the route; sqlx pool defaults but its size \
     (test_before_acquire: a ping per checkout)";

/// The systems compared, in the order of their rounds.
#[derive(Debug, Clone, Copy)]
enum System {
    Authingo,
    AxumLogin,
    Minimal,
}

impl System {
    const ALL: [Self; 3] = [Self::Authingo, Self::AxumLogin, Self::Minimal];

    fn name(self) -> &'static str {
        match self {
            Self::Authingo => "authingo (require_auth, PgStore)",
            Self::AxumLogin => "axum-login + tower-sessions (pg)",
            Self::Minimal => "minimal + tokio-postgres",
        }
    }

    fn application_name(self) -> &'static str {
        match self {
            Self::Authingo => AUTHINGO_APP,
            Self::AxumLogin => AXUM_LOGIN_APP,
            Self::Minimal => MINIMAL_APP,
        }
    }
}

/// One client count's figures.
#[derive(Debug, Clone)]
pub(crate) struct PeersRow {
    pub(crate) clients: usize,
    pub(crate) authingo: Stats,
    pub(crate) axum_login: Stats,
    pub(crate) minimal: Stats,
}

impl PeersRow {
    /// The target: authingo serves more requests per second than axum-login.
    fn ahead(&self) -> bool {
        self.authingo.ops_per_sec > self.axum_login.ops_per_sec
    }
}

/// The peers section's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeersReport {
    pub(crate) rows: Vec<PeersRow>,
}

/// What every system answers: the example server's `/api/me` body.
#[derive(Serialize)]
struct Me<U> {
    user: U,
    message: String,
}

fn me<U: Serialize>(user: U, name: &str) -> Response {
    Json(Me {
        user,
        message: format!("Hello, {name}!"),
    })
    .into_response()
}

/// authingo as an application mounts it: its routes at `/api/auth`, its own `/api/me` behind
/// `require_auth()`.
fn authingo_app(auth: &Auth) -> Router {
    Router::new()
        .route(ME, get(authingo_me))
        .route_layer(auth.require_auth())
        .with_state(auth.clone())
        .nest(MOUNT, auth.router())
}

async fn authingo_me(current: CurrentUser) -> Response {
    me(UserView::from(&current.user), &current.user.name)
}

/// A user of the axum-login backend: a row of the same `users` table. `Debug` leaves out the
/// email and the password hash; so does the JSON, which has the fields of authingo's
/// `UserView` in its order.
#[derive(Clone, Serialize, sqlx::FromRow)]
struct PeerUser {
    id: String,
    email: String,
    name: String,
    #[serde(skip)]
    password_hash: String,
    email_verified: bool,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PeerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerUser")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuthUser for PeerUser {
    type Id = String;

    fn id(&self) -> String {
        self.id.clone()
    }

    /// The password hash, as in axum-login's examples: a new password ends the sessions.
    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

/// The statements of the axum-login backend; a `NULL` `email_verified` reads as `false`, as
/// authingo reads it.
const USER_BY_ID: &str = "SELECT id, email, name, password_hash, \
     coalesce(email_verified, false) AS email_verified, created_at, updated_at \
     FROM users WHERE id = $1";
const USER_BY_EMAIL: &str = "SELECT id, email, name, password_hash, \
     coalesce(email_verified, false) AS email_verified, created_at, updated_at \
     FROM users WHERE email = $1";

/// What the bench's clients sign in to axum-login with.
#[derive(Clone, Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// The axum-login backend: users by id or email from `users`, passwords checked off the runtime.
#[derive(Debug, Clone)]
struct Backend {
    pool: PgPool,
    hasher: Arc<Argon2id>,
}

#[derive(Debug, thiserror::Error)]
enum BackendError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Join(#[from] JoinError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl AuthnBackend for Backend {
    type User = PeerUser;
    type Credentials = Credentials;
    type Error = BackendError;

    async fn authenticate(
        &self,
        credentials: Credentials,
    ) -> Result<Option<PeerUser>, BackendError> {
        let user: Option<PeerUser> = sqlx::query_as(USER_BY_EMAIL)
            .bind(credentials.email)
            .fetch_optional(&self.pool)
            .await?;
        let Some(user) = user else {
            return Ok(None);
        };
        // Hashing is blocking and slow: off the runtime, as in axum-login's examples.
        let hasher = Arc::clone(&self.hasher);
        let hash = user.password_hash.clone();
        let matches =
            tokio::task::spawn_blocking(move || hasher.verify(&credentials.password, &hash))
                .await??;
        Ok(matches.then_some(user))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<PeerUser>, BackendError> {
        Ok(sqlx::query_as(USER_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }
}

/// axum-login as its `sqlite` example sets it up, on PostgreSQL: tower-sessions' layer with a
/// signed cookie (a key generated at start), not `Secure` (plain HTTP here), sessions that expire
/// after a day of inactivity, then axum-login's layer on the backend, and `login_required!` on
/// the protected route. (The example's flash messages layer is left out: it is no part of
/// authentication.)
fn axum_login_app(store: PostgresStore, pool: PgPool, hasher: Arc<Argon2id>) -> Router {
    let sessions = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(1)))
        .with_signed(Key::generate());
    let auth = AuthManagerLayerBuilder::new(Backend { pool, hasher }, sessions).build();
    Router::new()
        .route(ME, get(axum_login_me))
        .route_layer(axum_login::login_required!(Backend))
        .route(LOGIN, post(axum_login_login))
        .layer(auth)
}

async fn axum_login_login(
    mut session: AuthSession<Backend>,
    Json(credentials): Json<Credentials>,
) -> StatusCode {
    match session.authenticate(credentials).await {
        Ok(Some(user)) => match session.login(&user).await {
            Ok(()) => StatusCode::OK,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Ok(None) => StatusCode::UNAUTHORIZED,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn axum_login_me(session: AuthSession<Backend>) -> Response {
    match &session.user {
        Some(user) => me(user, &user.name),
        // `login_required!` let the request through only with a user.
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// State of the minimal handler.
#[derive(Clone)]
struct Minimal {
    pool: baseline::Pool,
    cookie: Arc<str>,
}

/// The least an application could do: the header check, the cookie, the token's shape, its
/// digest, `get_session.sql` prepared once per connection on the baseline's pool.
fn minimal_app(pool: baseline::Pool, session_cookie: &str) -> Router {
    Router::new()
        .route(ME, get(minimal_me))
        .with_state(Minimal {
            pool,
            cookie: Arc::from(session_cookie),
        })
}

async fn minimal_me(State(state): State<Minimal>, headers: HeaderMap) -> Response {
    let token = match web::presented(&headers, &state.cookie) {
        Ok(value) => Token::parse(value, TokenKind::Access),
        Err(status) => return status.into_response(),
    };
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match baseline::get_session(&state.pool, &token.digest()).await {
        Ok(Some(found)) => me(UserView::from(&found.user), &found.user.name),
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// A worker asking for `/api/me` with the cookie its sign-in got.
#[derive(Debug)]
struct GetMe {
    client: reqwest::Client,
    url: reqwest::Url,
    cookie: HeaderValue,
    email: Arc<str>,
}

impl Caller for GetMe {
    type Input = ();

    fn input(&mut self) {}

    fn call(&self, (): &()) -> impl Future<Output = Result<bool>> + Send {
        let request = self
            .client
            .get(self.url.clone())
            .header(header::COOKIE, self.cookie.clone())
            .header(CLIENT_HEADER, "true");
        let email = Arc::clone(&self.email);
        async move {
            let response = request.send().await?;
            let ok = response.status() == StatusCode::OK;
            // Read to the end, as a client does, so that the connection is reused.
            let body = response.bytes().await?;
            let email = email.as_bytes();
            Ok(ok && body.windows(email.len()).any(|part| part == email))
        }
    }
}

/// Signs in at `url` with a JSON body of `email` and `password`; returns `name=value` of the
/// cookie `name` the answer set.
async fn sign_in(
    client: &reqwest::Client,
    url: reqwest::Url,
    (email, password): (&str, &str),
    name: &str,
) -> Result<HeaderValue> {
    let response = client
        .post(url.clone())
        .header(CLIENT_HEADER, "true")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("sign-in at {url}: {}", response.status()).into());
    }
    let value = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| Cookie::parse(value.to_str().ok()?).ok())
        .find(|cookie| cookie.name() == name && !cookie.value().is_empty())
        .ok_or_else(|| format!("sign-in at {url} set no {name} cookie"))?;
    Ok(HeaderValue::from_str(&value.stripped().to_string())?)
}

/// One running system: its server, the cookie of each client, and its pool's name.
struct Running {
    system: System,
    server: Server,
    /// `Cookie` header of client `i`, signed in as account `i`.
    cookies: Vec<HeaderValue>,
}

/// Runs the section on `url`, a copy of the seed: signs up one account per client of the largest
/// `--concurrency`, starts the three servers with pools of that size, signs every client in on
/// each, then measures `GET /api/me` at each client count.
pub(crate) async fn run(options: &Options, url: &str) -> Result<PeersReport> {
    let most = options.concurrency.iter().copied().max().unwrap_or(1);
    let size = u32::try_from(most)?;
    let admin = db::connect(url).await?;

    let pool = connect_with(
        &with_application_name(url, AUTHINGO_APP),
        &PoolConfig::default().max_size(size),
    )
    .await?;
    // No cleanup loop (the seed's dead sessions are the cleanup section's subject); no sign-in
    // limit per address, since every bench client signs in from 127.0.0.1. Neither is on the
    // path of `GET /api/me`.
    let auth = Auth::new(
        authingo::Options::new(PgStore::new(pool))
            // Built in release; the mail of its sign-ups is read by nobody.
            .allow_dev_mailer(true)
            .cleanup_interval(None)
            .rate_limits(Some(RateLimits::default().sign_in(None))),
    )?;
    auth.ready().await?;
    eprintln!("peers: {most} accounts signing up...");
    let accounts = web::sign_up(&auth, most).await?;
    let cookie = HttpOptions::default().session_cookie;

    let sqlx_pool = PgPoolOptions::new()
        .max_connections(size)
        .connect_with(
            url.parse::<PgConnectOptions>()?
                .application_name(AXUM_LOGIN_APP),
        )
        .await?;
    let store = PostgresStore::new(sqlx_pool.clone());
    store.migrate().await?;
    // As the example runs it, beside the server.
    let deletion = tokio::spawn(
        store
            .clone()
            .continuously_delete_expired(Duration::from_secs(60)),
    );
    let hasher = Arc::new(Argon2id::new(Argon2Params::default())?);

    let minimal_pool = baseline::pool(&with_application_name(url, MINIMAL_APP), size).await?;
    let servers = [
        Server::start(authingo_app(&auth)).await?,
        Server::start(axum_login_app(store, sqlx_pool, hasher)).await?,
        Server::start(minimal_app(minimal_pool, &cookie)).await?,
    ];

    eprintln!("peers: signing in {most} clients on each system...");
    let client = web::client()?;
    let mut running = Vec::new();
    for (system, server) in System::ALL.into_iter().zip(servers) {
        let mut cookies = Vec::with_capacity(most);
        for (index, (email, password)) in accounts.iter().enumerate() {
            let account = (email.as_str(), password.as_str());
            let cookie = match system {
                System::Authingo => {
                    let url = server.url(&format!("{MOUNT}/sign-in"))?;
                    sign_in(&client, url, account, &cookie).await?
                }
                System::AxumLogin => {
                    sign_in(&client, server.url(LOGIN)?, account, SESSION_ID_COOKIE).await?
                }
                // The sessions authingo's sign-ins made.
                System::Minimal => running
                    .first()
                    .and_then(|authingo: &Running| authingo.cookies.get(index))
                    .cloned()
                    .ok_or("no authingo session to read")?,
            };
            cookies.push(cookie);
        }
        running.push(Running {
            system,
            server,
            cookies,
        });
    }
    let getters = |side: &Running, clients: usize| -> Result<Vec<GetMe>> {
        let url = side.server.url(ME)?;
        Ok(side
            .cookies
            .iter()
            .zip(&accounts)
            .take(clients)
            .map(|(cookie, (email, _))| GetMe {
                client: client.clone(),
                url: url.clone(),
                cookie: cookie.clone(),
                email: Arc::from(email.as_str()),
            })
            .collect())
    };
    // Every client's sign-in took on every system, before anything is timed.
    for side in &running {
        for getter in getters(side, most)? {
            if !getter.call(&()).await? {
                return Err(
                    format!("{}: GET {ME} after sign-in failed", side.system.name()).into(),
                );
            }
        }
    }

    let round = options.duration / options.rounds;
    let mut out = PeersReport::default();
    for &clients in &options.concurrency {
        eprintln!("peers: GET {ME} from {clients} clients...");
        for side in &running {
            measure::drive(
                getters(side, clients)?,
                &Until::Elapsed(options.warmup),
                None,
            )
            .await?;
        }
        let mut samples: [Samples; 3] = Default::default();
        for round_index in 0..options.rounds {
            for index in measure::round_order(round_index, running.len()) {
                let side = &running[index];
                let application_name = side.system.application_name();
                let before = cpu::read(&admin, application_name).await?;
                let until = Until::Elapsed(round);
                let mut run = measure::drive(getters(side, clients)?, &until, None).await?;
                run.cpu = before.until(&cpu::read(&admin, application_name).await?);
                samples[index].merge(run);
            }
        }
        let [authingo, axum_login, minimal] = samples.map(|samples| samples.stats());
        out.rows.push(PeersRow {
            clients,
            authingo,
            axum_login,
            minimal,
        });
    }

    drop(client);
    for side in running {
        side.server.stop().await;
    }
    deletion.abort();
    Ok(out)
}

/// Prints the section's table, the ratios and whether the target was met.
pub(crate) fn print(report: &PeersReport) {
    println!();
    println!(
        "Peers: GET {ME} (the signed-in user as JSON), flat out, HTTP/1.1 keep-alive from \
         reqwest clients in this process, each signed in once per system"
    );
    println!("axum-login's settings (its example's): {AXUM_LOGIN_SETTINGS}");
    println!(
        "{:>4} {:<34} {:>8} {:>16} {:>14} {:>14}",
        "conc", "system", "req/s", "p50/p99 µs", "process µs/req", "backend µs/req"
    );
    for row in &report.rows {
        let sides = [
            (System::Authingo, &row.authingo),
            (System::AxumLogin, &row.axum_login),
            (System::Minimal, &row.minimal),
        ];
        for (system, stats) in sides {
            println!(
                "{:>4} {:<34} {:>8.0} {:>16} {:>14} {:>14}",
                row.clients,
                system.name(),
                stats.ops_per_sec,
                figures::latency(stats),
                figures::us(stats.client_cpu_us),
                figures::us(stats.server_cpu_us)
            );
            if stats.misses > 0 {
                println!(
                    "  warning: {} requests were not answered 200 with the user",
                    stats.misses
                );
            }
            figures::disturbed(&format!("during the rounds of {}", system.name()), stats);
        }
        println!(
            "{:>4} ratio authingo/axum-login {:.2}   authingo/minimal {:.2}",
            "",
            figures::ops_ratio(&row.authingo, &row.axum_login),
            figures::ops_ratio(&row.authingo, &row.minimal)
        );
    }
    let verdicts: Vec<String> = report
        .rows
        .iter()
        .map(|row| {
            let verdict = if row.ahead() { "met" } else { "missed" };
            format!("{} clients {verdict}", row.clients)
        })
        .collect();
    println!(
        "target: authingo ahead of axum-login (req/s) at every client count: {}",
        verdicts.join(", ")
    );
}

/// The section's part of the JSON report.
pub(crate) fn to_json(report: &PeersReport) -> Value {
    json!({
        "route": ME,
        "axum_login_settings": AXUM_LOGIN_SETTINGS,
        "rows": report.rows.iter().map(|row| json!({
            "clients": row.clients,
            "authingo": figures::stats_json(&row.authingo),
            "axum_login": figures::stats_json(&row.axum_login),
            "minimal": figures::stats_json(&row.minimal),
            "ratio_authingo_over_axum_login": figures::ops_ratio(&row.authingo, &row.axum_login),
            "ratio_authingo_over_minimal": figures::ops_ratio(&row.authingo, &row.minimal),
            "target_authingo_ahead": row.ahead(),
        })).collect::<Vec<_>>(),
    })
}
