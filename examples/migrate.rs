//! Applies the migrations embedded in the crate to a database and prints the versions it applied,
//! one per line (nothing when the database was already up to date).
//!
//! ```bash
//! cargo run --example migrate -- postgres://postgres@127.0.0.1:5432/mydb
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/mydb cargo run --example migrate
//! ```
//!
//! `scripts/check-migrations` runs it to compare the embedded migrations with the Diesel CLI's.

use std::error::Error;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(url) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
    else {
        eprintln!("usage: migrate <DATABASE_URL> (or set DATABASE_URL)");
        return ExitCode::from(2);
    };
    match authingo::postgres::run_migrations(&url).await {
        Ok(applied) => {
            for version in applied {
                println!("{version}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            // The URL is never printed: it may hold a password.
            eprintln!("migrate: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
