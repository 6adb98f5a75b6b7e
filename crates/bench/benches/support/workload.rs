//! What the loaded data looks like, and the inputs each operation is called with.
//!
//! Session `i` (1-based) of the load has the raw access token `tok{i}` and refresh token
//! `ref{i}`, stored as their SHA-256 hex digests (the SQL in `db.rs` computes the same
//! digests). Odd `i` are live, even `i` dead. Live session `k` (0-based) is `i = 2k + 1`. The
//! last quarter of the live sessions (at most 32,000) is reserved for `refresh_session`, which
//! rotates their tokens; `get_session` reads only the others, so it always finds its row.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use authingo::limits::EmailDigest;
use authingo::token::{RotationSecret, TokenDigest};
use authingo::{Session, SessionRotation};
use chrono::{Duration as TimeDelta, Utc};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use sha2::{Digest as _, Sha256};

/// The measured `Store` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum Op {
    GetSession,
    GetUserByEmail,
    CreateSession,
    RefreshSession,
    DeleteSession,
    /// One rate-limit check: the upsert of a sign-in's counter.
    CountRequest,
    /// A successful sign-in's email throttle: the attempt counted (`begin_sign_in_attempt`),
    /// then the count cleared (`clear_sign_in_failures`); two statements, two checkouts.
    SignInThrottle,
}

impl Op {
    pub(crate) const ALL: [Self; 7] = [
        Self::GetSession,
        Self::GetUserByEmail,
        Self::CreateSession,
        Self::RefreshSession,
        Self::DeleteSession,
        Self::CountRequest,
        Self::SignInThrottle,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetSession => "get_session",
            Self::GetUserByEmail => "get_user_by_email",
            Self::CreateSession => "create_session",
            Self::RefreshSession => "refresh_session",
            Self::DeleteSession => "delete_session",
            Self::CountRequest => "count_request",
            Self::SignInThrottle => "sign_in_throttle",
        }
    }
}

/// The shape of the loaded data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dataset {
    pub(crate) users: u64,
    pub(crate) sessions: u64,
}

impl Dataset {
    pub(crate) fn live(self) -> u64 {
        self.sessions.div_ceil(2)
    }

    pub(crate) fn dead(self) -> u64 {
        self.sessions / 2
    }

    /// Live sessions reserved for `refresh_session`: the last ones.
    pub(crate) fn refresh_reserved(self) -> u64 {
        (self.live() / 4).min(32_000)
    }

    /// Live sessions `get_session` draws from: `k` in `0..readable()`.
    pub(crate) fn readable(self) -> u64 {
        self.live() - self.refresh_reserved()
    }

    pub(crate) fn email(self, user: u64) -> String {
        format!("user{user}@bench.example")
    }

    pub(crate) fn user_id(self, user: u64) -> String {
        format!("usr_{user:032x}")
    }
}

/// The SHA-256 hex digest of `raw`: what the columns hold.
pub(crate) fn digest(raw: &str) -> TokenDigest {
    TokenDigest::from_stored(hex::encode(Sha256::digest(raw.as_bytes())))
}

/// One call's arguments. Made before the timer starts.
#[derive(Debug)]
pub(crate) enum Input {
    GetSession(TokenDigest),
    GetUserByEmail(String),
    CreateSession(Session),
    RefreshSession {
        slot: usize,
        old: TokenDigest,
        rotation: SessionRotation,
    },
    DeleteSession(TokenDigest),
    CountRequest(String),
    SignInThrottle(EmailDigest),
}

/// Which worker of how many is asking, and its own counters.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) of: usize,
    rng: SmallRng,
    turn: u64,
}

impl Worker {
    pub(crate) fn new(index: usize, of: usize, seed: u64) -> Self {
        Self {
            index,
            of,
            rng: SmallRng::seed_from_u64(seed ^ ((index as u64) << 32)),
            turn: 0,
        }
    }
}

/// Client addresses the rate-limit check draws from.
const COUNTED_CLIENTS: u32 = 50_000;

/// The limit the rate-limit check counts against: the default sign-in limit, 30 per 5 minutes.
pub(crate) const SIGN_IN_LIMIT: authingo::RateLimit =
    authingo::RateLimit::new(30, std::time::Duration::from_secs(300));

/// What a browser's sign-in records: a user agent of the usual length.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                          Chrome/156.0.0.0 Safari/537.36";

/// Shared state of the store section: counters for fresh rows, the current refresh digest of
/// every reserved session, and the pool of rows `delete_session` may delete.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) data: Dataset,
    created: AtomicU64,
    refresh: Vec<Mutex<TokenDigest>>,
    rotated: AtomicU64,
    /// One rotation secret for every call: drawing one per call is the engine's cost, not the
    /// store's.
    secret: RotationSecret,
    delete_next: AtomicU64,
    delete_end: AtomicU64,
}

impl Workload {
    pub(crate) fn new(data: Dataset) -> Self {
        let first = data.readable();
        let refresh = (first..data.live())
            .map(|k| Mutex::new(digest(&format!("ref{}", 2 * k + 1))))
            .collect();
        Self {
            data,
            created: AtomicU64::new(0),
            refresh,
            rotated: AtomicU64::new(0),
            secret: RotationSecret::generate().expect("OS randomness"),
            delete_next: AtomicU64::new(0),
            delete_end: AtomicU64::new(0),
        }
    }

    /// The arguments of `worker`'s next call of `op`.
    pub(crate) fn input(&self, op: Op, worker: &mut Worker) -> Input {
        let data = self.data;
        match op {
            Op::GetSession => {
                let k = worker.rng.random_range(0..data.readable());
                Input::GetSession(digest(&format!("tok{}", 2 * k + 1)))
            }
            Op::GetUserByEmail => {
                Input::GetUserByEmail(data.email(worker.rng.random_range(1..=data.users)))
            }
            Op::CreateSession => {
                let n = self.created.fetch_add(1, Ordering::Relaxed);
                let now = Utc::now();
                Input::CreateSession(Session {
                    // "ses_f…" never collides with the loaded "ses_0…" or deletable "ses_d…".
                    id: format!("ses_f{n:031x}"),
                    user_id: data.user_id(worker.rng.random_range(1..=data.users)),
                    token: digest(&format!("new{n}")),
                    refresh_token: digest(&format!("newr{n}")),
                    expires_at: now + TimeDelta::minutes(15),
                    refresh_expires_at: now + TimeDelta::days(30),
                    created_at: None,
                    rotated_at: None,
                    absolute_expires_at: Some(now + TimeDelta::days(30)),
                    persistent: true,
                    user_agent: Some(USER_AGENT.to_owned()),
                    ip_address: Some("203.0.113.7".to_owned()),
                })
            }
            Op::RefreshSession => {
                // Worker `index` of `of` owns one contiguous share of the reserved sessions, so
                // no two calls ever race for the same row.
                let share = self.refresh.len() / worker.of;
                let slot = worker.index * share + (worker.turn % share as u64) as usize;
                worker.turn += 1;
                let old = self.refresh[slot]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let n = self.rotated.fetch_add(1, Ordering::Relaxed);
                let now = Utc::now();
                Input::RefreshSession {
                    slot,
                    old,
                    rotation: SessionRotation {
                        token: digest(&format!("rot{n}")),
                        refresh_token: digest(&format!("rotr{n}")),
                        expires_at: now + TimeDelta::minutes(15),
                        refresh_expires_at: now + TimeDelta::days(30),
                        secret: self.secret.clone(),
                        max_lifetime: Some(TimeDelta::days(30)),
                        reuse_grace: TimeDelta::seconds(10),
                        family: digest(&format!("fam{slot}")),
                    },
                }
            }
            Op::DeleteSession => {
                // Past the end of the pool this token matches nothing: counted as a miss.
                let k = self.delete_next.fetch_add(1, Ordering::Relaxed);
                Input::DeleteSession(digest(&format!("del{k}")))
            }
            Op::CountRequest => {
                // The sign-in counter of one of COUNTED_CLIENTS addresses (198.18.0.0/15, the
                // benchmarking range): rows that exist after the first calls, as in a service
                // that sees the same clients again.
                let n = worker.rng.random_range(0..COUNTED_CLIENTS);
                Input::CountRequest(format!(
                    "sign-in:ip:198.{}.{}.{}",
                    18 + n / 65_536,
                    (n / 256) % 256,
                    n % 256
                ))
            }
            Op::SignInThrottle => {
                // A user's email: its count is made and cleared within the call, so the table
                // stays empty between calls, as it is for users who type their password right.
                // Each worker has its own users: two calls on one email at once would find its
                // count cleared by the other.
                let of = worker.of as u64;
                let turns = (data.users / of).max(1);
                let user = 1 + worker.index as u64 + of * worker.rng.random_range(0..turns);
                Input::SignInThrottle(EmailDigest::of(&data.email(user)))
            }
        }
    }

    /// Records what a call changed: a rotated session's new refresh digest.
    pub(crate) fn settle(&self, input: Input, hit: bool) {
        if let (Input::RefreshSession { slot, rotation, .. }, true) = (input, hit) {
            *self.refresh[slot]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = rotation.refresh_token;
        }
    }

    /// Deletable rows not yet used, and the range `lo..hi` to insert so that at least `want`
    /// are left (empty when enough are).
    pub(crate) fn deletable_shortfall(&self, want: u64) -> (u64, u64) {
        let next = self.delete_next.load(Ordering::Relaxed);
        let end = self.delete_end.load(Ordering::Relaxed);
        let lo = end.max(next);
        let left = end.saturating_sub(next);
        (lo, lo + want.saturating_sub(left))
    }

    /// The rows of [`deletable_shortfall`](Self::deletable_shortfall)'s range now exist.
    pub(crate) fn deletable_added(&self, hi: u64) {
        self.delete_end.store(hi, Ordering::Relaxed);
    }
}
