//! The cleanup loop that [`Auth::new`](crate::Auth::new) starts, and its controls on [`Auth`].
//!
//! The first sweep runs after a random delay, then one runs every interval. Each sweep runs as a
//! task of its own under a timeout, so neither a slow store nor a panicking one stops the loop.
//! Beside it, a short loop forgets the rotation secrets whose grace window has passed, every
//! grace window. The loops end when their stop signal is sent or dropped, but never in the
//! middle of a sweep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{Auth, observe};
use crate::store::{AbuseCounters, CleanupPace, OneTimeTokens, SecondFactors, Store, StoreError};

/// What a sweep cleans: the store's sessions, and its one-time tokens and abuse counters where
/// it keeps them.
#[derive(Clone)]
pub(super) struct Sweeps {
    pub(super) store: Arc<dyn Store>,
    pub(super) tokens: Option<Arc<dyn OneTimeTokens>>,
    pub(super) counters: Option<Arc<dyn AbuseCounters>>,
    pub(super) second_factors: Option<Arc<dyn SecondFactors>>,
}

/// The loop's handle: its task, its stop signal and its count of sweeps.
pub(super) struct Cleanup {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    sweeps: Arc<AtomicU64>,
}

impl Cleanup {
    /// Starts the loop on the current runtime.
    pub(super) fn spawn(targets: Sweeps, schedule: Schedule) -> Self {
        let (stop, stopped) = watch::channel(false);
        let sweeps = Arc::new(AtomicU64::new(0));
        let task = spawn(targets, schedule, sweeps.clone(), stopped);
        Self {
            stop,
            task: Mutex::new(Some(task)),
            sweeps,
        }
    }

    /// No loop: the application schedules cleanups itself.
    pub(super) fn off() -> Self {
        Self {
            stop: watch::channel(true).0,
            task: Mutex::new(None),
            sweeps: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Auth {
    /// How many cleanup sweeps have finished (whatever their outcome).
    pub fn cleanup_sweeps(&self) -> u64 {
        self.inner.cleanup.sweeps.load(Ordering::Relaxed)
    }

    /// Whether the cleanup loop is running.
    pub fn is_cleanup_running(&self) -> bool {
        self.inner
            .cleanup
            .task
            .lock()
            .map(|task| task.as_ref().is_some_and(|task| !task.is_finished()))
            .unwrap_or(false)
    }

    /// Stops the cleanup loop, waiting for a sweep in progress to finish, and waits for the
    /// mail already queued. The engine keeps working otherwise; calling it again does nothing.
    pub async fn shutdown(&self) {
        self.flush_background().await;
        let cleanup = &self.inner.cleanup;
        cleanup.stop.send_replace(true);
        let task = cleanup
            .task
            .lock()
            .map(|mut task| task.take())
            .unwrap_or(None);
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::error!(error = %err, "cleanup loop ended abnormally");
        }
    }
}

/// What the loop needs to know.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    pub(super) interval: Duration,
    pub(super) first_delay: Duration,
    pub(super) timeout: Duration,
    pub(super) pace: CleanupPace,
    /// The refresh grace window: how long a rotation secret is kept, and how often the secrets
    /// are swept (at least every second).
    pub(super) rotation_grace: TimeDelta,
}

/// Starts the loop on the current runtime. It stops when `stop` says `true` or is dropped.
fn spawn(
    targets: Sweeps,
    schedule: Schedule,
    sweeps: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let secrets = tokio::spawn(forget_rotation_secrets(
        targets.store.clone(),
        schedule.rotation_grace,
        schedule.timeout,
        stop.clone(),
    ));
    tokio::spawn(async move {
        let mut wait = first_delay(schedule.first_delay);
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // Sent `true`, or every sender is gone: the last `Auth` handle was dropped.
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
            sweep(targets.clone(), schedule.timeout, schedule.pace).await;
            sweeps.fetch_add(1, Ordering::Relaxed);
            wait = schedule.interval;
        }
        if let Err(err) = secrets.await {
            tracing::error!(error = %err, "rotation secrets loop ended abnormally");
        }
    })
}

/// Every `grace` (at least every second), forgets the secrets of the rotations older than
/// `grace`, each run bounded by `timeout`; ends when `stop` says so.
async fn forget_rotation_secrets(
    store: Arc<dyn Store>,
    grace: TimeDelta,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let period = grace
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let store = store.clone();
        let run = tokio::spawn(async move {
            tokio::time::timeout(timeout, store.clear_rotation_secrets(grace)).await
        });
        match run.await {
            Ok(Ok(Ok(cleared))) => {
                if cleared > 0 {
                    tracing::debug!(cleared, "rotation secrets forgotten");
                }
            }
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "rotation secrets sweep failed"),
            Ok(Err(_elapsed)) => tracing::warn!("rotation secrets sweep timed out"),
            Err(err) => tracing::error!(error = %err, "rotation secrets sweep panicked"),
        }
    }
}

fn first_delay(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    max.mul_f64(rand::rng().random::<f64>())
}

/// One sweep, bounded by `timeout`, its outcome logged. Never panics. After the dead sessions,
/// the expired one-time tokens, the abuse counters whose time is past, and the expired
/// second-factor challenges and trusted devices go too.
#[tracing::instrument(name = "cleanup", skip_all)]
async fn sweep(targets: Sweeps, timeout: Duration, pace: CleanupPace) {
    let started = Instant::now();
    let work = async move {
        tokio::time::timeout(timeout, async {
            let sessions = targets.store.cleanup_expired_sessions_paced(pace).await?;
            let tokens = match &targets.tokens {
                Some(tokens) => tokens.cleanup_expired_tokens().await?,
                None => 0,
            };
            if let Some(counters) = &targets.counters {
                match counters.cleanup_rate_limits().await {
                    Ok(counters) => {
                        observe::cleanup_rows("rate_limits", counters);
                        tracing::debug!(counters, "abuse counters cleaned up");
                    }
                    Err(err) => tracing::warn!(error = %err, "abuse counters cleanup failed"),
                }
            }
            if let Some(second_factors) = &targets.second_factors {
                match second_factors.cleanup_second_factors().await {
                    Ok(rows) => tracing::debug!(rows, "second-factor rows cleaned up"),
                    Err(err) => tracing::warn!(error = %err, "second-factor cleanup failed"),
                }
            }
            Ok::<_, StoreError>((sessions, tokens))
        })
        .await
    };
    // The store's spans are the sweep's children, though they run on a task of their own.
    let task = tokio::spawn(work.in_current_span());
    let elapsed_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let outcome = task.await;
    observe::cleanup_finished(
        match &outcome {
            Ok(Ok(Ok(_))) => "ok",
            Ok(Ok(Err(_))) => "failed",
            Ok(Err(_)) => "timed_out",
            Err(_) => "panicked",
        },
        started.elapsed(),
    );
    match outcome {
        Ok(Ok(Ok((deleted, tokens)))) => {
            observe::cleanup_rows("sessions", deleted);
            observe::cleanup_rows("one_time_tokens", tokens);
            tracing::info!(
                deleted,
                tokens,
                elapsed_ms = elapsed_ms(),
                "session cleanup finished"
            );
        }
        Ok(Ok(Err(err))) => {
            tracing::warn!(error = %err, elapsed_ms = elapsed_ms(), "session cleanup failed");
        }
        Ok(Err(_elapsed)) => {
            tracing::warn!(
                timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                "session cleanup timed out; finished batches stay deleted"
            );
        }
        Err(err) => tracing::error!(error = %err, "session cleanup panicked"),
    }
}
