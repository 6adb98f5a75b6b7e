//! The cleanup loop that [`Auth::new`](crate::Auth::new) starts.
//!
//! The first sweep runs after a random delay, then one runs every interval. Each sweep runs as a
//! task of its own under a timeout, so neither a slow store nor a panicking one stops the loop.
//! The loop ends when its stop signal is sent or dropped, but never in the middle of a sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Store;

/// What the loop needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) interval: Duration,
    pub(crate) first_delay: Duration,
    pub(crate) timeout: Duration,
}

/// Starts the loop on the current runtime. It stops when `stop` says `true` or is dropped.
pub(crate) fn spawn(
    store: Arc<dyn Store>,
    schedule: Schedule,
    sweeps: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = first_delay(schedule.first_delay);
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // Sent `true`, or every sender is gone: the last `Auth` handle was dropped.
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            sweep(store.clone(), schedule.timeout).await;
            sweeps.fetch_add(1, Ordering::Relaxed);
            wait = schedule.interval;
        }
    })
}

fn first_delay(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    max.mul_f64(rand::rng().random::<f64>())
}

/// One sweep, bounded by `timeout`, its outcome logged. Never panics.
async fn sweep(store: Arc<dyn Store>, timeout: Duration) {
    let started = Instant::now();
    let task = tokio::spawn(async move {
        tokio::time::timeout(timeout, store.cleanup_expired_sessions()).await
    });
    let elapsed_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match task.await {
        Ok(Ok(Ok(deleted))) => {
            tracing::info!(
                deleted,
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
