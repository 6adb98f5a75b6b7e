//! The specification's Usage, in Rust: connect, migrate, build the store and the engine, then
//! walk one session through its life, printing each step.
//!
//! Run it with `cargo run --example quickstart` (uses `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; the database is created if missing).

use std::error::Error;
use std::time::Duration;

use authingo::postgres::{self, PgStore};
use authingo::{Auth, Options, RequestContext, Store as _};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());

    // sql.Open + ApplySchema: bounded by a timeout, as in the specification.
    let pool = tokio::time::timeout(Duration::from_secs(10), async {
        if postgres::create_database_if_missing(&url).await? {
            println!("created the database");
        }
        let applied = postgres::run_migrations(&url).await?;
        println!("migrations applied: {applied:?}");
        postgres::connect(&url).await
    })
    .await??;

    // postgres.NewAdapter + authingo.New
    let store = PgStore::new(pool);
    let auth = Auth::new(Options::new(store.clone()))?;
    println!("engine ready; the cleanup loop runs in the background");

    let email = format!(
        "quickstart-{}@example.com",
        chrono::Utc::now().timestamp_micros()
    );
    let signed_up = auth
        .sign_up(
            &email,
            "correct horse battery staple",
            "Quick Start",
            &RequestContext::default(),
        )
        .await?
        .signed_in()?;
    println!(
        "created user {} and session {} (access token valid until {})",
        signed_up.user.id, signed_up.session.id, signed_up.tokens.access_expires_at
    );

    let access = signed_up.tokens.access_token.expose();
    let found = auth
        .get_session(access)
        .await?
        .ok_or("the new session was not found")?;
    println!(
        "looked the session up by its access token: user {}",
        found.user.email
    );

    let refreshed = auth
        .refresh(
            signed_up.tokens.refresh_token.expose(),
            &RequestContext::default(),
        )
        .await?;
    println!(
        "refreshed: new access token valid until {}; the old one is {}",
        refreshed.tokens.access_expires_at,
        if auth.get_session(access).await?.is_none() {
            "refused"
        } else {
            "still accepted (unexpected)"
        }
    );

    let deleted = store.cleanup_expired_sessions().await?;
    println!("cleanup removed {deleted} dead session(s)");

    let ended = auth
        .sign_out(refreshed.tokens.access_token.expose())
        .await?;
    println!("signed out: {ended}");

    auth.shutdown().await;
    Ok(())
}
