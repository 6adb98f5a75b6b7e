//! The application's server: authingo's routes under `/api/auth`, and its own `/api/posts`.
//!
//! `cargo run -p diesel-app` reads `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/diesel_app`, created if missing), applies the embedded
//! migrations (development; in production `diesel migration run` in this folder does), and
//! listens on 127.0.0.1 at `PORT` (default 8081).

use std::error::Error;
use std::net::SocketAddr;

use authingo::postgres;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/diesel_app".to_owned());
    postgres::create_database_if_missing(&url).await?;
    postgres::run_migrations_from(&url, diesel_app::MIGRATIONS).await?;
    let state = diesel_app::state(&url).await?;
    let auth = state.auth.clone();

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 8081,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on http://localhost:{port}/");
    axum::serve(listener, diesel_app::app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    auth.shutdown().await;
    Ok(())
}
