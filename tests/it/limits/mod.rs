//! Abuse limits on the real database, a module per limit: rate limits shared by every instance
//! (`rates`), failed sign-ins per email (`failures`: back-off, the lock, a success resetting the
//! count), the bounded hashing queue (`queue`) and common passwords (`passwords`). Expiry and
//! back-off are moved with rows written in the past, never by sleeping; races start together
//! behind a `Barrier`. What they share is here.

mod devices;
mod failures;
mod mails;
mod passwords;
mod queue;
mod rates;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use authingo::auth::RequestContext;
use authingo::limits::{EmailDigest, LimitedRoute, RateLimit, RateLimits, SignInThrottle};
use authingo::postgres::PoolConfig;
use authingo::{Auth, AuthError, ConfigError, InputReason, Options};
use tokio::sync::Barrier;

const FIVE_MINUTES: StdDuration = StdDuration::from_secs(300);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn from(client: &str) -> RequestContext {
    RequestContext::default().ip_address(Some(ip(client)))
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
