//! What the store reports through the `metrics` facade (names in [`crate::telemetry`]): how long
//! each operation took, and the pool's connections, sampled as callers check one out.

use std::time::Instant;

use metrics::{gauge, histogram};

use crate::telemetry::{
    POOL_CHECKOUTS_WAITING, POOL_CONNECTIONS_IN_USE, POOL_CONNECTIONS_OPEN, STORE_OPERATION_SECONDS,
};

/// Records, when dropped, how long the store operation `op` has taken since [`timed`]: on every
/// return, an early one or an error too.
#[derive(Debug)]
pub(super) struct Timed {
    op: &'static str,
    started: Instant,
}

/// Starts timing the store operation `op` (the `Store` method's name).
pub(super) fn timed(op: &'static str) -> Timed {
    Timed {
        op,
        started: Instant::now(),
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        histogram!(STORE_OPERATION_SECONDS, "op" => self.op).record(self.started.elapsed());
    }
}

/// One caller waiting for a connection, from [`checkout`] until dropped.
#[derive(Debug)]
pub(super) struct Checkout(());

/// A checkout begins: samples the pool as the caller finds it (`state`, taken before the
/// checkout, so that an idle pool reads zero in use) and counts the caller as waiting until the
/// value returned is dropped, however the wait ends.
pub(super) fn checkout(state: &bb8::State) -> Checkout {
    let open = state.connections;
    gauge!(POOL_CONNECTIONS_OPEN).set(f64::from(open));
    gauge!(POOL_CONNECTIONS_IN_USE).set(f64::from(open.saturating_sub(state.idle_connections)));
    gauge!(POOL_CHECKOUTS_WAITING).increment(1.0);
    Checkout(())
}

impl Drop for Checkout {
    fn drop(&mut self) {
        gauge!(POOL_CHECKOUTS_WAITING).decrement(1.0);
    }
}
