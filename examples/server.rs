//! The example server: AuthInGo's routes under `/api/auth`, a protected `GET /api/me`, and a
//! small page at `/` to try them from a browser, which also answers the links the server mails
//! (`/verify-email`, `/reset-password`, `/confirm-email`, `/cancel-email-change` and
//! `/remove-two-factor`, each `?token=…`).
//!
//! Run it with `cargo run --example server`, then open <http://localhost:8080/>. It reads
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/authingo_demo`, created if
//! missing), applies the migrations, listens on 127.0.0.1 at `PORT` (default 8080; 0 takes any
//! free port) and, once it accepts connections, prints one line on stdout:
//! `listening on http://localhost:<port>/`. Logs go to stderr (`RUST_LOG`, default `info`).
//!
//! The second factor (authenticator apps, the README's "Second factor") is on: its secrets are
//! sealed with the key in `AUTHINGO_ENCRYPTION_KEY` (32 bytes in base64, e.g.
//! `openssl rand -base64 32`), or, when it is unset, with a key drawn at start, and a warning
//! that enrolments made now will not open after a restart.
//!
//! With `METRICS=1` it also serves the crate's metrics (the README's "Metrics") at `GET /metrics`
//! in Prometheus's text format, through `metrics-exporter-prometheus`: point a Prometheus at it.
//!
//! Mail (verification and reset links, notices) is logged at INFO by the development mailer,
//! links included: follow them from the terminal. Built with the `smtp` feature
//! (`cargo run --example server --features smtp`), it sends through an SMTP server instead when
//! `SMTP_PORT` is set, at `SMTP_HOST` (default `127.0.0.1`), in plain text and without a login:
//! a relay on the same host or a test server such as
//! `python3 -m aiosmtpd -n -l 127.0.0.1:2525`. Mailed links start with the address the server
//! listens on.
//!
//! The bounds it sets, to keep when you copy it:
//!
//! - a client has [`HEADER_READ_TIMEOUT`] (5 s) to send a request's headers, and a kept-alive
//!   connection may idle that long between requests; then the connection is closed;
//! - a request body that stalls for [`BODY_READ_TIMEOUT`] (5 s) between two reads is refused
//!   and its connection closed;
//! - on SIGTERM or Ctrl-C it stops accepting connections, lets the requests in flight finish,
//!   and exits; connections still open after [`SHUTDOWN_DEADLINE`] (10 s) are dropped.

use std::error::Error;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use authingo::http::{ApiError, CurrentUser, UserView};
use authingo::mail::{DevMailer, Mailer};
use authingo::postgres::{self, PgStore};
use authingo::{Auth, EncryptionKey, HttpOptions, Options};
use axum::extract::ConnectInfo;
use axum::http::header::CONTENT_TYPE;
use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::Layer as _;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing_subscriber::EnvFilter;

/// How long a client may take to send a request's headers (and a connection may idle).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request body may go without sending data.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a shutdown waits for open connections before dropping them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mailer = mailer()?;
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/authingo_demo".to_owned());
    if postgres::create_database_if_missing(&url).await? {
        tracing::info!("created the database");
    }
    let applied = postgres::run_migrations(&url).await?;
    tracing::info!(?applied, "migrations up to date");

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let port = listener.local_addr()?.port();
    let store = PgStore::new(postgres::connect(&url).await?);
    let options = Options::new(store)
        .encryption_key(encryption_key()?)
        .mailer(mailer)
        // Mailed links lead back to this server's page, on whatever port it got.
        .http(HttpOptions::default().app_url(&format!("http://localhost:{port}")));
    let auth = Auth::new(options)?;

    let app = Router::new()
        .route("/", get(page))
        .route("/verify-email", get(page))
        .route("/reset-password", get(page))
        .route("/confirm-email", get(page))
        .route("/cancel-email-change", get(page))
        .route("/remove-two-factor", get(page))
        .route("/api/me", get(me))
        .with_state(auth.clone())
        .merge(metrics_route()?)
        .nest("/api/auth", auth.router())
        .fallback(async || ApiError::NotFound)
        .method_not_allowed_fallback(async || ApiError::MethodNotAllowed)
        .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT));

    // Before the address is printed: whoever reads it may signal at once.
    let stop = stop_signal()?;
    println!("listening on http://localhost:{port}/");
    serve(listener, app, stop).await;
    auth.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// `GET /metrics` when `METRICS=1`: installs a Prometheus recorder as the process's recorder,
/// which the crate's metrics then reach through the `metrics` facade. Durations are rendered as
/// Prometheus histograms (buckets, which a Prometheus can add up across instances) rather than
/// the exporter's default summaries.
fn metrics_route() -> Result<Router, Box<dyn Error>> {
    if std::env::var("METRICS").as_deref() != Ok("1") {
        return Ok(Router::new());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ],
        )?
        .install_recorder()?;
    // The exporter leaves its periodic upkeep (draining histogram samples) to its user.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    tracing::info!("metrics at /metrics");
    Ok(Router::new().route(
        "/metrics",
        get(async move || {
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                handle.render(),
            )
        }),
    ))
}

/// The key second factors are sealed with: `AUTHINGO_ENCRYPTION_KEY`, or one drawn now.
fn encryption_key() -> Result<EncryptionKey, Box<dyn Error>> {
    match std::env::var("AUTHINGO_ENCRYPTION_KEY") {
        Ok(encoded) => Ok(EncryptionKey::from_base64(&encoded)?),
        Err(_) => {
            tracing::warn!(
                "AUTHINGO_ENCRYPTION_KEY is not set: second factors are sealed with a key drawn \
                 at start, and those enrolled now will not open after a restart"
            );
            Ok(EncryptionKey::generate()?)
        }
    }
}

/// Where mail goes: an SMTP server when `SMTP_PORT` is set (feature `smtp`), else the log.
fn mailer() -> Result<Arc<dyn Mailer>, Box<dyn Error>> {
    let Ok(port) = std::env::var("SMTP_PORT") else {
        tracing::info!("mail is logged, not sent (development mailer)");
        return Ok(Arc::new(DevMailer));
    };
    #[cfg(feature = "smtp")]
    {
        use authingo::mail::{SmtpMailer, SmtpSecurity};
        let host = std::env::var("SMTP_HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
        let port: u16 = port.parse()?;
        let from = "authingo demo <no-reply@example.com>";
        let mailer = SmtpMailer::new(&host, port, SmtpSecurity::None, None, from)?;
        tracing::info!(%host, port, "mail is sent through SMTP");
        Ok(Arc::new(mailer))
    }
    #[cfg(not(feature = "smtp"))]
    Err(format!("SMTP_PORT={port} needs the example built with `--features smtp`").into())
}

/// Serves HTTP/1.1 on `listener` until `stop`, then drains the open connections for at most
/// [`SHUTDOWN_DEADLINE`].
///
/// hyper's own connection builder rather than `axum::serve`, for the header timeout: only the
/// HTTP parser sees a request before its headers are complete, and `axum::serve` gives it no
/// timer, so its 30-second default never fires. Each request carries its connection's peer
/// address as `ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info` would give
/// it: the sessions record it.
async fn serve(listener: TcpListener, app: Router, stop: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: pause rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(app.clone()));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing the requests in flight");
    if tokio::time::timeout(SHUTDOWN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown deadline passed: dropping the connections still open");
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, what `docker stop`, systemd and Kubernetes send.
/// The handlers are installed when this is called, not when the future is first polled.
fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    })
}

/// A route of the application's own, protected by the `CurrentUser` extractor; the user is shown
/// as the crate's routes show it.
async fn me(current: CurrentUser) -> Json<Value> {
    Json(json!({
        "user": UserView::from(&current.user),
        "message": format!("Hello, {}!", current.user.name),
    }))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<!-- A mailed link carries a token in the address: never pass it on in a Referer. -->
<meta name="referrer" content="no-referrer">
<title>authingo demo</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  fieldset { margin-bottom: 1rem; } input { display: block; margin: .3rem 0; width: 100%; }
  pre { background: #f4f4f4; padding: 1rem; white-space: pre-wrap; }
  li { margin: .3rem 0; } li button { margin-left: .5rem; }
</style>
<h1>authingo demo</h1>
<!-- The views of the mailed links, shown by their path. A click spends the token, not the
     visit: a mail scanner that opens the link must not use it up. -->
<fieldset id="verify-view" hidden><legend>Verify your email</legend>
  <button id="verify-email" onclick="call('POST', '/api/auth/verify-email', {token}, spent)">Verify my email</button>
</fieldset>
<fieldset id="reset-view" hidden><legend>Choose a new password</legend>
  <input id="reset-new-password" type="password" placeholder="new password" autocomplete="new-password">
  <button id="reset-password" onclick="call('POST', '/api/auth/reset-password', {token, new_password: v('reset-new-password')}, spent)">Set the new password</button>
</fieldset>
<fieldset id="confirm-view" hidden><legend>Confirm your new email</legend>
  <button id="confirm-email" onclick="call('POST', '/api/auth/confirm-email', {token}, spent)">Confirm my new email</button>
</fieldset>
<fieldset id="cancel-view" hidden><legend>Cancel the change of your email</legend>
  <button id="cancel-email-change" onclick="call('POST', '/api/auth/cancel-email-change', {token}, spent)">Cancel the change</button>
</fieldset>
<fieldset id="remove-view" hidden><legend>Remove a second factor you did not add</legend>
  <button id="remove-two-factor" onclick="call('POST', '/api/auth/two-factor/remove', {token}, spent)">Remove it and sign every session out</button>
</fieldset>
<fieldset><legend>Account</legend>
  <input id="name" placeholder="name" autocomplete="name">
  <input id="email" placeholder="email" autocomplete="email">
  <input id="password" type="password" placeholder="password (8 characters or more)">
  <button id="sign-up" onclick="call('POST', '/api/auth/sign-up', {email: v('email'), password: v('password'), name: v('name')})">Sign up</button>
  <button id="sign-in" onclick="call('POST', '/api/auth/sign-in', {email: v('email'), password: v('password')})">Sign in</button>
  <button id="forgot-password" onclick="call('POST', '/api/auth/request-password-reset', {email: v('email')})">Forgot password (mails a link)</button>
  <button id="resend-verification" onclick="call('POST', '/api/auth/resend-verification', {email: v('email')})">Resend the verification link</button>
</fieldset>
<fieldset><legend>Session</legend>
  <button id="session" onclick="call('GET', '/api/auth/session')">Show session</button>
  <button id="me" onclick="call('GET', '/api/me')">Protected /api/me</button>
  <button id="refresh" onclick="call('POST', '/api/auth/refresh')">Refresh</button>
  <button id="sign-out" onclick="call('POST', '/api/auth/sign-out')">Sign out</button>
</fieldset>
<fieldset><legend>Sessions</legend>
  <button id="list-sessions" onclick="call('GET', '/api/auth/sessions', undefined, show)">List sessions</button>
  <button id="revoke-others" onclick="call('POST', '/api/auth/sessions/revoke-others', undefined, list)">Revoke the others</button>
  <button id="sign-out-everywhere" onclick="call('POST', '/api/auth/sign-out-everywhere', undefined, list)">Sign out everywhere</button>
  <ul id="sessions"></ul>
  <input id="current-password" type="password" placeholder="current password" autocomplete="current-password">
  <input id="new-password" type="password" placeholder="new password" autocomplete="new-password">
  <button id="change-password" onclick="call('POST', '/api/auth/change-password', {current_password: v('current-password'), new_password: v('new-password')}, list)">Change password (ends the other sessions)</button>
</fieldset>
<fieldset><legend>Email</legend>
  <button id="send-verification" onclick="call('POST', '/api/auth/send-verification-email')">Send a verification email</button>
  <input id="new-email" placeholder="new email" autocomplete="email">
  <input id="email-password" type="password" placeholder="current password" autocomplete="current-password">
  <button id="change-email" onclick="call('POST', '/api/auth/change-email', {current_password: v('email-password'), new_email: v('new-email')})">Change email (mails a link to the new one, a notice to this one)</button>
</fieldset>
<fieldset><legend>Second factor (authenticator app)</legend>
  <input id="two-factor-password" type="password" placeholder="current password" autocomplete="current-password">
  <button id="enable-two-factor" onclick="call('POST', '/api/auth/two-factor/enable', {current_password: v('two-factor-password')}, enrol)">Enable (shows a QR code)</button>
  <div id="qr"></div>
  <input id="code" placeholder="6-digit code" autocomplete="one-time-code" inputmode="numeric">
  <button id="confirm-two-factor" onclick="call('POST', '/api/auth/two-factor/confirm', {code: v('code')}, enrolled)">Confirm (shows recovery codes)</button>
  <label><input id="trust-device" type="checkbox" style="display:inline;width:auto"> Trust this browser for 30 days</label>
  <button id="verify-two-factor" onclick="call('POST', '/api/auth/two-factor/verify', {code: v('code'), trust_device: document.getElementById('trust-device').checked})">Sign in with the code</button>
  <input id="recovery-code" placeholder="recovery code">
  <button id="verify-recovery-code" onclick="call('POST', '/api/auth/two-factor/verify', {recovery_code: v('recovery-code')})">Sign in with a recovery code</button>
  <button id="disable-two-factor" onclick="call('POST', '/api/auth/two-factor/disable', {current_password: v('two-factor-password')})">Disable (with the password)</button>
</fieldset>
<!-- data-answers counts the answers shown, so a test can wait for the next one. -->
<pre id="out" data-answers="0">Responses appear here. With the default mailer, mailed links appear in the server's log.</pre>
<script>
  const v = (id) => document.getElementById(id).value;
  const token = new URLSearchParams(location.search).get("token");
  const view = { "/verify-email": "verify-view", "/reset-password": "reset-view",
                 "/confirm-email": "confirm-view",
                 "/cancel-email-change": "cancel-view",
                 "/remove-two-factor": "remove-view" }[location.pathname];
  if (view && token) document.getElementById(view).hidden = false;

  const send = (method, path, body) => fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Authingo-Client": "true" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

  // Shows the answer to one request; `then` takes a successful answer's JSON before the
  // answer is counted.
  async function call(method, path, body, then) {
    const out = document.getElementById("out");
    let shown;
    try {
      const response = await send(method, path, body);
      const text = await response.text();
      let json;
      shown = text;
      try { json = JSON.parse(text); shown = JSON.stringify(json, null, 2); } catch (_) {}
      shown = `${method} ${path} → ${response.status}\n${shown}`;
      if (response.ok && then) await then(json);
    } catch (err) {
      shown = `${method} ${path} → failed: ${err}`;
    }
    out.textContent = shown;
    out.dataset.answers = Number(out.dataset.answers) + 1;
  }

  // The enrolment: the QR code (an SVG the server drew) for the app to scan.
  function enrol(json) {
    document.getElementById("qr").innerHTML = json.qr_svg;
  }

  // Confirmed: the QR code goes; the recovery codes stay in the answer shown.
  function enrolled() {
    document.getElementById("qr").textContent = "";
  }

  // A link's token works once: once used, the view goes and the address loses it.
  function spent() {
    document.getElementById(view).hidden = true;
    history.replaceState(null, "", "/");
  }

  // The sessions again after a change to them; the answer shown stays the change's.
  async function list() {
    const response = await send("GET", "/api/auth/sessions");
    show(response.ok ? await response.json() : { sessions: [] });
  }

  function show({ sessions }) {
    document.getElementById("sessions").replaceChildren(...sessions.map((session) => {
      const item = document.createElement("li");
      item.className = "session";
      item.dataset.current = session.current;
      item.textContent = `${session.current ? "(this one) " : ""}signed in ${session.created_at}, ` +
        `last used ${session.last_used_at ?? "-"}, from ${session.ip ?? "?"}, ${session.user_agent ?? "?"}`;
      const revoke = document.createElement("button");
      revoke.className = "revoke";
      revoke.textContent = "Revoke";
      revoke.onclick = () => call("POST", "/api/auth/sessions/revoke", { id: session.id }, list);
      item.append(revoke);
      return item;
    }));
  }
</script>
</html>
"#;
