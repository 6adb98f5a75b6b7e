//! The flood section's pieces: clients signing in back to back, each from an address of its own
//! that a trusted proxy (this host) forwards, their answers counted by status, and the process's
//! memory.
//!
//! Half the clients try a wrong password for an email with no account (credential stuffing: the
//! failed-sign-in throttle answers them 429 after five failures); the other half sign in with an
//! account's right password (a surge of real users: the hashing queue sheds what it cannot take
//! with 503). Every address also meets its own rate limit, 30 sign-ins per 5 minutes.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::header;

use super::Result;
use super::measure::Caller;

/// The anti-CSRF header every request of the crate's client carries.
const CLIENT_HEADER: &str = "x-authingo-client";

/// Sign-in answers by status.
#[derive(Debug, Default)]
pub(crate) struct Statuses {
    pub(crate) ok: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) too_many: AtomicU64,
    pub(crate) busy: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) other: AtomicU64,
}

/// [`Statuses`], read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) ok: u64,
    pub(crate) unauthorized: u64,
    pub(crate) too_many: u64,
    pub(crate) busy: u64,
    /// 503 `unavailable`: the store did not answer in time (pool checkout or statement).
    pub(crate) unavailable: u64,
    pub(crate) other: u64,
}

impl Statuses {
    fn record(&self, status: u16, body: &[u8]) {
        let counter = match status {
            200 => &self.ok,
            401 => &self.unauthorized,
            429 => &self.too_many,
            503 if body.starts_with(br#"{"error":"busy""#) => &self.busy,
            503 => &self.unavailable,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> Counts {
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            too_many: self.too_many.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }
}

/// The forwarded address of flood client `n`: in 198.18.0.0/15, the range set aside for
/// benchmarks (it only ever appears in a header; nothing is sent to it).
pub(crate) fn address(n: usize) -> String {
    format!("198.18.{}.{}", (n / 250) % 256, 1 + n % 250)
}

/// A flood client: sign-ins back to back with one body from one forwarded address.
#[derive(Debug)]
pub(crate) struct FloodSignIn {
    client: reqwest::Client,
    url: reqwest::Url,
    body: String,
    forwarded: String,
    statuses: Arc<Statuses>,
}

impl FloodSignIn {
    pub(crate) fn new(
        client: reqwest::Client,
        url: reqwest::Url,
        (email, password): (&str, &str),
        forwarded: String,
        statuses: Arc<Statuses>,
    ) -> Result<Self> {
        let body = serde_json::to_string(&serde_json::json!({
            "email": email,
            "password": password,
        }))?;
        Ok(Self {
            client,
            url,
            body,
            forwarded,
            statuses,
        })
    }
}

impl Caller for FloodSignIn {
    type Input = ();

    fn input(&mut self) {}

    fn call(&self, (): &()) -> impl Future<Output = Result<bool>> + Send {
        let request = self
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(CLIENT_HEADER, "true")
            .header("x-forwarded-for", self.forwarded.as_str())
            .body(self.body.clone());
        let statuses = Arc::clone(&self.statuses);
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            statuses.record(status, &black_box(body));
            Ok(status == 200)
        }
    }
}

/// This process's resident memory now and at its peak (`VmRSS`, `VmHWM`), in KiB; `None` where
/// `/proc` does not say.
pub(crate) fn memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
