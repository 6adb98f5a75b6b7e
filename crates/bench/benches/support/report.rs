//! The results: one record per section, printed as tables and written as JSON.

use serde_json::{Value, json};

use super::cli::Options;
use super::cpu::Spent;
use super::figures::{disturbed, latency, ops_ratio, p99_ratio, ratio, stats_json, us};
use super::flood::{Answers, describe, of_status, total};
use super::measure::Stats;
use super::pgbench::Outcome;
use super::workload::{Dataset, Op};

/// Where the figures were measured.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) cpu: String,
    pub(crate) postgres: String,
    /// A few server settings that move the figures (shared_buffers, synchronous_commit, ...).
    pub(crate) settings: Vec<(String, String)>,
}

/// Whether the SQL the baseline sends is what `PgStore`'s connections were seen running.
#[derive(Debug, Clone)]
pub(crate) enum SqlCheck {
    Same,
    /// Not seen (no idle store connection); nothing to compare.
    Unknown,
    Differs(String),
}

#[derive(Debug, Clone)]
pub(crate) struct StoreRow {
    pub(crate) op: Op,
    pub(crate) concurrency: usize,
    pub(crate) store: Stats,
    pub(crate) baseline: Stats,
    pub(crate) sql: SqlCheck,
}

#[derive(Debug, Clone)]
pub(crate) struct PgbenchRow {
    pub(crate) clients: usize,
    pub(crate) outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StoreReport {
    pub(crate) rows: Vec<StoreRow>,
    pub(crate) pgbench: Vec<PgbenchRow>,
    /// One argon2id verification with the default parameters, in ms (median of 15): what a
    /// sign-in costs besides its statements.
    pub(crate) argon2_verify_ms: Option<f64>,
    /// `create_session` without and with the specification's duplicate indexes.
    pub(crate) indexes: Vec<IndexRow>,
}

/// `create_session` at one concurrency on a copy of the seed as migrated (`lean`) and on one with
/// the specification's duplicate indexes on the two token columns put back (`doubled`).
#[derive(Debug, Clone)]
pub(crate) struct IndexRow {
    pub(crate) concurrency: usize,
    pub(crate) lean: Stats,
    pub(crate) doubled: Stats,
}

/// How the dead sessions went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `PgStore::cleanup_expired_sessions`: bounded batches at the default pace.
    Sweep,
    /// The same batches with no pause between them.
    SweepUnthrottled,
    /// One `DELETE` of every dead session.
    UnboundedDelete,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sweep => "cleanup_expired_sessions",
            Self::SweepUnthrottled => "sweep, unthrottled",
            Self::UnboundedDelete => "unbounded DELETE",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CleanupRow {
    pub(crate) method: Method,
    pub(crate) seconds: f64,
    pub(crate) deleted: u64,
    /// Dead sessions still there afterwards (0 when the method did its job).
    pub(crate) left: i64,
    pub(crate) idle: Stats,
    pub(crate) during: Stats,
    /// The traffic in the seconds right after the cleanup ended.
    pub(crate) after: Stats,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct CleanupReport {
    pub(crate) clients: usize,
    /// Calls per second of the traffic in all; `None` when flat out.
    pub(crate) rate: Option<f64>,
    /// How long after each cleanup the traffic was still measured ("after").
    pub(crate) aftermath_secs: f64,
    /// The pace of the `cleanup_expired_sessions` row.
    pub(crate) sweep: authingo::CleanupPace,
    pub(crate) rows: Vec<CleanupRow>,
}

/// `GET /session` over HTTP: the crate's router against a minimal handler, and the router's
/// latency at a paced rate with and without sign-ins running.
#[derive(Debug, Clone)]
pub(crate) struct HttpReport {
    /// Clients sending `GET /session`.
    pub(crate) clients: usize,
    /// Sessions the requests draw from.
    pub(crate) sessions: u64,
    /// Flat out, through `auth.router()`.
    pub(crate) router: Stats,
    /// Flat out, through a minimal handler calling `auth.get_session`.
    pub(crate) engine: Stats,
    /// Flat out, through the minimal handler running the statement on tokio-postgres.
    pub(crate) minimal: Stats,
    /// Requests per second of the paced traffic, in all.
    pub(crate) rate: f64,
    /// Tasks signing in back to back.
    pub(crate) sign_in_tasks: usize,
    /// The paced traffic with no sign-ins.
    pub(crate) idle: Stats,
    /// The paced traffic while the sign-ins run, hashing on the default threads (one fewer than
    /// the cores).
    pub(crate) during: Stats,
    /// The sign-ins themselves, over the same windows.
    pub(crate) sign_ins: Stats,
    /// The paced traffic while the same sign-ins run on an engine hashing on every core.
    pub(crate) all_cores: Stats,
    /// Those sign-ins, over the same windows.
    pub(crate) all_cores_sign_ins: Stats,
}

/// The flood section (issue 23): the same paced traffic (`GET /session`, well-behaved sign-ins)
/// with no flood, beside a sign-in flood, and beside a flood of random reset tokens, each flood
/// from a separate generator process.
#[derive(Debug, Clone)]
pub(crate) struct FloodReport {
    /// Clients of each flood, each from its own forwarded address.
    pub(crate) clients: usize,
    /// `GET /session` clients, and their requests per second in all.
    pub(crate) http_clients: usize,
    pub(crate) rate: f64,
    /// Well-behaved clients signing in, and their sign-ins per second in all.
    pub(crate) well_behaved: usize,
    pub(crate) well_behaved_rate: f64,
    /// Seconds each flood ran while the paced traffic was measured; the idle phase as long, in
    /// two halves, before the floods and after them.
    pub(crate) duration: f64,
    pub(crate) idle: FloodPhase,
    pub(crate) sign_in_flood: FloodPhase,
    pub(crate) reset_flood: FloodPhase,
    /// The bench process's resident memory (server, engine, paced clients) before the first
    /// phase and its peak after the last, in KiB.
    pub(crate) rss_before_kib: Option<u64>,
    pub(crate) peak_rss_kib: Option<u64>,
}

/// One phase of the flood section.
#[derive(Debug, Clone)]
pub(crate) struct FloodPhase {
    /// `GET /session`, paced.
    pub(crate) get_session: Stats,
    /// The well-behaved sign-ins (every answer's latency) and their answers.
    pub(crate) sign_ins: Stats,
    pub(crate) sign_in_answers: Answers,
    /// The flood's requests (latency of every answer, requests per second over the generators'
    /// lifetimes) and answers; `None` with no flood.
    pub(crate) flood: Option<(Stats, Answers)>,
    /// Password hashes and verifications from each generator's start to its stop (the measured
    /// window with no flood).
    pub(crate) hashes: u64,
    /// Of those, the well-behaved sign-ins' (one for each 200 or 401).
    pub(crate) well_behaved_hashes: u64,
    /// CPU spent from the paced traffic's start until its last request was answered (a
    /// well-behaved sign-in may be answered well after `--duration`), and that time in seconds.
    pub(crate) cpu: Spent,
    pub(crate) seconds: f64,
    /// Second by second from the generator's start; empty with no flood.
    pub(crate) timeline: Vec<FloodSecond>,
}

/// One second of a flood, counted from when the bench started its generator (the generator
/// counts from its own start, a few milliseconds later).
#[derive(Debug, Clone, Default)]
pub(crate) struct FloodSecond {
    pub(crate) flood: Answers,
    pub(crate) well_behaved: Answers,
    /// `GET /session` in that second; `None` before the measurement started.
    pub(crate) get_session: Option<Stats>,
}

impl FloodPhase {
    /// Well-behaved sign-ins answered 200, of all they made.
    pub(crate) fn success_rate(&self) -> f64 {
        let ok = self.sign_in_answers.get("200").copied().unwrap_or(0);
        ratio(ok as f64, total(&self.sign_in_answers) as f64)
    }

    /// A share of the machine's cores over the measured windows (0 to 1).
    fn share(&self, cpu: Option<std::time::Duration>) -> Option<f64> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        cpu.filter(|_| self.seconds > 0.0)
            .map(|cpu| cpu.as_secs_f64() / self.seconds / cores)
    }
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) data: Dataset,
    pub(crate) store: Option<StoreReport>,
    pub(crate) cleanup: Option<CleanupReport>,
    pub(crate) http: Option<HttpReport>,
    pub(crate) flood: Option<FloodReport>,
    pub(crate) peers: Option<super::peers::PeersReport>,
    pub(crate) signup: Option<super::signup::SignupReport>,
    pub(crate) seconds: f64,
}

pub(crate) fn print_machine(machine: &Machine, data: Dataset, options: &Options) {
    println!(
        "machine: {} cores ({}), {}",
        machine.cores, machine.cpu, machine.postgres
    );
    let settings: Vec<String> = machine
        .settings
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("server settings: {}", settings.join(", "));
    if !options.needs_data() {
        println!(
            "data: none loaded; {:.1} s per side in {} rounds, {:.1} s warm-up",
            options.duration.as_secs_f64(),
            options.rounds,
            options.warmup.as_secs_f64()
        );
        println!();
        return;
    }
    println!(
        "data: {} users, {} sessions ({} live, {} dead); {:.1} s per measurement in {} rounds, \
         {:.1} s warm-up",
        data.users,
        data.sessions,
        data.live(),
        data.dead(),
        options.duration.as_secs_f64(),
        options.rounds,
        options.warmup.as_secs_f64()
    );
    println!();
}

pub(crate) fn store_header() {
    println!("Store: PgStore (as Arc<dyn Store>) vs the same SQL on tokio-postgres + bb8-postgres");
    println!(
        "{:<18} {:>4} {:>12} {:>12} {:>6} {:>20} {:>20}",
        "operation",
        "conc",
        "store ops/s",
        "base ops/s",
        "ratio",
        "store p50/p99 µs",
        "base p50/p99 µs"
    );
}

pub(crate) fn store_row(row: &StoreRow) {
    println!(
        "{:<18} {:>4} {:>12.0} {:>12.0} {:>6.2} {:>20} {:>20}",
        row.op.name(),
        row.concurrency,
        row.store.ops_per_sec,
        row.baseline.ops_per_sec,
        ops_ratio(&row.store, &row.baseline),
        latency(&row.store),
        latency(&row.baseline)
    );
    if row.store.misses + row.baseline.misses > 0 {
        println!(
            "  warning: {} store and {} baseline calls found nothing to do",
            row.store.misses, row.baseline.misses
        );
    }
    disturbed("during the store's rounds", &row.store);
    disturbed("during the baseline's rounds", &row.baseline);
    if let SqlCheck::Unknown = &row.sql {
        println!("  note: PgStore's last statement was not seen; its SQL was not compared");
    }
    if let SqlCheck::Differs(seen) = &row.sql {
        let seen: String = seen.split_whitespace().collect::<Vec<_>>().join(" ");
        let excerpt: String = seen.chars().take(100).collect();
        println!("  warning: PgStore ran other SQL than the baseline: {excerpt}...");
    }
}

/// CPU per call on each side: where a gap comes from.
pub(crate) fn print_cpu(rows: &[StoreRow]) {
    if rows.iter().all(|row| row.store.client_cpu_us.is_none()) {
        return;
    }
    println!();
    println!("CPU per call, µs: client = this process, server = the pool's backends");
    println!(
        "{:<18} {:>4} {:>14} {:>14} {:>14} {:>14}",
        "operation", "conc", "client store", "client base", "server store", "server base"
    );
    for row in rows {
        println!(
            "{:<18} {:>4} {:>14} {:>14} {:>14} {:>14}",
            row.op.name(),
            row.concurrency,
            us(row.store.client_cpu_us),
            us(row.baseline.client_cpu_us),
            us(row.store.server_cpu_us),
            us(row.baseline.server_cpu_us)
        );
    }
}

/// `create_session` before (`doubled`) and after (`lean`) the second migration dropped the
/// duplicate indexes.
pub(crate) fn print_indexes(rows: &[IndexRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "create_session as migrated, against a copy with the specification's duplicate indexes \
         on token and refresh_token put back"
    );
    println!(
        "{:>4} {:>12} {:>12} {:>6} {:>16} {:>16} {:>12} {:>12}",
        "conc",
        "ops/s now",
        "ops/s dup.",
        "ratio",
        "now p50/p99 µs",
        "dup. p50/p99 µs",
        "server now",
        "server dup."
    );
    for row in rows {
        println!(
            "{:>4} {:>12.0} {:>12.0} {:>6.2} {:>16} {:>16} {:>12} {:>12}",
            row.concurrency,
            row.lean.ops_per_sec,
            row.doubled.ops_per_sec,
            ops_ratio(&row.lean, &row.doubled),
            latency(&row.lean),
            latency(&row.doubled),
            us(row.lean.server_cpu_us),
            us(row.doubled.server_cpu_us)
        );
        disturbed("as migrated", &row.lean);
        disturbed("with the duplicate indexes", &row.doubled);
    }
}

/// What the abuse checks add to a sign-in: their latency at each concurrency against one argon2
/// verification.
pub(crate) fn print_rate_limit(report: &StoreReport) {
    let Some(verify_ms) = report.argon2_verify_ms else {
        return;
    };
    println!();
    println!(
        "Abuse checks on a sign-in (count_request: the address's rate limit, one upsert; \
         sign_in_throttle: the email's count and its clearing): one argon2id verification takes \
         {verify_ms:.1} ms here"
    );
    println!(
        "{:<18} {:>4} {:>14} {:>14} {:>22}",
        "check", "conc", "store p50 µs", "base p50 µs", "adds to a sign-in"
    );
    let checks = report
        .rows
        .iter()
        .filter(|row| matches!(row.op, Op::CountRequest | Op::SignInThrottle));
    for row in checks {
        println!(
            "{:<18} {:>4} {:>14.0} {:>14.0} {:>21.2}%",
            row.op.name(),
            row.concurrency,
            row.store.p50_us,
            row.baseline.p50_us,
            row.store.p50_us / (verify_ms * 1000.0) * 100.0
        );
    }
}

pub(crate) fn print_pgbench(rows: &[PgbenchRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("pgbench -M prepared, get_session's statement (the server's ceiling)");
    println!("{:>7} {:>12} {:>16}", "clients", "tps", "latency avg ms");
    for row in rows {
        match &row.outcome {
            Outcome::Ran { tps, latency_ms } => {
                println!("{:>7} {:>12.0} {:>16.3}", row.clients, tps, latency_ms);
            }
            Outcome::Missing => println!("{:>7} pgbench is not on PATH", row.clients),
            Outcome::Failed(why) => println!("{:>7} pgbench failed: {why}", row.clients),
        }
    }
}

pub(crate) fn print_cleanup(report: &CleanupReport, data: Dataset) {
    println!();
    let pace = report.rate.map_or_else(
        || "flat out".to_owned(),
        |rate| format!("{rate:.0} calls/s in all, paced"),
    );
    println!(
        "Cleanup: {} dead of {} sessions; get_session traffic from {} clients on PgStore, {pace}",
        data.dead(),
        data.sessions,
        report.clients
    );
    println!(
        "paced sweep: batches of {} rows, after each a pause {}x as long as it took",
        report.sweep.batch_size, report.sweep.pause_ratio
    );
    println!(
        "{:<26} {:>6} {:>7} {:>8} {:>15} {:>15} {:>7} {:>10} {:>7} {:>10}",
        "method",
        "time s",
        "deleted",
        "rows/s",
        "idle p50/p99 µs",
        "during p50/p99",
        "x idle",
        "after p99",
        "x idle",
        "ops/s dur."
    );
    for row in &report.rows {
        println!(
            "{:<26} {:>6.2} {:>7} {:>8.0} {:>15} {:>15} {:>6.2}x {:>10.0} {:>6.2}x {:>10.0}",
            row.method.name(),
            row.seconds,
            row.deleted,
            row.deleted as f64 / row.seconds,
            latency(&row.idle),
            latency(&row.during),
            p99_ratio(&row.during, &row.idle),
            row.after.p99_us,
            p99_ratio(&row.after, &row.idle),
            row.during.ops_per_sec
        );
        if row.left != 0 {
            println!("  warning: {} dead sessions left afterwards", row.left);
        }
        for (phase, stats) in [
            ("while idle", &row.idle),
            ("during the cleanup", &row.during),
            ("after the cleanup", &row.after),
        ] {
            disturbed(phase, stats);
        }
    }
}

pub(crate) fn print_http(report: &HttpReport) {
    println!();
    println!(
        "HTTP: GET /api/auth/session flat out, HTTP/1.1 keep-alive from {} reqwest clients in \
         this process; {} sessions",
        report.clients, report.sessions
    );
    println!(
        "{:<34} {:>8} {:>16} {:>14} {:>14}",
        "server", "req/s", "p50/p99 µs", "process µs/req", "backend µs/req"
    );
    let sides = [
        ("auth.router() (PgStore)", &report.router),
        ("minimal + auth.get_session", &report.engine),
        ("minimal + tokio-postgres", &report.minimal),
    ];
    for (name, stats) in sides {
        println!(
            "{:<34} {:>8.0} {:>16} {:>14} {:>14}",
            name,
            stats.ops_per_sec,
            latency(stats),
            us(stats.client_cpu_us),
            us(stats.server_cpu_us)
        );
        if stats.misses > 0 {
            println!("  warning: {} requests were not answered 200", stats.misses);
        }
        disturbed(&format!("during the rounds of {name}"), stats);
    }
    println!(
        "ratio router/minimal {:.2}   router/engine handler {:.2}   engine handler/minimal {:.2}",
        ops_ratio(&report.router, &report.minimal),
        ops_ratio(&report.router, &report.engine),
        ops_ratio(&report.engine, &report.minimal)
    );
    println!();
    println!(
        "GET /session through the router, paced at {:.0} req/s from {} clients, without and \
         with {} tasks signing in back to back",
        report.rate, report.clients, report.sign_in_tasks
    );
    println!(
        "{:<38} {:>8} {:>16} {:>8} {:>11} {:>18}",
        "phase", "req/s", "p50/p99 µs", "x idle", "sign-ins/s", "sign-in p50/p99 ms"
    );
    println!(
        "{:<38} {:>8.0} {:>16}",
        "no sign-ins",
        report.idle.ops_per_sec,
        latency(&report.idle)
    );
    let rows = [
        ("during sign-ins", &report.during, &report.sign_ins),
        (
            "during sign-ins, hashing on all cores",
            &report.all_cores,
            &report.all_cores_sign_ins,
        ),
    ];
    for (phase, during, sign_ins) in rows {
        println!(
            "{:<38} {:>8.0} {:>16} {:>7.2}x {:>11.0} {:>18}",
            phase,
            during.ops_per_sec,
            latency(during),
            p99_ratio(during, &report.idle),
            sign_ins.ops_per_sec,
            format!(
                "{:.1} / {:.1}",
                sign_ins.p50_us / 1000.0,
                sign_ins.p99_us / 1000.0
            )
        );
        if during.misses > 0 {
            println!("  warning: {} GET /session requests failed", during.misses);
        }
        if sign_ins.misses > 0 {
            println!("  warning: {} sign-ins failed", sign_ins.misses);
        }
        disturbed(phase, during);
    }
    disturbed("with no sign-ins", &report.idle);
}

pub(crate) fn print_flood(report: &FloodReport) {
    println!();
    println!(
        "Floods (issue 23): {} clients back to back, each from its own forwarded address (new \
         addresses for each flood), run by a separate process (the bench started again as a \
         generator; it shares this machine's {} cores with the server), against the example's \
         router with the default options",
        report.clients,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "beside them: GET /session paced at {:.0} req/s from {} clients, and {} well-behaved \
         clients signing in with their right passwords, {:.1}/s in all, each from its own \
         address; measured {:.0} s during each flood and {:.0} s without (half before the \
         floods, half after)",
        report.rate,
        report.http_clients,
        report.well_behaved,
        report.well_behaved_rate,
        report.duration,
        report.duration
    );
    println!(
        "{:<22} {:>17} {:>7} {:>12} {:>19} {:>7} {:>7} {:>24}",
        "phase",
        "GET /session µs",
        "x idle",
        "sign-ins ok",
        "sign-in p50/p99 ms",
        "x idle",
        "argon2",
        "CPU % server/gen/pg/other"
    );
    let phases = [
        ("no flood", &report.idle),
        ("sign-in flood", &report.sign_in_flood),
        ("random reset tokens", &report.reset_flood),
    ];
    let percent =
        |share: Option<f64>| share.map_or_else(|| "-".to_owned(), |s| format!("{:.0}", s * 100.0));
    for (name, phase) in phases {
        println!(
            "{:<22} {:>17} {:>6.2}x {:>12} {:>19} {:>6.2}x {:>7} {:>24}",
            name,
            latency(&phase.get_session),
            p99_ratio(&phase.get_session, &report.idle.get_session),
            format!(
                "{}/{} {:.0}%",
                phase.sign_in_answers.get("200").copied().unwrap_or(0),
                total(&phase.sign_in_answers),
                phase.success_rate() * 100.0
            ),
            format!(
                "{:.1} / {:.1}",
                phase.sign_ins.p50_us / 1000.0,
                phase.sign_ins.p99_us / 1000.0
            ),
            p99_ratio(&phase.sign_ins, &report.idle.sign_ins),
            phase.hashes,
            format!(
                "{}/{}/{}/{}",
                percent(phase.share(phase.cpu.client)),
                percent(phase.share(phase.cpu.helper)),
                percent(phase.share(phase.cpu.server)),
                percent(phase.share(phase.cpu.foreign))
            ),
        );
        if phase.get_session.misses > 0 {
            println!(
                "  warning: {} GET /session requests were not answered 200",
                phase.get_session.misses
            );
        }
    }
    for (name, phase) in phases {
        println!(
            "well-behaved sign-ins, {name}: {}",
            describe(&phase.sign_in_answers)
        );
    }
    for (name, phase) in phases {
        if let Some((stats, answers)) = &phase.flood {
            println!(
                "{name}: {} requests, {:.0}/s, p50/p99 {:.1} / {:.1} ms; {}",
                stats.ops,
                stats.ops_per_sec,
                stats.p50_us / 1000.0,
                stats.p99_us / 1000.0,
                describe(answers)
            );
            println!(
                "  argon2 operations while it ran: {}, of which the well-behaved sign-ins' {}",
                phase.hashes, phase.well_behaved_hashes
            );
        }
    }
    for (name, phase) in phases {
        print_timeline(name, phase);
    }
    let mib = |kib: Option<u64>| {
        kib.map_or_else(|| "-".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0))
    };
    println!(
        "server process memory (server, engine and the paced clients): {} MiB resident before, \
         {} MiB peak",
        mib(report.rss_before_kib),
        mib(report.peak_rss_kib)
    );
    for (name, phase) in phases {
        // Over the whole phase, which lasts until the last well-behaved sign-in is answered.
        if let Some(share) = phase.share(phase.cpu.foreign).filter(|share| *share > 0.05) {
            println!(
                "  note: other processes used {:.0}% of the CPU in the phase {name}",
                share * 100.0
            );
        }
    }
}

/// A flood second by second: its answers, the well-behaved sign-ins', `GET /session`'s p99.
fn print_timeline(name: &str, phase: &FloodPhase) {
    if phase.timeline.is_empty() {
        return;
    }
    println!("{name}, second by second from the generator's start:");
    println!(
        "{:>4} {:>7} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>13} {:>14}",
        "s", "flood", "200", "400", "401", "429", "503", "other", "well-behaved", "GET p99 µs"
    );
    for (second, row) in phase.timeline.iter().enumerate() {
        let all = total(&row.flood);
        let statuses = ["200", "400", "401", "429", "503"].map(|s| of_status(&row.flood, s));
        let well_behaved = if row.well_behaved.is_empty() {
            "-".to_owned()
        } else {
            format!(
                "{}/{}",
                row.well_behaved.get("200").copied().unwrap_or(0),
                total(&row.well_behaved)
            )
        };
        println!(
            "{:>4} {:>7} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>13} {:>14}",
            second,
            all,
            statuses[0],
            statuses[1],
            statuses[2],
            statuses[3],
            statuses[4],
            all - statuses.iter().sum::<u64>(),
            well_behaved,
            row.get_session
                .map_or_else(|| "-".to_owned(), |stats| format!("{:.0}", stats.p99_us)),
        );
    }
}

fn flood_phase_json(phase: &FloodPhase) -> Value {
    json!({
        "get_session": stats_json(&phase.get_session),
        "well_behaved_sign_ins": stats_json(&phase.sign_ins),
        "well_behaved_answers": phase.sign_in_answers,
        "well_behaved_success_rate": phase.success_rate(),
        "flood": phase.flood.as_ref().map(|(stats, answers)| json!({
            "requests": stats_json(stats),
            "answers": answers,
        })),
        "argon2_operations": phase.hashes,
        "argon2_operations_of_well_behaved": phase.well_behaved_hashes,
        "seconds_measured": phase.seconds,
        "timeline": phase.timeline.iter().map(|row| json!({
            "flood": row.flood,
            "well_behaved": row.well_behaved,
            "get_session": row.get_session.as_ref().map(stats_json),
        })).collect::<Vec<_>>(),
        "cpu_share": {
            "server_process": phase.share(phase.cpu.client),
            "generator_process": phase.share(phase.cpu.helper),
            "postgres_backends": phase.share(phase.cpu.server),
            "other": phase.share(phase.cpu.foreign),
        },
    })
}

pub(crate) fn to_json(report: &Report, options: &Options) -> Value {
    let store = report.store.as_ref().map(|store| {
        json!({
            "rows": store.rows.iter().map(|row| json!({
                "operation": row.op.name(),
                "concurrency": row.concurrency,
                "store": stats_json(&row.store),
                "baseline": stats_json(&row.baseline),
                "ratio": ops_ratio(&row.store, &row.baseline),
                "sql": match &row.sql {
                    SqlCheck::Same => json!("same"),
                    SqlCheck::Unknown => json!("unknown"),
                    SqlCheck::Differs(seen) => json!({ "differs": seen }),
                },
            })).collect::<Vec<_>>(),
            "argon2_verify_ms": store.argon2_verify_ms,
            "create_session_duplicate_indexes": store.indexes.iter().map(|row| json!({
                "concurrency": row.concurrency,
                "as_migrated": stats_json(&row.lean),
                "with_duplicate_indexes": stats_json(&row.doubled),
                "ratio": ops_ratio(&row.lean, &row.doubled),
            })).collect::<Vec<_>>(),
            "pgbench": store.pgbench.iter().map(|row| match &row.outcome {
                Outcome::Ran { tps, latency_ms } => json!({
                    "clients": row.clients, "tps": tps, "latency_avg_ms": latency_ms,
                }),
                Outcome::Missing => json!({ "clients": row.clients, "missing": true }),
                Outcome::Failed(why) => json!({ "clients": row.clients, "error": why }),
            }).collect::<Vec<_>>(),
        })
    });
    let cleanup = report.cleanup.as_ref().map(|cleanup| {
        json!({
            "clients": cleanup.clients,
            "rate_per_sec": cleanup.rate,
            "aftermath_secs": cleanup.aftermath_secs,
            "sweep_batch_size": cleanup.sweep.batch_size,
            "sweep_pause_ratio": cleanup.sweep.pause_ratio,
            "rows": cleanup.rows.iter().map(|row| json!({
                "method": row.method.name(),
                "seconds": row.seconds,
                "deleted": row.deleted,
                "rows_per_sec": row.deleted as f64 / row.seconds,
                "dead_left": row.left,
                "idle": stats_json(&row.idle),
                "during": stats_json(&row.during),
                "after": stats_json(&row.after),
                "p99_during_over_idle": p99_ratio(&row.during, &row.idle),
                "p99_after_over_idle": p99_ratio(&row.after, &row.idle),
            })).collect::<Vec<_>>(),
        })
    });
    let http = report.http.as_ref().map(|http| {
        json!({
            "clients": http.clients,
            "sessions": http.sessions,
            "router": stats_json(&http.router),
            "engine_handler": stats_json(&http.engine),
            "minimal": stats_json(&http.minimal),
            "ratio": ops_ratio(&http.router, &http.minimal),
            "ratio_router_over_engine_handler": ops_ratio(&http.router, &http.engine),
            "ratio_engine_handler_over_minimal": ops_ratio(&http.engine, &http.minimal),
            "paced_rate_per_sec": http.rate,
            "sign_in_tasks": http.sign_in_tasks,
            "idle": stats_json(&http.idle),
            "during_sign_ins": stats_json(&http.during),
            "p99_during_over_idle": p99_ratio(&http.during, &http.idle),
            "sign_ins": stats_json(&http.sign_ins),
            "hashing_on_all_cores": json!({
                "during_sign_ins": stats_json(&http.all_cores),
                "p99_during_over_idle": p99_ratio(&http.all_cores, &http.idle),
                "sign_ins": stats_json(&http.all_cores_sign_ins),
            }),
        })
    });
    let flood = report.flood.as_ref().map(|flood| {
        json!({
            "clients": flood.clients,
            "separate_process": true,
            "http_clients": flood.http_clients,
            "paced_rate_per_sec": flood.rate,
            "well_behaved_clients": flood.well_behaved,
            "well_behaved_rate_per_sec": flood.well_behaved_rate,
            "seconds_per_phase": flood.duration,
            "idle": flood_phase_json(&flood.idle),
            "sign_in_flood": flood_phase_json(&flood.sign_in_flood),
            "reset_token_flood": flood_phase_json(&flood.reset_flood),
            "get_session_p99_over_idle": {
                "sign_in_flood": p99_ratio(&flood.sign_in_flood.get_session, &flood.idle.get_session),
                "reset_token_flood": p99_ratio(&flood.reset_flood.get_session, &flood.idle.get_session),
            },
            "sign_in_p99_over_idle": {
                "sign_in_flood": p99_ratio(&flood.sign_in_flood.sign_ins, &flood.idle.sign_ins),
                "reset_token_flood": p99_ratio(&flood.reset_flood.sign_ins, &flood.idle.sign_ins),
            },
            "rss_before_kib": flood.rss_before_kib,
            "peak_rss_kib": flood.peak_rss_kib,
        })
    });
    let peers = report.peers.as_ref().map(super::peers::to_json);
    json!({
        "machine": {
            "cores": report.machine.cores,
            "cpu": report.machine.cpu,
            "postgres": report.machine.postgres,
            "settings": report.machine.settings.iter()
                .map(|(name, value)| (name.clone(), json!(value)))
                .collect::<serde_json::Map<_, _>>(),
        },
        "options": {
            "duration_secs": options.duration.as_secs_f64(),
            "rounds": options.rounds,
            "warmup_secs": options.warmup.as_secs_f64(),
            "concurrency": options.concurrency,
            "users": report.data.users,
            "sessions": report.data.sessions,
            "http_clients": options.http_clients,
            "http_rate": options.http_rate,
            "sign_ins": options.sign_ins,
            "flood_clients": options.flood_clients,
            "well_behaved": options.well_behaved,
            "well_behaved_rate": options.well_behaved_rate,
        },
        "store": store,
        "cleanup": cleanup,
        "http": http,
        "flood": flood,
        "peers": peers,
        "signup_timing": report.signup.as_ref().map(super::signup::to_json),
        "total_seconds": report.seconds,
    })
}
