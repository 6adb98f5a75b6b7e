//! Copies authingo's migrations into this application's `migrations/` (or the folder given), and
//! prints the ones it wrote. Run it after adding or upgrading authingo, then commit them:
//!
//! ```sh
//! cargo run -p diesel-app --bin copy-authingo-migrations
//! ```

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/migrations").to_owned());
    for name in authingo::postgres::copy_migrations(dir)? {
        println!("{name}");
    }
    Ok(())
}
