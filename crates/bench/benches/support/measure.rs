//! Closed-loop or paced load: workers each making one kind of call, back to back or at a fixed
//! interval, timing every call. `run` drives a `Store` or the baseline; `drive` anything that
//! implements `Caller` (the HTTP section's requests).

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use authingo::limits::SignInAttempt;
use authingo::postgres::PgStore;
use authingo::{AbuseCounters, RefreshOutcome, SignInThrottle, Store};
use tokio::sync::Barrier;

use super::Result;
use super::baseline;
use super::cpu::Spent;
use super::workload::{Input, Op, SIGN_IN_LIMIT, Worker, Workload};

/// What the calls go to.
pub(crate) enum Target {
    /// `PgStore`, held as the engine holds it: `Arc<dyn Store>`, and its counters as
    /// `Arc<dyn AbuseCounters>`.
    Store(Arc<dyn Store>, Arc<dyn AbuseCounters>),
    /// The same SQL on raw tokio-postgres.
    Baseline(baseline::Pool),
}

impl Target {
    /// `store` as the engine holds it.
    pub(crate) fn store(store: PgStore) -> Self {
        let store = Arc::new(store);
        Self::Store(store.clone(), store)
    }

    /// Makes one call; says whether it did the work asked (found, rotated, deleted the row).
    async fn call(&self, input: &Input) -> Result<bool> {
        let hit = match (self, input) {
            (Self::Store(store, _), Input::GetSession(token)) => {
                black_box(store.get_session(token).await?).is_some()
            }
            (Self::Store(store, _), Input::GetUserByEmail(email)) => {
                black_box(store.get_user_by_email(email).await?).is_some()
            }
            (Self::Store(store, _), Input::CreateSession(session)) => {
                store.create_session(session).await?;
                true
            }
            (Self::Store(store, _), Input::RefreshSession { old, rotation, .. }) => {
                matches!(
                    black_box(store.refresh_session(old, rotation).await?),
                    RefreshOutcome::Rotated(_)
                )
            }
            (Self::Store(store, _), Input::DeleteSession(token)) => {
                store.delete_session(token).await?
            }
            (Self::Store(_, counters), Input::CountRequest(key)) => {
                black_box(counters.count_request(key, &SIGN_IN_LIMIT).await?).hits > 0
            }
            (Self::Store(_, counters), Input::SignInThrottle(email)) => {
                let throttle = SignInThrottle::default();
                let attempt = counters.begin_sign_in_attempt(email, &throttle).await?;
                let cleared = counters.clear_sign_in_failures(email).await?;
                matches!(attempt, SignInAttempt::Allowed { .. }) && cleared
            }
            (Self::Baseline(pool), Input::SignInThrottle(email)) => {
                baseline::sign_in_throttle(pool, email, &SignInThrottle::default()).await?
            }
            (Self::Baseline(pool), Input::CountRequest(key)) => {
                black_box(baseline::count_request(pool, key, &SIGN_IN_LIMIT).await?) > 0
            }
            (Self::Baseline(pool), Input::GetSession(token)) => {
                black_box(baseline::get_session(pool, token).await?).is_some()
            }
            (Self::Baseline(pool), Input::GetUserByEmail(email)) => {
                black_box(baseline::get_user_by_email(pool, email).await?).is_some()
            }
            (Self::Baseline(pool), Input::CreateSession(session)) => {
                baseline::create_session(pool, session).await?;
                true
            }
            (Self::Baseline(pool), Input::RefreshSession { old, rotation, .. }) => {
                black_box(baseline::refresh_session(pool, old, rotation).await?).is_some()
            }
            (Self::Baseline(pool), Input::DeleteSession(token)) => {
                baseline::delete_session(pool, token).await?
            }
        };
        Ok(hit)
    }
}

/// When the workers stop starting calls.
#[derive(Debug, Clone)]
pub(crate) enum Until {
    /// This long after they start.
    Elapsed(Duration),
    /// When the flag is raised.
    Flag(Arc<AtomicBool>),
}

/// Every call of one run (or several runs merged).
#[derive(Debug, Default)]
pub(crate) struct Samples {
    pub(crate) misses: u64,
    pub(crate) elapsed: Duration,
    /// When each call started, and how long it took.
    pub(crate) calls: Vec<(Instant, Duration)>,
    /// CPU spent by both sides, when it was measured.
    pub(crate) cpu: Spent,
}

impl Samples {
    pub(crate) fn merge(&mut self, other: Self) {
        self.misses += other.misses;
        self.elapsed += other.elapsed;
        self.calls.extend(other.calls);
        self.cpu.add(other.cpu);
    }

    /// Only the calls that started in `from..to`, over that span.
    pub(crate) fn window(&self, from: Instant, to: Instant) -> Self {
        let calls: Vec<_> = self
            .calls
            .iter()
            .copied()
            .filter(|(start, _)| *start >= from && *start < to)
            .collect();
        Self {
            misses: 0,
            elapsed: to.saturating_duration_since(from),
            calls,
            cpu: Spent::default(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut latencies: Vec<Duration> = self.calls.iter().map(|(_, took)| *took).collect();
        latencies.sort_unstable();
        let secs = self.elapsed.as_secs_f64();
        let ops = self.calls.len() as u64;
        let per_call = |cpu: Option<Duration>| {
            cpu.filter(|_| ops > 0)
                .map(|cpu| cpu.as_secs_f64() * 1e6 / ops as f64)
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Stats {
            foreign_cpu: self
                .cpu
                .foreign
                .filter(|_| secs > 0.0)
                .map(|cpu| cpu.as_secs_f64() / secs / cores),
            ops,
            misses: self.misses,
            ops_per_sec: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            p50_us: percentile_us(&latencies, 0.50),
            p99_us: percentile_us(&latencies, 0.99),
            client_cpu_us: per_call(self.cpu.client),
            server_cpu_us: per_call(self.cpu.server),
        }
    }
}

/// The order in which `sides` sides run in round `round`: A,B,C then C,B,A, so that a drift over
/// the rounds weighs on every side alike.
pub(crate) fn round_order(round: u32, sides: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sides).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Nearest-rank percentile of sorted `latencies`, in microseconds.
fn percentile_us(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1].as_secs_f64() * 1e6
}

/// The figures reported for one run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    pub(crate) ops: u64,
    /// Calls that found nothing to do (should be 0: every call is meant to do real work).
    pub(crate) misses: u64,
    pub(crate) ops_per_sec: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// CPU time per call of this process (the client side), in microseconds.
    pub(crate) client_cpu_us: Option<f64>,
    /// CPU time per call of the pool's server backends, in microseconds.
    pub(crate) server_cpu_us: Option<f64>,
    /// Share of the machine's CPU other processes used meanwhile (0 to 1).
    pub(crate) foreign_cpu: Option<f64>,
}

/// What the workers do, and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) op: Op,
    pub(crate) concurrency: usize,
    pub(crate) until: Until,
    /// `None`: each worker calls back to back (flat out). `Some(rate)`: calls per second across
    /// all workers, each worker starting its calls at a fixed interval (phases spread evenly).
    pub(crate) rate: Option<f64>,
    pub(crate) seed: u64,
}

/// One worker's calls, as `drive` makes and times them.
pub(crate) trait Caller: Send + Sync + 'static {
    type Input: Send + Sync;

    /// The next call's arguments, made before the timer starts.
    fn input(&mut self) -> Self::Input;

    /// Makes one call; says whether it did the work asked.
    fn call(&self, input: &Self::Input) -> impl Future<Output = Result<bool>> + Send;

    /// Records what a call changed, after the timer stopped.
    fn settle(&mut self, _input: Self::Input, _hit: bool) {}
}

/// A worker calling `op` on a store or the baseline.
struct StoreCaller {
    target: Arc<Target>,
    workload: Arc<Workload>,
    op: Op,
    worker: Worker,
}

impl Caller for StoreCaller {
    type Input = Input;

    fn input(&mut self) -> Input {
        self.workload.input(self.op, &mut self.worker)
    }

    fn call(&self, input: &Input) -> impl Future<Output = Result<bool>> + Send {
        self.target.call(input)
    }

    fn settle(&mut self, input: Input, hit: bool) {
        self.workload.settle(input, hit);
    }
}

/// Runs `load` on `target`, all workers starting together.
pub(crate) async fn run(
    target: &Arc<Target>,
    workload: &Arc<Workload>,
    load: &Load,
) -> Result<Samples> {
    let callers = (0..load.concurrency)
        .map(|index| StoreCaller {
            target: Arc::clone(target),
            workload: Arc::clone(workload),
            op: load.op,
            worker: Worker::new(index, load.concurrency, load.seed),
        })
        .collect();
    drive(callers, &load.until, load.rate).await
}

/// Runs one worker per caller until `until`, all starting together: back to back, or (`rate`,
/// calls per second across all workers) each worker at a fixed interval, phases spread evenly.
pub(crate) async fn drive<C: Caller>(
    callers: Vec<C>,
    until: &Until,
    rate: Option<f64>,
) -> Result<Samples> {
    let concurrency = callers.len();
    let barrier = Arc::new(Barrier::new(concurrency));
    let interval = rate
        .filter(|rate| *rate > 0.0)
        .map(|rate| Duration::from_secs_f64(concurrency as f64 / rate));
    let workers: Vec<_> = callers
        .into_iter()
        .enumerate()
        .map(|(index, caller)| {
            let pace = interval.map(|interval| Pace {
                interval,
                offset: interval.mul_f64(index as f64 / concurrency as f64),
            });
            tokio::spawn(work(caller, until.clone(), pace, Arc::clone(&barrier)))
        })
        .collect();
    let mut samples = Samples::default();
    let mut first = None::<Instant>;
    let mut last = None::<Instant>;
    for worker in workers {
        let part = worker.await??;
        first = Some(first.map_or(part.begin, |t| t.min(part.begin)));
        last = Some(last.map_or(part.end, |t| t.max(part.end)));
        samples.misses += part.misses;
        samples.calls.extend(part.calls);
    }
    if let (Some(first), Some(last)) = (first, last) {
        samples.elapsed = last - first;
    }
    Ok(samples)
}

/// A worker's schedule when the load is paced.
#[derive(Debug, Clone, Copy)]
struct Pace {
    interval: Duration,
    offset: Duration,
}

struct Part {
    begin: Instant,
    end: Instant,
    misses: u64,
    calls: Vec<(Instant, Duration)>,
}

async fn work<C: Caller>(
    mut caller: C,
    until: Until,
    pace: Option<Pace>,
    barrier: Arc<Barrier>,
) -> Result<Part> {
    barrier.wait().await;
    let begin = Instant::now();
    let mut part = Part {
        begin,
        end: begin,
        misses: 0,
        calls: Vec::with_capacity(16 * 1024),
    };
    let mut next = pace.map(|pace| begin + pace.offset);
    loop {
        if let (Some(at), Some(pace)) = (next.as_mut(), pace) {
            // Timed from the call's real start: tokio's timer wakes up to a millisecond late,
            // which is the timer's latency, not the store's.
            tokio::time::sleep_until((*at).into()).await;
            *at += pace.interval;
        }
        let done = match &until {
            Until::Elapsed(duration) => begin.elapsed() >= *duration,
            Until::Flag(flag) => flag.load(Ordering::Relaxed),
        };
        if done {
            break;
        }
        let input = caller.input();
        let started = Instant::now();
        let hit = caller.call(&input).await?;
        let took = started.elapsed();
        caller.settle(input, hit);
        part.misses += u64::from(!hit);
        part.calls.push((started, took));
    }
    part.end = Instant::now();
    Ok(part)
}
