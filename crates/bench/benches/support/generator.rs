//! The flood generator: this same program started again as a separate process
//! (`store flood-generator ...`), so that the flood's clients run outside the server's process
//! and its tokio workers (issue 23). On a 2-core machine both processes still share the cores.
//!
//! The bench starts one per flood round. The generator opens its clients, prints `ready` on its
//! standard output once the flood runs, floods until its standard input closes, then prints one
//! line of JSON ([`GeneratorReport`]) and exits.

use std::ffi::OsStr;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::Result;
use super::flood::{Answers, FloodKind, Flooder, Tally, total};
use super::measure::{self, Samples, Stats, Until};
use super::web;

/// The hidden first argument that makes the program a flood generator.
pub(crate) const COMMAND: &str = "flood-generator";

/// The generator's first line once its flood runs.
const READY: &str = "ready";

/// How long the generator waits for its clients' first answers before it says it is ready
/// anyway (a server too slow to answer each client once is flooded already).
const READY_WAIT: Duration = Duration::from_secs(5);

/// How long the bench waits for a generator to start, and to report after it was stopped
/// (in-flight requests end within the HTTP client's 30 s timeout).
const START_WAIT: Duration = Duration::from_secs(30);
const STOP_WAIT: Duration = Duration::from_secs(60);

/// The generator's options, given by the bench (`Generator::start`), not by a person.
#[derive(Debug, Parser)]
#[command(name = "store flood-generator")]
struct Args {
    /// The route to flood
    #[arg(long)]
    url: reqwest::Url,
    #[arg(long, value_enum)]
    kind: FloodKind,
    #[arg(long)]
    clients: usize,
    /// Number of the first forwarded address (`flood::flood_address`)
    #[arg(long)]
    first_address: usize,
    /// Accounts signed up for the sign-in flood's clients with the right password
    #[arg(long, default_value_t = 0)]
    accounts: usize,
}

/// What a generator saw, sent to the bench when it stops.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GeneratorReport {
    pub(crate) answers: Answers,
    /// The answers of each second since the generator started.
    pub(crate) timeline: Vec<Answers>,
    /// From the first request to the last answer.
    pub(crate) seconds: f64,
    /// Every request's latency, in µs.
    pub(crate) latencies_us: Vec<u32>,
}

impl GeneratorReport {
    /// Its requests per second and latencies, as the bench's other figures are made (every
    /// answer counts, whatever its status).
    pub(crate) fn stats(&self) -> Stats {
        // The start times only matter to windows, which these samples are not cut into.
        let now = Instant::now();
        Samples {
            elapsed: Duration::from_secs_f64(self.seconds),
            calls: self
                .latencies_us
                .iter()
                .map(|&us| (now, Duration::from_micros(u64::from(us))))
                .collect(),
            ..Samples::default()
        }
        .stats()
    }
}

/// Runs the generator when the program was started as one (see [`COMMAND`]); `None` otherwise.
pub(crate) fn main_if_invoked() -> Option<ExitCode> {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new(COMMAND)) {
        return None;
    }
    // Its name in the place of the program's: clap takes the first argument as the name.
    let args = Args::parse_from(std::env::args_os().skip(1));
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Into::into)
        .and_then(|runtime| runtime.block_on(generate(args)));
    Some(match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flood generator failed: {err}");
            ExitCode::FAILURE
        }
    })
}

async fn generate(args: Args) -> Result<()> {
    let client = web::client()?;
    let tally = Arc::new(Tally::default());
    let flooders = (0..args.clients)
        .map(|n| {
            Flooder::new(
                args.kind,
                (client.clone(), args.url.clone()),
                (args.first_address, n, args.accounts),
                Arc::clone(&tally),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let until = Until::Flag(Arc::clone(&stop));
        tokio::spawn(async move { measure::drive(flooders, &until, None).await })
    };
    // Ready once about every client was answered: its connection is open and the flood runs.
    let waiting = Instant::now();
    while total(&tally.read()) < args.clients as u64 && waiting.elapsed() < READY_WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    say(READY)?;
    // Until the bench closes the pipe (or goes away, which closes it too).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    stop.store(true, Ordering::Relaxed);
    let samples = flood.await??;
    let report = GeneratorReport {
        answers: tally.read(),
        timeline: tally.timeline(),
        seconds: samples.elapsed.as_secs_f64(),
        latencies_us: samples
            .calls
            .iter()
            .map(|(_, took)| u32::try_from(took.as_micros()).unwrap_or(u32::MAX))
            .collect(),
    };
    say(&serde_json::to_string(&report)?)
}

/// One line to the bench, at once.
fn say(line: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

/// A running generator, from the bench's side.
#[derive(Debug)]
pub(crate) struct Generator {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// Where and how a generator floods.
#[derive(Debug, Clone)]
pub(crate) struct FloodPlan {
    pub(crate) kind: FloodKind,
    pub(crate) url: reqwest::Url,
    pub(crate) clients: usize,
    pub(crate) first_address: usize,
    pub(crate) accounts: usize,
}

impl Generator {
    /// Starts a generator and waits until its flood runs. It is killed if dropped unstopped.
    pub(crate) async fn start(plan: &FloodPlan) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(COMMAND)
            .arg("--url")
            .arg(plan.url.as_str())
            .arg("--kind")
            .arg(match plan.kind {
                FloodKind::SignIn => "sign-in",
                FloodKind::ResetToken => "reset-token",
            })
            .args(["--clients", &plan.clients.to_string()])
            .args(["--first-address", &plan.first_address.to_string()])
            .args(["--accounts", &plan.accounts.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("the generator's output")?;
        let mut generator = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let mut line = String::new();
        tokio::time::timeout(START_WAIT, generator.stdout.read_line(&mut line))
            .await
            .map_err(|_| "the flood generator did not start in time")??;
        if line.trim_end() != READY {
            return Err("the flood generator ended before its flood ran (see above)".into());
        }
        Ok(generator)
    }

    /// Its process id, for its CPU time.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the flood and waits for the generator's report.
    pub(crate) async fn stop(mut self) -> Result<GeneratorReport> {
        drop(self.stdin.take());
        let mut out = String::new();
        tokio::time::timeout(STOP_WAIT, self.stdout.read_to_string(&mut out))
            .await
            .map_err(|_| "the flood generator did not stop in time")??;
        let status = self.child.wait().await?;
        if !status.success() {
            return Err(format!("the flood generator failed ({status}; see above)").into());
        }
        Ok(serde_json::from_str(out.trim())?)
    }
}
