//! The flood section's pieces: flood clients (run by the generator process, `generator.rs`),
//! each from an address of its own that a trusted proxy (this host) forwards; well-behaved
//! clients signing in at a modest pace beside them; every answer tallied by status and error
//! code; a hasher that counts its work; and the process's memory.
//!
//! A sign-in flood: half the clients try a wrong password for an email with no account
//! (credential stuffing: the failed-sign-in throttle answers them 429 after five failures), the
//! other half sign in with an account's right password (a surge of real users: the hashing queue
//! sheds what it cannot take with 503). Every address also meets its own limit, 30 sign-ins per
//! 5 minutes, counted before the hashing queue is asked.
//!
//! A reset-token flood: every client posts random, well-formed one-time tokens to
//! `/reset-password`. The route counts the address (30 token uses per 5 minutes), then looks the
//! token up, and hashes the new password only for a live one: the flood should do no argon2 work.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use authingo::password::{PasswordError, PasswordHasher};
use authingo::token::TokenKind;
use axum::http::header;
use clap::ValueEnum;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;

use super::Result;
use super::measure::Caller;
use super::web::{CLIENT_HEADER, account};

/// The accounts the sign-in flood's clients with the right password use (see `web::account`).
pub(crate) const FLOOD_ACCOUNTS: &str = "flood";

/// The accounts of the well-behaved clients.
pub(crate) const WELL_BEHAVED_ACCOUNTS: &str = "regular";

/// Sign-ins a well-behaved client makes from one address before it takes another: below the
/// default per-address limit (30 per 5 minutes), so that the measurement meets the flood and
/// never that limit, however long it runs. A person signs in far less often.
const SIGN_INS_PER_ADDRESS: u64 = 20;

/// What a flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FloodKind {
    /// `POST /sign-in`, back to back, half of the clients with a wrong password for an unknown
    /// email, half with an account's right one
    SignIn,
    /// `POST /reset-password` with a new random, well-formed token each time
    ResetToken,
}

impl FloodKind {
    /// The route it floods, under the mount point.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::SignIn => "/sign-in",
            Self::ResetToken => "/reset-password",
        }
    }
}

/// Answers by status and error code ("200", "429 too_many_requests", "503 busy", ...).
pub(crate) type Answers = BTreeMap<String, u64>;

/// Answers counted as they come, from many tasks: in all, and by the second they came in
/// since the tally's start.
#[derive(Debug)]
pub(crate) struct Tally {
    start: Instant,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    answers: Answers,
    seconds: Vec<Answers>,
}

impl Default for Tally {
    fn default() -> Self {
        Self::starting(Instant::now())
    }
}

/// The `error` field of the crate's JSON error bodies.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl Tally {
    /// A tally whose seconds count from `start`.
    pub(crate) fn starting(start: Instant) -> Self {
        Self {
            start,
            counts: Mutex::default(),
        }
    }

    pub(crate) fn record(&self, status: u16, body: &[u8]) {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(error) if status != 200 => self.add(format!("{status} {}", error.error)),
            _ => self.add(status.to_string()),
        }
    }

    fn unanswered(&self, err: &reqwest::Error) {
        if err.is_timeout() {
            self.add("no answer: timeout".to_owned());
        } else {
            self.add("no answer: connection".to_owned());
        }
    }

    fn add(&self, key: String) {
        let second = usize::try_from(self.start.elapsed().as_secs()).unwrap_or(usize::MAX);
        // A poisoned count is still a count: the panic that poisoned it is reported elsewhere.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.seconds.len() <= second {
            counts.seconds.resize_with(second + 1, Answers::default);
        }
        *counts.seconds[second].entry(key.clone()).or_default() += 1;
        *counts.answers.entry(key).or_default() += 1;
    }

    pub(crate) fn read(&self) -> Answers {
        self.lock().answers.clone()
    }

    /// The answers of each second since the start.
    pub(crate) fn timeline(&self) -> Vec<Answers> {
        self.lock().seconds.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every answer counted.
pub(crate) fn total(answers: &Answers) -> u64 {
    answers.values().sum()
}

/// Answers of `status` (every error code).
pub(crate) fn of_status(answers: &Answers, status: &str) -> u64 {
    answers
        .iter()
        .filter(|(key, _)| key.split(' ').next() == Some(status))
        .map(|(_, count)| count)
        .sum()
}

/// "200: 38, 429 too_many_requests: 1200", or "none".
pub(crate) fn describe(answers: &Answers) -> String {
    if answers.is_empty() {
        return "none".to_owned();
    }
    answers
        .iter()
        .map(|(key, count)| format!("{key}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Addresses of 198.18.0.0/15, the range set aside for benchmarks (they only ever appear in a
/// header; nothing is sent to them): hosts 1 to 254 of each /24.
const ADDRESSES: usize = 2 * 256 * 254;

/// Forwarded address number `n` (below [`ADDRESSES`]).
fn address(n: usize) -> String {
    let (network, host) = (n / 254, 1 + n % 254);
    format!("198.{}.{}.{host}", 18 + network / 256, network % 256)
}

/// Hands out addresses that no earlier client of the run used, so that no count carries over
/// from one round to the next: blocks for the floods from the bottom of the range, single
/// addresses for the well-behaved clients from its top.
#[derive(Debug, Default)]
pub(crate) struct AddressSpace {
    blocks: AtomicUsize,
    singles: AtomicUsize,
}

impl AddressSpace {
    /// The number of the first of `count` new addresses (see [`flood_address`]).
    pub(crate) fn block(&self, count: usize) -> Result<usize> {
        let first = self.blocks.fetch_add(count, Ordering::Relaxed);
        self.check(first + count, self.singles.load(Ordering::Relaxed))?;
        Ok(first)
    }

    fn single(&self) -> Result<String> {
        let taken = self.singles.fetch_add(1, Ordering::Relaxed) + 1;
        self.check(self.blocks.load(Ordering::Relaxed), taken)?;
        Ok(address(ADDRESSES - taken))
    }

    fn check(&self, blocks: usize, singles: usize) -> Result<()> {
        if blocks + singles > ADDRESSES {
            return Err(format!(
                "the flood section ran out of addresses ({ADDRESSES}): fewer clients or rounds"
            )
            .into());
        }
        Ok(())
    }
}

/// The forwarded address of flood client `n` of a block starting at `first`.
pub(crate) fn flood_address(first: usize, n: usize) -> String {
    address(first + n)
}

/// A flood client: requests back to back from one forwarded address.
#[derive(Debug)]
pub(crate) struct Flooder {
    client: reqwest::Client,
    url: reqwest::Url,
    forwarded: String,
    body: Body,
    tally: Arc<Tally>,
}

#[derive(Debug)]
enum Body {
    /// The same body every time (a sign-in).
    Fixed(String),
    /// A reset with a new random token each time, and a new password the route accepts.
    RandomToken(SmallRng),
}

/// The new password of every reset the flood asks for: long enough and not a common one, so
/// that the route goes on to the token.
const NEW_PASSWORD: &str = "a new password nobody guesses 5081";

impl Flooder {
    /// Client `n` of a flood of `kind` whose addresses start at `first`.
    pub(crate) fn new(
        kind: FloodKind,
        (client, url): (reqwest::Client, reqwest::Url),
        (first, n, accounts): (usize, usize, usize),
        tally: Arc<Tally>,
    ) -> Result<Self> {
        let body = match kind {
            FloodKind::SignIn => {
                // Odd clients sign in with an account's right password, the others stuff a
                // wrong one for an email no round used before (its throttle starts at zero).
                let (email, password) = if n % 2 == 1 && n / 2 < accounts {
                    account(FLOOD_ACCOUNTS, n / 2)
                } else {
                    (
                        format!("stuffed{}@bench.example", first + n),
                        "not the password".to_owned(),
                    )
                };
                Body::Fixed(serde_json::to_string(&serde_json::json!({
                    "email": email,
                    "password": password,
                }))?)
            }
            FloodKind::ResetToken => {
                Body::RandomToken(SmallRng::seed_from_u64(((first + n) as u64) << 8))
            }
        };
        Ok(Self {
            client,
            url,
            forwarded: flood_address(first, n),
            body,
            tally,
        })
    }
}

/// A random token with the shape of a mailed link's (length and URL-safe alphabet), which the
/// route accepts as well formed and must look up.
fn random_one_time_token(rng: &mut SmallRng) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..TokenKind::OneTime.encoded_len())
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl Caller for Flooder {
    /// The request's body.
    type Input = String;

    fn input(&mut self) -> String {
        match &mut self.body {
            Body::Fixed(body) => body.clone(),
            Body::RandomToken(rng) => serde_json::json!({
                "token": random_one_time_token(rng),
                "new_password": NEW_PASSWORD,
            })
            .to_string(),
        }
    }

    fn call(&self, body: &String) -> impl Future<Output = Result<bool>> + Send {
        let request = post(&self.client, &self.url, &self.forwarded, body.clone());
        let tally = Arc::clone(&self.tally);
        async move { Ok(answered(request, &tally).await) }
    }
}

/// Sends `request` and counts its answer; says whether it was 200. A request that got no answer
/// (connection refused or reset, timeout) is counted too, not an error that would end the
/// flood: under a flood that is an answer of sorts.
async fn answered(request: reqwest::RequestBuilder, tally: &Tally) -> bool {
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            tally.unanswered(&err);
            return false;
        }
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => tally.record(status, &body),
        Err(err) => tally.unanswered(&err),
    }
    status == 200
}

/// A JSON `POST` from the crate's client, forwarded for `address`.
fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    address: &str,
    body: String,
) -> reqwest::RequestBuilder {
    client
        .post(url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(CLIENT_HEADER, "true")
        .header("x-forwarded-for", address)
        .body(body)
}

/// A well-behaved client: its own account and address, the right password, at the pace
/// `measure::drive` gives it.
#[derive(Debug)]
pub(crate) struct WellBehaved {
    client: reqwest::Client,
    url: reqwest::Url,
    body: String,
    addresses: Arc<AddressSpace>,
    address: String,
    sign_ins: u64,
    tally: Arc<Tally>,
}

impl WellBehaved {
    /// Client `n` (account `n` of [`WELL_BEHAVED_ACCOUNTS`]), on a new address.
    pub(crate) fn new(
        (client, url): (reqwest::Client, reqwest::Url),
        n: usize,
        addresses: Arc<AddressSpace>,
        tally: Arc<Tally>,
    ) -> Result<Self> {
        let (email, password) = account(WELL_BEHAVED_ACCOUNTS, n);
        let body = serde_json::to_string(&serde_json::json!({
            "email": email,
            "password": password,
        }))?;
        let address = addresses.single()?;
        Ok(Self {
            client,
            url,
            body,
            addresses,
            address,
            sign_ins: 0,
            tally,
        })
    }
}

impl Caller for WellBehaved {
    /// The forwarded address.
    type Input = String;

    fn input(&mut self) -> String {
        if self.sign_ins > 0 && self.sign_ins.is_multiple_of(SIGN_INS_PER_ADDRESS) {
            // Out of addresses only after 130,000 of them: keep the last one then.
            if let Ok(address) = self.addresses.single() {
                self.address = address;
            }
        }
        self.sign_ins += 1;
        self.address.clone()
    }

    fn call(&self, address: &String) -> impl Future<Output = Result<bool>> + Send {
        let request = post(&self.client, &self.url, address, self.body.clone());
        let tally = Arc::clone(&self.tally);
        async move { Ok(answered(request, &tally).await) }
    }
}

/// The engine's hasher (the default one) with a count of its hashes and verifications: the
/// argon2 work a phase caused, which no timing could show as plainly.
pub(crate) struct CountingHasher {
    inner: Arc<dyn PasswordHasher>,
    operations: AtomicU64,
}

impl std::fmt::Debug for CountingHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingHasher")
            .field("operations", &self.operations)
            .finish_non_exhaustive()
    }
}

impl CountingHasher {
    pub(crate) fn new(inner: Arc<dyn PasswordHasher>) -> Self {
        Self {
            inner,
            operations: AtomicU64::new(0),
        }
    }

    /// Hashes and verifications so far.
    pub(crate) fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }
}

impl PasswordHasher for CountingHasher {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        self.inner.verify(password, hash)
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        self.inner.needs_rehash(hash)
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
