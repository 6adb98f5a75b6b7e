//! Command-line options of the bench program.

use std::path::PathBuf;
use std::time::Duration;

use super::Result;
use super::workload::Op;

/// The parts of the run, each a function in `benches/store.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// Every `Store` method against the raw tokio-postgres baseline, plus pgbench.
    Store,
    /// Bounded-batch cleanup against one unbounded DELETE.
    Cleanup,
    /// `GET /session` through the axum router against a minimal handler, and its latency while
    /// sign-ins run.
    Http,
}

impl Section {
    fn parse(value: &str) -> Result<Self> {
        match value {
            "store" => Ok(Self::Store),
            "cleanup" => Ok(Self::Cleanup),
            "http" => Ok(Self::Http),
            other => Err(format!("unknown section {other:?} (store, cleanup, http)").into()),
        }
    }
}

pub(crate) const USAGE: &str = "\
usage: cargo bench --bench store -- [options]

  --duration SECS        measured time per implementation, operation and concurrency,
                         and of pgbench and of each idle phase (default 6)
  --rounds N             rounds the duration is split into; store and baseline alternate
                         A,B then B,A (default 4)
  --warmup SECS          unmeasured warm-up before each measurement (default 1)
  --concurrency LIST     client counts, comma-separated (default 1,8,32)
  --ops LIST             store operations to measure (default all): get_session,
                         get_user_by_email, create_session, refresh_session, delete_session
  --users N              users loaded (default 100000)
  --sessions N           sessions loaded, half of them dead (default 1000000)
  --only SECTION         run one section: store, cleanup or http
  --cleanup-clients N    get_session clients running during the cleanup (default 8)
  --cleanup-rate N       their calls per second in all, evenly paced (default 4000);
                         0 = flat out, each client calling back to back
  --http-clients N       HTTP clients sending GET /session (default 32)
  --http-rate N          their requests per second in all while sign-ins run and in the
                         idle rounds compared with them, evenly paced (default 2000)
  --sign-ins N           tasks signing in back to back over HTTP (default 8)
  --no-pgbench           skip pgbench
  --explain              also measure the baseline preparing its statement before every
                         call (what a client without a statement cache does), and the
                         cleanup's batches with a pause after each as long as the batch
  --json FILE            also write the results as JSON
  --database-url URL     server to create the bench databases on (default: DATABASE_URL,
                         else postgres://postgres@127.0.0.1:5432/postgres)

Unknown flags (cargo passes --bench) are ignored.";

/// What to run, and how long.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) duration: Duration,
    pub(crate) rounds: u32,
    pub(crate) warmup: Duration,
    pub(crate) concurrency: Vec<usize>,
    pub(crate) ops: Vec<Op>,
    pub(crate) users: u64,
    pub(crate) sessions: u64,
    pub(crate) only: Option<Section>,
    pub(crate) cleanup_clients: usize,
    /// `None`: flat out.
    pub(crate) cleanup_rate: Option<f64>,
    pub(crate) http_clients: usize,
    pub(crate) http_rate: f64,
    pub(crate) sign_ins: usize,
    pub(crate) pgbench: bool,
    pub(crate) explain: bool,
    pub(crate) json: Option<PathBuf>,
    pub(crate) database_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(6),
            rounds: 4,
            warmup: Duration::from_secs(1),
            concurrency: vec![1, 8, 32],
            ops: Op::ALL.to_vec(),
            users: 100_000,
            sessions: 1_000_000,
            only: None,
            cleanup_clients: 8,
            cleanup_rate: Some(4000.0),
            http_clients: 32,
            http_rate: 2000.0,
            sign_ins: 8,
            pgbench: true,
            explain: false,
            json: None,
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        }
    }
}

/// `Ok(None)` when `--help` was asked for.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>> {
    let mut options = Options::default();
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value").into())
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--duration" => options.duration = seconds(&flag, &value()?)?,
            "--warmup" => options.warmup = seconds(&flag, &value()?)?,
            "--rounds" => options.rounds = number::<u32>(&flag, &value()?)?.max(1),
            "--concurrency" => {
                options.concurrency = value()?
                    .split(',')
                    .map(|c| number::<usize>(&flag, c).map(|c| c.max(1)))
                    .collect::<Result<_>>()?;
            }
            "--ops" => {
                options.ops = value()?.split(',').map(Op::parse).collect::<Result<_>>()?;
            }
            "--users" => options.users = number(&flag, &value()?)?,
            "--sessions" => options.sessions = number(&flag, &value()?)?,
            "--only" => options.only = Some(Section::parse(&value()?)?),
            "--cleanup-clients" => {
                options.cleanup_clients = number::<usize>(&flag, &value()?)?.max(1)
            }
            "--cleanup-rate" => {
                let rate: f64 = number(&flag, &value()?)?;
                options.cleanup_rate = (rate > 0.0).then_some(rate);
            }
            "--http-clients" => options.http_clients = number::<usize>(&flag, &value()?)?.max(1),
            "--http-rate" => {
                let rate: f64 = number(&flag, &value()?)?;
                if rate <= 0.0 {
                    return Err("--http-rate must be positive".into());
                }
                options.http_rate = rate;
            }
            "--sign-ins" => options.sign_ins = number::<usize>(&flag, &value()?)?.max(1),
            "--no-pgbench" => options.pgbench = false,
            "--explain" => options.explain = true,
            "--json" => options.json = Some(PathBuf::from(value()?)),
            "--database-url" => options.database_url = value()?,
            // `cargo bench` passes `--bench`, and possibly a filter: neither means anything here.
            other => eprintln!("note: ignoring argument {other:?}"),
        }
    }
    if options.users == 0 {
        return Err("--users must be at least 1".into());
    }
    let most = options.concurrency.iter().copied().max().unwrap_or(1) as u64;
    // The refresh workers each own a share of a quarter of the live sessions.
    if options.sessions < 1000 || options.sessions / 8 < most {
        return Err(format!("--sessions must be at least max(1000, 8 x {most})").into());
    }
    Ok(Some(options))
}

impl Options {
    pub(crate) fn runs(&self, section: Section) -> bool {
        self.only.is_none_or(|only| only == section)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}").into())
}

fn seconds(flag: &str, value: &str) -> Result<Duration> {
    let secs: f64 = number(flag, value)?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero() || flag == "--warmup")
        .ok_or_else(|| format!("{flag}: not a positive number of seconds: {value:?}").into())
}
