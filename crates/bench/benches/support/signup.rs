//! The sign-up timing section: with email verification required, sign-up for a taken address
//! against sign-up for a new one, one client, in alternating rounds, through the engine with its
//! default argon2 parameters on a fresh database. Nothing the answer carries tells the two apart;
//! their time must not either. Each call's background work (the insert, the token, the mail) is
//! waited for after its clock stops, so a call measures the request path alone. A third side, a
//! new address whose writes are waited for before the clock stops (the old request path, plus
//! the token's insert), shows that the bench can see a commit.

use std::time::{Duration, Instant};

use authingo::auth::{RequestContext, SignUp};
use authingo::postgres::{PgStore, PoolConfig, connect_with};
use authingo::{Auth, Options as AuthOptions};
use serde_json::{Value, json};

use super::Result;
use super::cli::Options;
use super::figures;
use super::measure::{Samples, Stats, round_order};

/// The address that has an account before the measurement starts.
const TAKEN: &str = "taken@bench.example";
const PASSWORD: &str = "correct horse battery staple";

/// The sides, in the order of [`SignupReport::sides`].
const SIDES: [Side; 3] = [Side::Taken, Side::New, Side::NewWritten];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Taken,
    New,
    NewWritten,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::Taken => "taken address",
            Self::New => "new address",
            Self::NewWritten => "new address, writes waited for",
        }
    }
}

/// The latency of each side, merged over the rounds.
#[derive(Debug, Clone)]
pub(crate) struct SignupReport {
    pub(crate) taken: Stats,
    pub(crate) new: Stats,
    /// The control: a new address, the clock stopped only once its background writes are done.
    pub(crate) new_written: Stats,
}

/// Runs the section on `url`, an empty database with the crate's migrations applied.
pub(crate) async fn run(url: &str, options: &Options) -> Result<SignupReport> {
    let pool = connect_with(url, &PoolConfig::default().max_size(4)).await?;
    let auth = Auth::new(
        AuthOptions::new(PgStore::new(pool))
            // Built in release; the mail of its sign-ups is read by nobody.
            .allow_dev_mailer(true)
            .cleanup_interval(None)
            .require_email_verification(true),
    )?;
    auth.ready().await?;
    let mut runner = Runner {
        auth,
        request: RequestContext::default(),
        next: 0,
    };
    runner.sign_up(Side::New, TAKEN).await?;
    runner.auth.flush_background().await;

    for side in SIDES {
        runner.side(side, options.warmup).await?;
    }
    let round = options.duration / options.rounds;
    let mut samples: [Samples; 3] = Default::default();
    for round_index in 0..options.rounds {
        for index in round_order(round_index, SIDES.len()) {
            samples[index].merge(runner.side(SIDES[index], round).await?);
        }
    }
    let [taken, new, new_written] = samples.map(|samples| samples.stats());
    Ok(SignupReport {
        taken,
        new,
        new_written,
    })
}

struct Runner {
    auth: Auth,
    request: RequestContext,
    /// Numbers the new addresses.
    next: u64,
}

impl Runner {
    /// Signs up one address after another as `side` for `span`, each call timed on its own.
    async fn side(&mut self, side: Side, span: Duration) -> Result<Samples> {
        let started = Instant::now();
        let mut calls = Vec::new();
        while started.elapsed() < span {
            let email = match side {
                Side::Taken => TAKEN.to_owned(),
                Side::New | Side::NewWritten => {
                    self.next += 1;
                    format!("new{}@bench.example", self.next)
                }
            };
            let start = Instant::now();
            self.sign_up(side, &email).await?;
            calls.push((start, start.elapsed()));
            // Outside the clock for the two sides compared: each call then starts on an engine
            // with no work left behind, as a probe sent now and then finds it.
            self.auth.flush_background().await;
        }
        Ok(Samples {
            elapsed: started.elapsed(),
            calls,
            ..Samples::default()
        })
    }

    async fn sign_up(&self, side: Side, email: &str) -> Result<()> {
        let outcome = self
            .auth
            .sign_up(email, PASSWORD, "Bench", &self.request)
            .await?;
        if !matches!(outcome, SignUp::VerificationSent) {
            return Err("sign-up with verification required opened a session".into());
        }
        if side == Side::NewWritten {
            self.auth.flush_background().await;
        }
        Ok(())
    }
}

impl SignupReport {
    fn sides(&self) -> [(Side, &Stats); 3] {
        [
            (Side::Taken, &self.taken),
            (Side::New, &self.new),
            (Side::NewWritten, &self.new_written),
        ]
    }
}

/// `a`'s over `b`'s median and p99.
fn ratios(a: &Stats, b: &Stats) -> (f64, f64) {
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    (ratio(a.p50_us, b.p50_us), ratio(a.p99_us, b.p99_us))
}

pub(crate) fn print(report: &SignupReport) {
    println!();
    println!(
        "Sign-up with email verification required: one client, default argon2, the sides in \
         alternating rounds"
    );
    println!(
        "{:<32} {:>6} {:>10} {:>10}",
        "side", "calls", "p50 ms", "p99 ms"
    );
    for (side, stats) in report.sides() {
        println!(
            "{:<32} {:>6} {:>10.2} {:>10.2}",
            side.label(),
            stats.ops,
            stats.p50_us / 1000.0,
            stats.p99_us / 1000.0
        );
    }
    let (p50, p99) = ratios(&report.new, &report.taken);
    println!("new / taken: p50 {p50:.3}, p99 {p99:.3}");
    let (p50, p99) = ratios(&report.new_written, &report.taken);
    println!("control, new with its writes / taken: p50 {p50:.3}, p99 {p99:.3}");
}

pub(crate) fn to_json(report: &SignupReport) -> Value {
    let (p50, p99) = ratios(&report.new, &report.taken);
    let (control_p50, control_p99) = ratios(&report.new_written, &report.taken);
    json!({
        "clients": 1,
        "taken": figures::stats_json(&report.taken),
        "new": figures::stats_json(&report.new),
        "new_with_writes_waited_for": figures::stats_json(&report.new_written),
        "p50_new_over_taken": p50,
        "p99_new_over_taken": p99,
        "p50_control_over_taken": control_p50,
        "p99_control_over_taken": control_p99,
    })
}
