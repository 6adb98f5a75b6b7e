//! The cost of one password hash and one verification with the default argon2id parameters, and
//! of one verification of a bcrypt hash at Go's default cost (10), as the Go library stored them
//! (authingo's `bcrypt` feature, which this crate turns on).
//!
//! Run with `cargo bench -p authingo-bench --bench password -- [--samples N] [--json FILE]`:
//! prints the median, p10 and p90 of each, in milliseconds, measured one at a time on one thread,
//! the three taken in turn so that a drift of the machine's speed touches each alike.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use authingo::password::{Argon2Params, Argon2id, PasswordHasher as _};
use clap::Parser;

/// The cost of one argon2id hash and one verification with the default parameters, and of one
/// bcrypt verification at cost 10, measured one at a time on one thread.
#[derive(Debug, Parser)]
#[command(
    name = "password",
    override_usage = "cargo bench -p authingo-bench --bench password -- [OPTIONS]"
)]
struct Args {
    /// Hashes and verifications measured, each
    #[arg(
        long,
        value_name = "N",
        default_value_t = 40,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    samples: u16,
    /// Also write the results as JSON to this file
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench` to a target without the libtest harness.
    let Args { samples, json } =
        Args::parse_from(std::env::args_os().filter(|arg| arg.as_os_str() != "--bench"));
    let samples = usize::from(samples);
    let params = Argon2Params::default();
    let hasher = Argon2id::new(params)?;
    let password = "correct horse battery staple";
    let stored = hasher.hash(password)?;

    let (bcrypt_hasher, bcrypt_stored) = (
        authingo::password::WithBcrypt::new(Argon2id::new(params)?),
        bcrypt::hash_with_result(password, 10)?.format_for_version(bcrypt::Version::TwoA),
    );

    let mut hashes = Vec::with_capacity(samples);
    let mut verifies = Vec::with_capacity(samples);
    let mut bcrypt_verifies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        std::hint::black_box(hasher.hash(password)?);
        hashes.push(start.elapsed());
        let start = Instant::now();
        assert!(hasher.verify(password, &stored)?);
        verifies.push(start.elapsed());
        let start = Instant::now();
        assert!(bcrypt_hasher.verify(password, &bcrypt_stored)?);
        bcrypt_verifies.push(start.elapsed());
    }
    hashes.sort();
    verifies.sort();
    bcrypt_verifies.sort();

    println!(
        "argon2id m={} KiB t={} p={}, {samples} samples each, one thread",
        params.memory_kib, params.iterations, params.parallelism
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10}",
        "op", "p10 ms", "median ms", "p90 ms"
    );
    let mut rows = Vec::new();
    for (name, sorted) in [
        ("hash", &hashes),
        ("verify", &verifies),
        ("bcrypt-10 verify", &bcrypt_verifies),
    ] {
        let (p10, p50, p90) = (
            percentile(sorted, 0.1),
            percentile(sorted, 0.5),
            percentile(sorted, 0.9),
        );
        println!("{name:<16} {p10:>10.2} {p50:>10.2} {p90:>10.2}");
        rows.push(serde_json::json!({
            "op": name, "p10_ms": p10, "median_ms": p50, "p90_ms": p90, "samples": samples,
        }));
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
