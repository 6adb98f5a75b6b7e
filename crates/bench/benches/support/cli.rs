//! Command-line options of the bench program.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser, ValueEnum};

use super::workload::Op;

/// The parts of the run, each a function in `benches/store.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Section {
    /// Every `Store` method against the raw tokio-postgres baseline, plus pgbench
    Store,
    /// Bounded-batch cleanup against one unbounded DELETE
    Cleanup,
    /// GET /session through the router against a minimal handler, alone and during sign-ins
    Http,
    /// Floods of sign-ins and of random reset tokens from a separate process against the
    /// example's router, while GET /session and well-behaved sign-ins run
    Flood,
    /// GET /api/me through authingo, axum-login + tower-sessions and a minimal handler
    Peers,
    /// Sign-up with email verification required: a taken address against a new one (needs no
    /// loaded data: only this section skips the load)
    SignupTiming,
}

/// The store bench: PgStore against the same SQL on raw tokio-postgres, pgbench, the
/// bounded-batch cleanup against one DELETE, and GET /session over HTTP. BENCHMARKS.md has the
/// figures and how to read them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "store",
    override_usage = "cargo bench -p authingo-bench --bench store -- [OPTIONS]"
)]
pub(crate) struct Options {
    /// Measured seconds per side, operation and concurrency; also of pgbench and of each idle
    /// phase
    #[arg(long, value_name = "SECS", default_value = "6", value_parser = positive_seconds)]
    pub(crate) duration: Duration,
    /// Rounds the duration is split into; the sides alternate A,B then B,A
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) rounds: u32,
    /// Unmeasured warm-up before each measurement, in seconds
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    pub(crate) warmup: Duration,
    /// Client counts of the store and peers sections, comma-separated
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,8,32",
        value_parser = at_least_one
    )]
    pub(crate) concurrency: Vec<usize>,
    /// Store operations to measure, comma-separated [default: all]
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_enum,
        default_values_t = Op::ALL,
        hide_default_value = true
    )]
    pub(crate) ops: Vec<Op>,
    /// Users loaded
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) users: u64,
    /// Sessions loaded, half of them dead; at least 1000 and 8 per client
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub(crate) sessions: u64,
    /// Run one section only
    #[arg(long, value_name = "SECTION")]
    pub(crate) only: Option<Section>,
    /// The cleanup section's get_session calls per second in all, from 8 clients, evenly paced;
    /// 0 = flat out, each client back to back
    #[arg(long, value_name = "N", default_value_t = 4000.0, value_parser = non_negative)]
    pub(crate) cleanup_rate: f64,
    /// Rows per statement of the paced sweep [default: CleanupPace::default()'s]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sweep_batch: Option<u32>,
    /// The paced sweep's pause after each batch, as a multiple of the batch's time [default:
    /// CleanupPace::default()'s]
    #[arg(long, value_name = "RATIO", value_parser = non_negative)]
    pub(crate) sweep_pause: Option<f64>,
    /// HTTP clients sending GET /session
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = at_least_one)]
    pub(crate) http_clients: usize,
    /// Their requests per second in all while sign-ins run and in the idle rounds compared with
    /// them, evenly paced
    #[arg(long, value_name = "N", default_value_t = 2000.0, value_parser = positive)]
    pub(crate) http_rate: f64,
    /// Tasks signing in back to back over HTTP
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one)]
    pub(crate) sign_ins: usize,
    /// Clients of each flood of the flood section (sign-ins, random reset tokens), back to back,
    /// each from its own address, in a separate process
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = at_least_one)]
    pub(crate) flood_clients: usize,
    /// Well-behaved clients of the flood section, each signing in with its own account's right
    /// password from its own address
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = at_least_one)]
    pub(crate) well_behaved: usize,
    /// Their sign-ins per second in all, evenly paced
    #[arg(long, value_name = "N", default_value_t = 10.0, value_parser = positive)]
    pub(crate) well_behaved_rate: f64,
    /// Also write the results as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Server to create the bench databases on
    #[arg(
        long,
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub(crate) database_url: String,
}

impl Options {
    /// The options of this run; prints the help or an error and exits when asked or wrong.
    pub(crate) fn from_args() -> Self {
        // `cargo bench` passes `--bench` to a target without the libtest harness.
        let options =
            Self::parse_from(std::env::args_os().filter(|arg| arg.as_os_str() != "--bench"));
        let most = options.concurrency.iter().copied().max().unwrap_or(1) as u64;
        // The refresh workers each own a share of a quarter of the live sessions.
        if options.sessions < 1000 || options.sessions / 8 < most {
            Self::command()
                .error(
                    ErrorKind::ValueValidation,
                    format!("--sessions must be at least max(1000, 8 x {most})"),
                )
                .exit();
        }
        options
    }

    /// The cleanup traffic's calls per second in all; `None`: flat out.
    pub(crate) fn cleanup_pace(&self) -> Option<f64> {
        Some(self.cleanup_rate).filter(|rate| *rate > 0.0)
    }

    /// The pace of the cleanup section's paced sweep.
    pub(crate) fn sweep_pace(&self) -> authingo::CleanupPace {
        let default = authingo::CleanupPace::default();
        authingo::CleanupPace {
            batch_size: self.sweep_batch.unwrap_or(default.batch_size),
            pause_ratio: self.sweep_pause.unwrap_or(default.pause_ratio),
        }
    }

    /// Whether a section that works on the loaded users and sessions runs.
    pub(crate) fn needs_data(&self) -> bool {
        self.only != Some(Section::SignupTiming)
    }

    pub(crate) fn runs(&self, section: Section) -> bool {
        self.only.is_none_or(|only| only == section)
    }
}

fn seconds(value: &str) -> Result<Duration, String> {
    let secs: f64 = value.parse().map_err(|_| "not a number".to_owned())?;
    Duration::try_from_secs_f64(secs).map_err(|err| err.to_string())
}

fn positive_seconds(value: &str) -> Result<Duration, String> {
    Some(seconds(value)?)
        .filter(|secs| !secs.is_zero())
        .ok_or_else(|| "must be more than 0".to_owned())
}

fn at_least_one(value: &str) -> Result<usize, String> {
    match value.trim().parse() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a whole number".to_owned()),
    }
}

fn non_negative(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n >= 0.0 => Ok(n),
        _ => Err("not a number of 0 or more".to_owned()),
    }
}

fn positive(value: &str) -> Result<f64, String> {
    non_negative(value).and_then(|n| {
        if n > 0.0 {
            Ok(n)
        } else {
            Err("must be more than 0".to_owned())
        }
    })
}
