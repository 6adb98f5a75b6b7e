//! Applies the application's embedded migrations (its own and authingo's) to the database at the
//! URL given, as the server does at start in development, and prints the versions applied.
//! `scripts/check-migrations` compares it with the Diesel CLI:
//!
//! ```sh
//! cargo run -p diesel-app --bin migrate -- postgres://postgres@127.0.0.1:5432/diesel_app
//! ```

use std::error::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: migrate <DATABASE_URL>")?;
    for version in authingo::postgres::run_migrations_from(&url, diesel_app::MIGRATIONS).await? {
        println!("{version}");
    }
    Ok(())
}
