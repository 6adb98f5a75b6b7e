//! Abuse limits on the real database, a module per limit: rate limits shared by every instance
//! (`rates`), failed sign-ins per email (`failures`: back-off, the lock, a success resetting the
//! count), the bounded hashing queue (`queue`) and common passwords (`passwords`). Expiry and
//! back-off are moved with rows written in the past, never by sleeping; races start together
//! behind a `Barrier`. What they share is here.

mod failures;
mod passwords;
mod queue;
mod rates;

pub(crate) use queue::Gated;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration as StdDuration;

use authingo::auth::RequestContext;
use authingo::limits::{EmailDigest, LimitedRoute, RateLimit, RateLimits, SignInThrottle};
use authingo::password::{Argon2id, PasswordError, PasswordHasher};
use authingo::postgres::PoolConfig;
use authingo::{Auth, AuthError, ConfigError, InputReason, Options};
use tokio::sync::Barrier;

use crate::auth::Watched;
use crate::counting::counted_store;
use crate::db::{TestDb, exec};
use crate::fixtures::{FAST, PASSWORD, count, rows};

const FIVE_MINUTES: StdDuration = StdDuration::from_secs(300);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn from(client: &str) -> RequestContext {
    RequestContext::default().ip_address(Some(ip(client)))
}

/// Options over `db` with fast hashing, no cleanup loop, the given rate limits and no throttle.
async fn options(db: &TestDb, limits: Option<RateLimits>) -> Options {
    Options::new(db.store().await)
        .argon2(FAST)
        .cleanup_interval(None)
        .rate_limits(limits)
        .sign_in_throttle(None)
}

/// Sign-ins limited to `max` per five minutes per address, the other limits off.
fn sign_ins(max: u32) -> RateLimits {
    RateLimits::default()
        .sign_in(Some(RateLimit::new(max, FIVE_MINUTES)))
        .sign_up(None)
        .refresh(None)
}

fn retry_after(result: Result<impl std::fmt::Debug, AuthError>) -> StdDuration {
    match result {
        Err(AuthError::TooManyRequests { retry_after }) => retry_after,
        other => panic!("expected too many requests, got {other:?}"),
    }
}
