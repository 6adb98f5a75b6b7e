//! The store bench (issue 6): what `PgStore` costs against the same SQL on raw tokio-postgres,
//! what the server itself can do (pgbench), what the bounded-batch cleanup costs live traffic
//! against one unbounded DELETE, what the engine and the axum layer add to `GET /session`, and
//! whether enumeration-safe sign-up takes as long for a taken address as for a new one.
//!
//! Run it with `cargo bench -p authingo-bench --bench store -- [options]` (`--help` lists them)
//! against a PostgreSQL server where the user may create databases (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). It makes its own databases
//! (`authingo_bench_<owner>_*`, see `support/db.rs`) and drops them at the end, after an error
//! or on Ctrl-C. The figures and how to read them are in `BENCHMARKS.md`.
//!
//! Each section is one function below, given the loaded seed database and returning its part of
//! the report.

mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use authingo::postgres::{PgStore, PoolConfig, connect_with};
use authingo::{CleanupPace, Store as _};
use support::baseline;
use support::cli::{Options, Section};
use support::db::{self, Databases, with_application_name};
use support::measure::{self, Load, Samples, Target, Until};
use support::report::{
    self, CleanupReport, CleanupRow, IndexRow, Machine, Method, PgbenchRow, Report, SqlCheck,
    StoreReport, StoreRow,
};
use support::workload::{Dataset, Op, Workload};
use support::{BoxError, Result, cpu, pgbench};
use tokio_postgres::Client;

/// `application_name` of `PgStore`'s connections, to find their last statement.
const STORE_APP: &str = "authingo_bench_store";
const BASELINE_APP: &str = "authingo_bench_baseline";

/// `get_session` clients running while the cleanup section deletes.
const CLEANUP_CLIENTS: usize = 8;

/// How long the cleanup section keeps measuring the traffic after the cleanup ended.
const AFTERMATH: Duration = Duration::from_secs(2);

/// Sessions with known raw tokens that the HTTP section's requests draw from.
const HTTP_SESSIONS: u64 = 100_000;

/// How long the sign-ins run before the paced traffic is measured beside them.
const SIGN_IN_SETTLE: Duration = Duration::from_millis(300);

/// The one statement the cleanup section compares the bounded sweep with.
const UNBOUNDED_DELETE: &str =
    "DELETE FROM sessions WHERE expires_at < now() AND refresh_expires_at < now()";

fn main() -> ExitCode {
    // The flood section starts this program again as its flood generator.
    if let Some(code) = support::generator::main_if_invoked() {
        return code;
    }
    let options = Options::from_args();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the bench as a task, so that an error, a panic or Ctrl-C all end in dropping the
/// databases it made.
async fn run(options: Options) -> Result<()> {
    let databases = Arc::new(Databases::new(&options.database_url));
    databases.sweep_leftovers().await?;
    let body = tokio::spawn(bench(options, Arc::clone(&databases)));
    let abort = body.abort_handle();
    let outcome = tokio::select! {
        joined = body => joined.map_err(BoxError::from).and_then(|outcome| outcome),
        _ = tokio::signal::ctrl_c() => {
            abort.abort();
            Err("interrupted".into())
        }
    };
    databases.drop_all().await;
    outcome
}

/// What every section is given.
#[derive(Debug)]
struct Context {
    options: Options,
    databases: Arc<Databases>,
    data: Dataset,
    /// The loaded database, never changed: each section works on copies of it.
    seed: String,
}

async fn bench(options: Options, databases: Arc<Databases>) -> Result<()> {
    let started = Instant::now();
    let data = Dataset {
        users: options.users,
        sessions: options.sessions,
    };
    let machine = machine(databases.server_url()).await?;
    report::print_machine(&machine, data, &options);

    if options.needs_data() {
        eprintln!(
            "loading {} users and {} sessions...",
            data.users, data.sessions
        );
    }
    let loading = Instant::now();
    let seed = databases.create("seed", None).await?;
    if options.needs_data() {
        db::load(&databases.url(&seed), data).await?;
        eprintln!("loaded in {:.1} s", loading.elapsed().as_secs_f64());
    }

    let context = Context {
        options,
        databases,
        data,
        seed,
    };
    let mut report = Report {
        machine,
        data,
        store: None,
        cleanup: None,
        http: None,
        flood: None,
        peers: None,
        signup: None,
        seconds: 0.0,
    };
    if context.options.runs(Section::Store) {
        report.store = Some(store_section(&context).await?);
    }
    if context.options.runs(Section::Cleanup) {
        let cleanup = cleanup_section(&context).await?;
        report::print_cleanup(&cleanup, data);
        report.cleanup = Some(cleanup);
    }
    if context.options.runs(Section::Http) {
        let http = http_section(&context).await?;
        report::print_http(&http);
        report.http = Some(http);
    }
    if context.options.runs(Section::Flood) {
        let flood = flood_section(&context).await?;
        report::print_flood(&flood);
        report.flood = Some(flood);
    }
    if context.options.runs(Section::Peers) {
        let peers = peers_section(&context).await?;
        support::peers::print(&peers);
        report.peers = Some(peers);
    }
    if context.options.runs(Section::SignupTiming) {
        let signup = signup_timing_section(&context).await?;
        support::signup::print(&signup);
        report.signup = Some(signup);
    }

    report.seconds = started.elapsed().as_secs_f64();
    println!();
    println!("total {:.0} s", report.seconds);
    if let Some(path) = &context.options.json {
        let json = serde_json::to_string_pretty(&report::to_json(&report, &context.options))?;
        std::fs::write(path, json + "\n")
            .map_err(|err| format!("writing {}: {err}", path.display()))?;
    }
    Ok(())
}

/// Sign-up with verification required, a taken address against a new one, on a fresh database
/// (the loaded data plays no part: one unique index lookup either way).
async fn signup_timing_section(context: &Context) -> Result<support::signup::SignupReport> {
    let name = context.databases.create("signup", None).await?;
    let url = context.databases.url(&name);
    authingo::postgres::run_migrations(url.as_str()).await?;
    let report = support::signup::run(&url, &context.options).await?;
    context.databases.drop_database(&name).await?;
    Ok(report)
}

async fn machine(server_url: &str) -> Result<Machine> {
    let client = db::connect(server_url).await?;
    let postgres: String = client
        .query_one("SELECT version()", &[])
        .await?
        .try_get(0)?;
    let mut settings = Vec::new();
    for name in [
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "max_connections",
    ] {
        let value: String = client
            .query_one("SELECT current_setting($1)", &[&name])
            .await?
            .try_get(0)?;
        settings.push((name.to_owned(), value));
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    Ok(Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        postgres: postgres
            .split(" on ")
            .next()
            .unwrap_or(&postgres)
            .to_owned(),
        settings,
    })
}

/// Section 1: every `Store` method at every concurrency, `PgStore` against the baseline in
/// alternating rounds, then pgbench at the same client count.
async fn store_section(context: &Context) -> Result<StoreReport> {
    let name = context
        .databases
        .create("store", Some(&context.seed))
        .await?;
    let url = context.databases.url(&name);
    let admin = db::connect(&url).await?;
    let workload = Arc::new(Workload::new(context.data));
    let mut out = StoreReport::default();
    report::store_header();
    for &concurrency in &context.options.concurrency {
        let size = u32::try_from(concurrency)?;
        let pool = connect_with(
            &with_application_name(&url, STORE_APP),
            &PoolConfig::default().max_size(size),
        )
        .await?;
        let base = baseline::pool(&with_application_name(&url, BASELINE_APP), size).await?;
        let sides = [
            Side {
                target: Arc::new(Target::store(PgStore::new(pool))),
                application_name: STORE_APP,
            },
            Side {
                target: Arc::new(Target::Baseline(base)),
                application_name: BASELINE_APP,
            },
        ];
        let mut create_rate = None;
        for &op in &context.options.ops {
            let run = OpRun {
                context,
                admin: &admin,
                workload: &workload,
                op,
                concurrency,
            };
            let row = run.measure(&sides, create_rate).await?;
            if op == Op::CreateSession {
                create_rate = Some(row.store.ops_per_sec.max(row.baseline.ops_per_sec));
            }
            report::store_row(&row);
            out.rows.push(row);
        }
        // pgbench opens its own connections: close these first.
        drop(sides);
        if context.options.ops.contains(&Op::GetSession) {
            let outcome =
                pgbench::run(&url, context.data, concurrency, context.options.duration).await;
            out.pgbench.push(PgbenchRow {
                clients: concurrency,
                outcome,
            });
        }
    }
    report::print_cpu(&out.rows);
    report::print_pgbench(&out.pgbench);
    if context.options.ops.contains(&Op::CreateSession) {
        out.indexes = duplicate_indexes(context).await?;
        report::print_indexes(&out.indexes);
    }
    let ops = &context.options.ops;
    if ops.contains(&Op::CountRequest) || ops.contains(&Op::SignInThrottle) {
        out.argon2_verify_ms = Some(argon2_verify_ms()?);
        report::print_rate_limit(&out);
    }
    drop(admin);
    context.databases.drop_database(&name).await?;
    Ok(out)
}

/// The specification's two indexes on `sessions.token` and `sessions.refresh_token`, which
/// duplicate the indexes of their UNIQUE constraints; the second migration drops them.
const DUPLICATE_INDEXES: &str = "CREATE INDEX idx_sessions_token ON sessions(token); \
     CREATE INDEX idx_sessions_refresh_token ON sessions(refresh_token);";

/// `create_session` on two copies of the seed, in alternating rounds at each concurrency: as
/// migrated, and with the duplicate indexes the second migration dropped put back.
async fn duplicate_indexes(context: &Context) -> Result<Vec<IndexRow>> {
    let options = &context.options;
    let lean = context
        .databases
        .create("lean", Some(&context.seed))
        .await?;
    let doubled = context
        .databases
        .create("doubled", Some(&context.seed))
        .await?;
    let urls = [
        context.databases.url(&lean),
        context.databases.url(&doubled),
    ];
    let admins = [db::connect(&urls[0]).await?, db::connect(&urls[1]).await?];
    admins[1].batch_execute(DUPLICATE_INDEXES).await?;
    admins[1].batch_execute("VACUUM (ANALYZE) sessions").await?;
    let workload = Arc::new(Workload::new(context.data));
    let mut rows = Vec::new();
    for &concurrency in &options.concurrency {
        let mut targets = Vec::new();
        for url in &urls {
            let pool = connect_with(
                &with_application_name(url, STORE_APP),
                &PoolConfig::default().max_size(u32::try_from(concurrency)?),
            )
            .await?;
            targets.push(Arc::new(Target::store(PgStore::new(pool))));
        }
        let load = |until: Until, seed: u64| Load {
            op: Op::CreateSession,
            concurrency,
            until,
            rate: None,
            seed,
        };
        for target in &targets {
            measure::run(target, &workload, &load(Until::Elapsed(options.warmup), 0)).await?;
        }
        let round = options.duration / options.rounds;
        let mut samples = [Samples::default(), Samples::default()];
        for round_index in 0..options.rounds {
            for index in measure::round_order(round_index, 2) {
                let seed = 100 + u64::from(round_index) * 8 + index as u64;
                let before = cpu::read(&admins[index], STORE_APP).await?;
                let mut run = measure::run(
                    &targets[index],
                    &workload,
                    &load(Until::Elapsed(round), seed),
                )
                .await?;
                run.cpu = before.until(&cpu::read(&admins[index], STORE_APP).await?);
                samples[index].merge(run);
            }
        }
        rows.push(IndexRow {
            concurrency,
            lean: samples[0].stats(),
            doubled: samples[1].stats(),
        });
    }
    drop(admins);
    context.databases.drop_database(&lean).await?;
    context.databases.drop_database(&doubled).await?;
    Ok(rows)
}

/// The median time of one argon2id verification with the default parameters on this machine, in
/// milliseconds: what every sign-in pays, to set a rate-limit check against.
fn argon2_verify_ms() -> Result<f64> {
    use authingo::password::{Argon2Params, Argon2id, PasswordHasher as _};
    let hasher = Argon2id::new(Argon2Params::default())?;
    let hash = hasher.hash("correct horse battery")?;
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            let _ = std::hint::black_box(hasher.verify("correct horse battery", &hash));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One implementation under test: the store or the baseline.
struct Side {
    target: Arc<Target>,
    /// Of its connections, for their CPU time.
    application_name: &'static str,
}

/// One operation at one concurrency.
struct OpRun<'a> {
    context: &'a Context,
    admin: &'a Client,
    workload: &'a Arc<Workload>,
    op: Op,
    concurrency: usize,
}

impl OpRun<'_> {
    /// Measures `op` on each of `sides` (store first, baseline second) in alternating rounds.
    async fn measure(&self, sides: &[Side], create_rate: Option<f64>) -> Result<StoreRow> {
        let options = &self.context.options;
        let round = options.duration / options.rounds;
        // Deletes per second to provision rows for: a guess at first, then the fastest seen.
        let mut delete_rate = create_rate.map_or(20_000.0, |rate| 2.0 * rate);
        for side in sides {
            self.provide_deletable(delete_rate, options.warmup).await?;
            self.run(&side.target, Until::Elapsed(options.warmup), 0)
                .await?;
        }
        let mut samples: Vec<Samples> = sides.iter().map(|_| Samples::default()).collect();
        for round_index in 0..options.rounds {
            for index in measure::round_order(round_index, sides.len()) {
                let side = &sides[index];
                self.provide_deletable(delete_rate, round).await?;
                let seed = u64::from(round_index) * 8 + index as u64 + 1;
                let before = cpu::read(self.admin, side.application_name).await?;
                let mut run = self.run(&side.target, Until::Elapsed(round), seed).await?;
                run.cpu = before.until(&cpu::read(self.admin, side.application_name).await?);
                delete_rate = delete_rate.max(run.stats().ops_per_sec);
                samples[index].merge(run);
            }
        }
        let stats: Vec<_> = samples.iter().map(Samples::stats).collect();
        Ok(StoreRow {
            op: self.op,
            concurrency: self.concurrency,
            store: stats[0],
            baseline: stats[1],
            sql: self.check_sql().await?,
        })
    }

    async fn run(&self, target: &Arc<Target>, until: Until, seed: u64) -> Result<Samples> {
        let load = Load {
            op: self.op,
            concurrency: self.concurrency,
            until,
            rate: None,
            seed,
        };
        measure::run(target, self.workload, &load).await
    }

    /// Makes sure `delete_session` has enough existing rows to delete for `span` at `rate`.
    async fn provide_deletable(&self, rate: f64, span: Duration) -> Result<()> {
        if self.op != Op::DeleteSession {
            return Ok(());
        }
        let want = (rate * span.as_secs_f64() * 1.5) as u64 + 1000;
        let (lo, hi) = self.workload.deletable_shortfall(want);
        if hi > lo {
            db::insert_deletable(self.admin, lo, hi, self.context.data.users).await?;
            self.workload.deletable_added(hi);
        }
        Ok(())
    }

    /// Compares the baseline's SQL with the last statement of `PgStore`'s connections.
    async fn check_sql(&self) -> Result<SqlCheck> {
        let seen = self
            .admin
            .query(
                "SELECT DISTINCT query FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = $1 \
                   AND state = 'idle'",
                &[&STORE_APP],
            )
            .await?;
        let expected = baseline::statements(self.op);
        let mut other = None;
        for row in seen {
            let query: String = row.try_get(0)?;
            let query = query.trim_end();
            // pg_stat_activity keeps the first track_activity_query_size bytes (1 kB).
            let same = |expected: &String| {
                let expected = expected.trim_end();
                query == expected || (query.len() >= 1000 && expected.starts_with(query))
            };
            if expected.iter().any(same) {
                return Ok(SqlCheck::Same);
            }
            other = Some(query.to_owned());
        }
        Ok(other.map_or(SqlCheck::Unknown, SqlCheck::Differs))
    }
}

/// Section 2: on two identical copies of the seed, `cleanup_expired_sessions` and one
/// unbounded DELETE, each under `get_session` traffic, against that traffic's idle figures.
async fn cleanup_section(context: &Context) -> Result<CleanupReport> {
    let mut out = CleanupReport {
        clients: CLEANUP_CLIENTS,
        rate: context.options.cleanup_pace(),
        aftermath_secs: AFTERMATH.as_secs_f64(),
        sweep: context.options.sweep_pace(),
        rows: Vec::new(),
    };
    for method in [
        Method::Sweep,
        Method::SweepUnthrottled,
        Method::UnboundedDelete,
    ] {
        let role = match method {
            Method::Sweep => "sweep",
            Method::SweepUnthrottled => "flatout",
            Method::UnboundedDelete => "delete",
        };
        eprintln!("cleanup: {}...", method.name());
        let name = context.databases.create(role, Some(&context.seed)).await?;
        let row = cleanup_run(context, &context.databases.url(&name), method).await;
        context.databases.drop_database(&name).await?;
        out.rows.push(row?);
    }
    Ok(out)
}

async fn cleanup_run(context: &Context, url: &str, method: Method) -> Result<CleanupRow> {
    let options = &context.options;
    let pool = connect_with(
        &with_application_name(url, STORE_APP),
        &PoolConfig::default().max_size(u32::try_from(CLEANUP_CLIENTS)?),
    )
    .await?;
    let traffic = Arc::new(Target::store(PgStore::new(pool)));
    let workload = Arc::new(Workload::new(context.data));
    // The cleanup's own connections, open before any clock starts.
    let sweeper = PgStore::new(connect_with(url, &PoolConfig::default().max_size(1)).await?);
    let admin = db::connect(url).await?;
    // Both copies start right after a checkpoint, so neither meets a timed one by chance.
    admin.batch_execute("CHECKPOINT").await?;

    let traffic_load = |until: Until, seed: u64| Load {
        op: Op::GetSession,
        concurrency: CLEANUP_CLIENTS,
        until,
        rate: options.cleanup_pace(),
        seed,
    };
    measure::run(
        &traffic,
        &workload,
        &traffic_load(Until::Elapsed(options.warmup), 0),
    )
    .await?;
    let before = cpu::read_local();
    let mut idle = measure::run(
        &traffic,
        &workload,
        &traffic_load(Until::Elapsed(options.duration), 1),
    )
    .await?;
    idle.cpu = before.until(&cpu::read_local());

    let stop = Arc::new(AtomicBool::new(false));
    let background = tokio::spawn({
        let (traffic, workload) = (Arc::clone(&traffic), Arc::clone(&workload));
        let load = traffic_load(Until::Flag(Arc::clone(&stop)), 2);
        async move { measure::run(&traffic, &workload, &load).await }
    });
    // Let the traffic settle before the cleanup starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu::read_local();
    let from = Instant::now();
    let deleted = match method {
        Method::Sweep => sweeper
            .cleanup_expired_sessions_paced(options.sweep_pace())
            .await
            .map_err(BoxError::from),
        Method::SweepUnthrottled => sweeper
            .cleanup_expired_sessions_paced(CleanupPace::UNTHROTTLED)
            .await
            .map_err(BoxError::from),
        Method::UnboundedDelete => admin
            .execute(UNBOUNDED_DELETE, &[])
            .await
            .map_err(|err| Box::new(err) as BoxError),
    };
    let to = Instant::now();
    let at_end = cpu::read_local();
    // What the cleanup leaves to the readers after it (pruning the pages it emptied) counts too.
    tokio::time::sleep(AFTERMATH).await;
    let after_end = cpu::read_local();
    stop.store(true, Ordering::Relaxed);
    let traffic_samples = background.await??;
    let deleted = deleted?;
    let mut during = traffic_samples.window(from, to);
    during.cpu = before.until(&at_end);
    let mut after = traffic_samples.window(to, to + AFTERMATH);
    after.cpu = at_end.until(&after_end);
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM sessions \
             WHERE expires_at < now() AND refresh_expires_at < now()",
            &[],
        )
        .await?
        .try_get(0)?;
    Ok(CleanupRow {
        method,
        seconds: (to - from).as_secs_f64(),
        deleted,
        left,
        idle: idle.stats(),
        during: during.stats(),
        after: after.stats(),
    })
}

/// Section 3: `GET /session` over HTTP. Flat out, in alternating rounds: through
/// `auth.router()`, through a minimal axum handler calling the engine, and through a minimal
/// handler running the same statement on the baseline's pool. Then through the router at a
/// paced rate, in rounds alternating without and with sign-ins running on the same server.
async fn http_section(context: &Context) -> Result<report::HttpReport> {
    eprintln!("http: {HTTP_SESSIONS} sessions with known tokens...");
    let name = context
        .databases
        .create("http", Some(&context.seed))
        .await?;
    let outcome = http_run(context, &context.databases.url(&name)).await;
    context.databases.drop_database(&name).await?;
    outcome
}

async fn http_run(context: &Context, url: &str) -> Result<report::HttpReport> {
    use authingo::{Auth, HttpOptions};
    use support::web::{self, GetSession, MOUNT, Server, SignIn};
    use tokio::task::JoinHandle;

    let options = &context.options;
    let admin = db::connect(url).await?;
    web::insert_sessions(&admin, HTTP_SESSIONS, context.data.users).await?;
    let clients = options.http_clients;
    let size = u32::try_from(clients)?;
    let pool = connect_with(
        &with_application_name(url, STORE_APP),
        &PoolConfig::default().max_size(size),
    )
    .await?;
    // The default argon2 parameters and hashing threads (one fewer than the cores); no cleanup
    // loop.
    let auth = Auth::new(
        authingo::Options::new(PgStore::new(pool))
            // Built in release; the mail of its sign-ups is read by nobody.
            .allow_dev_mailer(true)
            .cleanup_interval(None),
    )?;
    let cookie: Arc<str> = Arc::from(HttpOptions::default().session_cookie);
    let routed = Server::start(axum::Router::new().nest(MOUNT, auth.router())).await?;
    let base = baseline::pool(&with_application_name(url, BASELINE_APP), size).await?;
    let minimal = Server::start(web::minimal_router(base, auth.clone(), &cookie)).await?;
    let client = web::client()?;
    let getters = |url: &reqwest::Url, seed: u64| -> Vec<GetSession> {
        (0..clients)
            .map(|index| {
                GetSession::new(
                    client.clone(),
                    url.clone(),
                    Arc::clone(&cookie),
                    HTTP_SESSIONS,
                    seed ^ ((index as u64) << 32),
                )
            })
            .collect()
    };
    let round = options.duration / options.rounds;

    eprintln!("http: GET /session flat out...");
    // The router, the engine handler, the minimal handler; the first two use PgStore's pool.
    let sides = [
        (routed.url(&format!("{MOUNT}/session"))?, STORE_APP),
        (minimal.url(&format!("{MOUNT}/engine/session"))?, STORE_APP),
        (minimal.url(&format!("{MOUNT}/session"))?, BASELINE_APP),
    ];
    for (url, _) in &sides {
        measure::drive(getters(url, 0), &Until::Elapsed(options.warmup), None).await?;
    }
    let mut flat: [Samples; 3] = Default::default();
    for round_index in 0..options.rounds {
        for index in measure::round_order(round_index, sides.len()) {
            let (url, application_name) = &sides[index];
            let seed = u64::from(round_index) * 8 + index as u64 + 1;
            let before = cpu::read(&admin, application_name).await?;
            let mut run = measure::drive(getters(url, seed), &Until::Elapsed(round), None).await?;
            run.cpu = before.until(&cpu::read(&admin, application_name).await?);
            flat[index].merge(run);
        }
    }

    eprintln!("http: GET /session during sign-ins...");
    let accounts = web::sign_up(&auth, options.sign_ins).await?;
    // The same sign-ins on an engine hashing on every core, against the default (one fewer).
    let every_core = std::thread::available_parallelism().map_or(1, usize::from);
    let all_cores = {
        let auth = Auth::new(
            authingo::Options::with_shared_store(Arc::clone(auth.store()))
                // Built in release; the mail of its sign-ups is read by nobody.
                .allow_dev_mailer(true)
                .cleanup_interval(None)
                .max_concurrent_hashes(every_core),
        )?;
        Server::start(axum::Router::new().nest(MOUNT, auth.router())).await?
    };
    let sign_in_load = |server: &Server| -> Result<(Arc<AtomicBool>, JoinHandle<Result<Samples>>)> {
        let url = server.url(&format!("{MOUNT}/sign-in"))?;
        let signers = accounts
            .iter()
            .map(|(email, password)| SignIn::new(client.clone(), url.clone(), email, password))
            .collect::<Result<Vec<_>>>()?;
        let stop = Arc::new(AtomicBool::new(false));
        let until = Until::Flag(Arc::clone(&stop));
        let task = tokio::spawn(async move { measure::drive(signers, &until, None).await });
        Ok((stop, task))
    };
    let paced = |server: &Server, seed: u64, span: Duration| -> Result<_> {
        let getters = getters(&server.url(&format!("{MOUNT}/session"))?, seed);
        let rate = Some(options.http_rate);
        Ok(async move { measure::drive(getters, &Until::Elapsed(span), rate).await })
    };
    // (server, whether sign-ins run on it): none, the default hashing threads, every core.
    let phases = [(&routed, false), (&routed, true), (&all_cores, true)];
    // Warm-up of each server with its sign-ins running, so that their connections, the
    // accounts' rows and the first hashes come before the clock starts.
    for (server, _) in phases.iter().filter(|(_, signing)| *signing) {
        let (stop, task) = sign_in_load(server)?;
        paced(server, 100, options.warmup)?.await?;
        stop.store(true, Ordering::Relaxed);
        task.await??;
    }
    let mut traffic: [Samples; 3] = Default::default();
    let mut sign_ins: [Samples; 3] = Default::default();
    for round_index in 0..options.rounds {
        for index in measure::round_order(round_index, phases.len()) {
            let (server, signing) = phases[index];
            let load = if signing {
                let load = sign_in_load(server)?;
                tokio::time::sleep(SIGN_IN_SETTLE).await;
                Some(load)
            } else {
                None
            };
            let seed = 200 + u64::from(round_index) * 8 + index as u64;
            let before = cpu::read_local();
            let from = Instant::now();
            let mut run = paced(server, seed, round)?.await?;
            let to = Instant::now();
            run.cpu = before.until(&cpu::read_local());
            traffic[index].merge(run);
            if let Some((stop, task)) = load {
                stop.store(true, Ordering::Relaxed);
                let all = task.await??;
                let mut window = all.window(from, to);
                window.misses = all.misses;
                sign_ins[index].merge(window);
            }
        }
    }

    drop(client);
    for server in [routed, minimal, all_cores] {
        server.stop().await;
    }
    let [router, engine, minimal] = flat.map(|samples| samples.stats());
    let [idle, during, all_cores] = traffic.map(|samples| samples.stats());
    let [_, sign_ins, all_cores_sign_ins] = sign_ins.map(|samples| samples.stats());
    Ok(report::HttpReport {
        clients,
        sessions: HTTP_SESSIONS,
        router,
        engine,
        minimal,
        rate: options.http_rate,
        sign_in_tasks: options.sign_ins,
        idle,
        during,
        sign_ins,
        all_cores,
        all_cores_sign_ins,
    })
}

/// Section 4 (issue 23): floods from a separate process against a router shaped as the example
/// server's (`/api/auth` and a protected `/api/me`, peers' addresses recorded, this host trusted
/// as a proxy so that each client's forwarded address counts), with the default options. The
/// same paced traffic (`GET /session`, well-behaved sign-ins) runs with no flood, beside
/// `--flood-clients` sign-ins back to back, and beside as many clients posting random reset
/// tokens.
///
/// Each flood runs once, for `--duration`, from new addresses, rather than in rounds: the
/// per-address limits make a flood's first seconds (addresses within their budget) unlike the
/// rest (every address over it), and rounds of fresh addresses would measure only the start.
/// The timeline shows both.
async fn flood_section(context: &Context) -> Result<report::FloodReport> {
    let name = context
        .databases
        .create("flood", Some(&context.seed))
        .await?;
    let outcome = flood_run(context, &context.databases.url(&name)).await;
    context.databases.drop_database(&name).await?;
    outcome
}

async fn flood_run(context: &Context, url: &str) -> Result<report::FloodReport> {
    use authingo::http::CurrentUser;
    use authingo::password::{Argon2Params, default_hasher};
    use authingo::{Auth, HttpOptions};
    use support::flood::{self, CountingHasher, FLOOD_ACCOUNTS, FloodKind, WELL_BEHAVED_ACCOUNTS};
    use support::web::{self, MOUNT, Server};

    let options = &context.options;
    let admin = db::connect(url).await?;
    web::insert_sessions(&admin, HTTP_SESSIONS, context.data.users).await?;
    let pool = connect_with(
        &with_application_name(url, STORE_APP),
        &PoolConfig::default().max_size(u32::try_from(options.http_clients)?),
    )
    .await?;
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    // The default hasher, counted: the argon2 work each phase caused.
    let hasher = Arc::new(CountingHasher::new(
        default_hasher(Argon2Params::default())?,
    ));
    let auth = Auth::new(
        authingo::Options::new(PgStore::new(pool))
            // Built in release; the mail of its sign-ups is read by nobody.
            .allow_dev_mailer(true)
            .cleanup_interval(None)
            .password_hasher(hasher.clone())
            .http(HttpOptions::default().trusted_proxies([loopback])),
    )?;
    auth.ready().await?;
    async fn me(current: CurrentUser) -> String {
        format!("Hello, {}!", current.user.name)
    }
    let app = axum::Router::new()
        .route("/api/me", axum::routing::get(me))
        .with_state(auth.clone())
        .nest(MOUNT, auth.router());
    let server = Server::start_with_peers(app).await?;

    let clients = options.flood_clients;
    let accounts = clients / 2;
    eprintln!(
        "flood: {accounts} accounts for the sign-in flood's clients with the right password, {} \
         for the well-behaved clients...",
        options.well_behaved
    );
    web::sign_up_as(&auth, FLOOD_ACCOUNTS, accounts).await?;
    web::sign_up_as(&auth, WELL_BEHAVED_ACCOUNTS, options.well_behaved).await?;
    let rig = FloodRig {
        options,
        admin: &admin,
        hasher: &hasher,
        server: &server,
        client: web::client()?,
        cookie: Arc::from(HttpOptions::default().session_cookie),
        addresses: Arc::default(),
        accounts,
    };

    eprintln!("flood: warm-up...");
    rig.traffic(300, options.warmup, &Arc::default())?.await?;
    let rss_before = flood::memory_kib();
    let half = options.duration / 2;
    eprintln!("flood: no flood...");
    let mut idle = rig.idle(301, half).await?;
    eprintln!("flood: {clients} clients signing in, from a separate process...");
    let sign_in_flood = rig.flood(FloodKind::SignIn, 302).await?;
    eprintln!("flood: {clients} clients posting random reset tokens, from a separate process...");
    let reset_flood = rig.flood(FloodKind::ResetToken, 303).await?;
    eprintln!("flood: no flood, again...");
    idle.merge(rig.idle(304, options.duration - half).await?);
    let peak = flood::memory_kib();
    drop(rig);
    server.stop().await;
    Ok(report::FloodReport {
        clients,
        http_clients: options.http_clients,
        rate: options.http_rate,
        well_behaved: options.well_behaved,
        well_behaved_rate: options.well_behaved_rate,
        duration: options.duration.as_secs_f64(),
        idle: idle.finish(),
        sign_in_flood,
        reset_flood,
        rss_before_kib: rss_before.map(|(rss, _)| rss),
        peak_rss_kib: peak.map(|(_, peak)| peak),
    })
}

/// What the flood section's phases share: the server, its engine's hasher, the paced clients.
struct FloodRig<'a> {
    options: &'a Options,
    admin: &'a Client,
    hasher: &'a support::flood::CountingHasher,
    server: &'a support::web::Server,
    client: reqwest::Client,
    cookie: Arc<str>,
    addresses: Arc<support::flood::AddressSpace>,
    /// Accounts signed up for the sign-in flood's clients with the right password.
    accounts: usize,
}

/// The paced traffic of a phase: `GET /session`, then the well-behaved sign-ins.
type Traffic = (Samples, Samples);

impl FloodRig<'_> {
    /// `GET /session` and the well-behaved sign-ins, paced, for `span`; the sign-ins' answers
    /// counted in `tally`.
    fn traffic(
        &self,
        seed: u64,
        span: Duration,
        tally: &Arc<support::flood::Tally>,
    ) -> Result<impl Future<Output = Result<Traffic>> + use<>> {
        use support::flood::WellBehaved;
        use support::web::{GetSession, MOUNT};
        let url = self.server.url(&format!("{MOUNT}/session"))?;
        let getters: Vec<GetSession> = (0..self.options.http_clients)
            .map(|index| {
                GetSession::new(
                    self.client.clone(),
                    url.clone(),
                    Arc::clone(&self.cookie),
                    HTTP_SESSIONS,
                    seed ^ ((index as u64) << 32),
                )
            })
            .collect();
        let url = self.server.url(&format!("{MOUNT}/sign-in"))?;
        let signers = (0..self.options.well_behaved)
            .map(|n| {
                WellBehaved::new(
                    (self.client.clone(), url.clone()),
                    n,
                    Arc::clone(&self.addresses),
                    Arc::clone(tally),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let (rate, sign_in_rate) = (self.options.http_rate, self.options.well_behaved_rate);
        Ok(async move {
            let until = Until::Elapsed(span);
            tokio::try_join!(
                measure::drive(getters, &until, Some(rate)),
                measure::drive(signers, &until, Some(sign_in_rate)),
            )
        })
    }

    /// The paced traffic alone for `span`.
    async fn idle(&self, seed: u64, span: Duration) -> Result<IdleRun> {
        let tally = Arc::new(support::flood::Tally::default());
        let hashes = self.hasher.operations();
        let before = cpu::read(self.admin, STORE_APP).await?;
        let from = Instant::now();
        let (get_session, sign_ins) = self.traffic(seed, span, &tally)?.await?;
        let seconds = from.elapsed().as_secs_f64();
        let spent = before.until(&cpu::read(self.admin, STORE_APP).await?);
        Ok(IdleRun {
            get_session,
            sign_ins,
            answers: tally.read(),
            hashes: self.hasher.operations() - hashes,
            cpu: spent,
            seconds,
        })
    }

    /// The paced traffic for `--duration` beside a flood of `kind` from a generator process,
    /// started on new addresses.
    async fn flood(
        &self,
        kind: support::flood::FloodKind,
        seed: u64,
    ) -> Result<report::FloodPhase> {
        use support::generator::{FloodPlan, Generator};
        let clients = self.options.flood_clients;
        let plan = FloodPlan {
            kind,
            url: self
                .server
                .url(&format!("{}{}", support::web::MOUNT, kind.path()))?,
            clients,
            first_address: self.addresses.block(clients)?,
            accounts: self.accounts,
        };
        let start = Instant::now();
        let tally = Arc::new(support::flood::Tally::starting(start));
        let hashes = self.hasher.operations();
        let generator = Generator::start(&plan).await?;
        tokio::time::sleep(SIGN_IN_SETTLE).await;
        let pid = generator.pid();
        let before = cpu::read(self.admin, STORE_APP).await?.with_helper(pid);
        let from = Instant::now();
        let traffic = self.traffic(seed, self.options.duration, &tally)?.await;
        let seconds = from.elapsed().as_secs_f64();
        let spent = before.until(&cpu::read(self.admin, STORE_APP).await?.with_helper(pid));
        // Stopped whatever the traffic's outcome, so that no generator outlives its phase.
        let flood = generator.stop().await?;
        let (get_session, sign_ins) = traffic?;
        let well_behaved = tally.timeline();
        let seconds_seen = flood.timeline.len().max(well_behaved.len());
        let timeline = (0..seconds_seen)
            .map(|second| {
                let at = start + Duration::from_secs(second as u64);
                let window = get_session.window(at, at + Duration::from_secs(1));
                report::FloodSecond {
                    flood: flood.timeline.get(second).cloned().unwrap_or_default(),
                    well_behaved: well_behaved.get(second).cloned().unwrap_or_default(),
                    get_session: (!window.calls.is_empty()).then(|| window.stats()),
                }
            })
            .collect();
        let sign_in_answers = tally.read();
        Ok(report::FloodPhase {
            get_session: get_session.stats(),
            sign_ins: sign_ins.stats(),
            well_behaved_hashes: well_behaved_verified(&sign_in_answers),
            sign_in_answers,
            flood: Some((flood.stats(), flood.answers)),
            hashes: self.hasher.operations() - hashes,
            cpu: spent,
            seconds,
            timeline,
        })
    }
}

/// The phase with no flood, in parts.
struct IdleRun {
    get_session: Samples,
    sign_ins: Samples,
    answers: support::flood::Answers,
    hashes: u64,
    cpu: cpu::Spent,
    seconds: f64,
}

impl IdleRun {
    fn merge(&mut self, other: Self) {
        self.get_session.merge(other.get_session);
        self.sign_ins.merge(other.sign_ins);
        for (key, count) in other.answers {
            *self.answers.entry(key).or_default() += count;
        }
        self.hashes += other.hashes;
        self.cpu.add(other.cpu);
        self.seconds += other.seconds;
    }

    fn finish(self) -> report::FloodPhase {
        report::FloodPhase {
            get_session: self.get_session.stats(),
            sign_ins: self.sign_ins.stats(),
            well_behaved_hashes: well_behaved_verified(&self.answers),
            sign_in_answers: self.answers,
            flood: None,
            hashes: self.hashes,
            cpu: self.cpu,
            seconds: self.seconds,
            timeline: Vec::new(),
        }
    }
}

/// The well-behaved sign-ins that reached their password check (answered 200 or 401): one
/// verification each.
fn well_behaved_verified(answers: &support::flood::Answers) -> u64 {
    ["200", "401 invalid_credentials"]
        .iter()
        .filter_map(|key| answers.get(*key))
        .sum()
}

/// Section 5: `GET /api/me` through authingo, axum-login + tower-sessions and a minimal handler
/// on one copy of the seed (see `support/peers.rs`).
async fn peers_section(context: &Context) -> Result<support::peers::PeersReport> {
    let name = context
        .databases
        .create("peers", Some(&context.seed))
        .await?;
    let outcome = support::peers::run(&context.options, &context.databases.url(&name)).await;
    context.databases.drop_database(&name).await?;
    outcome
}
