//! The example server: AuthInGo's routes under `/api/auth`, a protected `GET /api/me`, and a
//! small page at `/` to try them from a browser.
//!
//! Run it with `cargo run --example server`, then open <http://localhost:8080/>. It reads
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/authingo_demo`, created if
//! missing), applies the migrations, listens on 127.0.0.1 at `PORT` (default 8080), and shuts
//! down gracefully on Ctrl-C.

use std::error::Error;
use std::net::SocketAddr;

use authingo::http::CurrentUser;
use authingo::postgres::{self, PgStore};
use authingo::{Auth, Options};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/authingo_demo".to_owned());
    if postgres::create_database_if_missing(&url).await? {
        tracing::info!("created the database");
    }
    let applied = postgres::run_migrations(&url).await?;
    tracing::info!(?applied, "migrations up to date");
    let store = PgStore::new(postgres::connect(&url).await?);
    let auth = Auth::new(Options::new(store))?;

    let app = Router::new()
        .route("/", get(page))
        .route("/api/me", get(me))
        .with_state(auth.clone())
        .nest("/api/auth", auth.router());

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 8080,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on http://localhost:{port}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %err, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("shutting down");
        })
        .await?;
    auth.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// A route of the application's own, protected by the `CurrentUser` extractor. The application
/// chooses which of the user's fields it shows.
async fn me(current: CurrentUser) -> Json<Value> {
    let user = &current.user;
    Json(json!({
        "user": { "id": user.id, "email": user.email, "name": user.name },
        "message": format!("Hello, {}!", user.name),
    }))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>authingo demo</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  fieldset { margin-bottom: 1rem; } input { display: block; margin: .3rem 0; width: 100%; }
  pre { background: #f4f4f4; padding: 1rem; white-space: pre-wrap; }
</style>
<h1>authingo demo</h1>
<fieldset><legend>Account</legend>
  <input id="name" placeholder="name" autocomplete="name">
  <input id="email" placeholder="email" autocomplete="email">
  <input id="password" type="password" placeholder="password (8 characters or more)">
  <button onclick="call('POST', '/api/auth/sign-up', {email: v('email'), password: v('password'), name: v('name')})">Sign up</button>
  <button onclick="call('POST', '/api/auth/sign-in', {email: v('email'), password: v('password')})">Sign in</button>
</fieldset>
<fieldset><legend>Session</legend>
  <button onclick="call('GET', '/api/auth/session')">Show session</button>
  <button onclick="call('GET', '/api/me')">Protected /api/me</button>
  <button onclick="call('POST', '/api/auth/refresh')">Refresh</button>
  <button onclick="call('POST', '/api/auth/sign-out')">Sign out</button>
</fieldset>
<pre id="out">Responses appear here.</pre>
<script>
  const v = (id) => document.getElementById(id).value;
  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Authingo-Client": "true" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) {}
    document.getElementById("out").textContent = `${method} ${path} → ${response.status}\n${shown}`;
  }
</script>
</html>
"#;
