//! Database faults through the HTTP layer, on a private PostgreSQL cluster
//! ([`authingo_test_db::Cluster`]): the server stopped and restarted under load, refusing
//! connections, frozen, read-only, slow (statement and lock timeouts) or locked; backends killed;
//! clients that go away mid-request; the serving process killed mid-sign-up. Each test asserts
//! what every answer was (status, `Retry-After`, no cookie set or cleared on a 503), how long it
//! took, and which rows are left.
//!
//! # Bounds
//!
//! The store under test runs with a [`CHECKOUT`] timeout and a [`STATEMENT`] bound of 500 ms,
//! so a request that runs `n` store operations answers within `n × (CHECKOUT + STATEMENT)`,
//! plus [`SLACK`] for a machine whose two cores other builds share: [`bound`]. Every answer is
//! timed with `Instant` around the request and checked against it.
//!
//! # Waiting
//!
//! Nothing sleeps to synchronise: a test waits for what it can observe (an answer, a backend
//! waiting on a lock in `pg_stat_activity`, a process gone), each wait with a deadline that
//! fails the test. The few fixed durations are the lengths of outages, said where they are.
//!
//! # Clusters
//!
//! A test that stops, freezes or reconfigures the server has a cluster of its own
//! ([`FaultApp::own`]); the others share one per process ([`FaultApp::shared`]), each on a
//! database of its own, so every test may run beside any other, under `cargo test` (threads) and
//! `cargo nextest run` (processes) alike.

mod cancel;
mod degraded;
mod locks;
mod outage;
mod process;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authingo::Auth;
use authingo::postgres::{self, PgStore, PoolConfig};
use authingo_test_db::Cluster;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_postgres::Client;

use super::app::app;
use super::reply::{Reply, Tokens};
use super::server::{TestRequest, TestServer};
use crate::support::{EngineBuilder, PASSWORD, migrate};

/// How long a request waits for a pooled connection.
pub(super) const CHECKOUT: Duration = Duration::from_millis(500);
/// How long the store lets one statement run.
pub(super) const STATEMENT: Duration = Duration::from_millis(500);
/// Scheduling delays on a loaded machine, on top of the bounds.
pub(super) const SLACK: Duration = Duration::from_secs(1);

/// The longest a request that runs `operations` store operations may take to answer.
pub(super) fn bound(operations: u32) -> Duration {
    (CHECKOUT + STATEMENT) * operations + SLACK
}

/// The pool and store settings of a [`FaultApp`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    pub(super) max_size: u32,
    pub(super) checkout: Duration,
    pub(super) statement: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_size: 10,
            checkout: CHECKOUT,
            statement: STATEMENT,
        }
    }
}

/// The application of the HTTP tests on a database of a private cluster.
pub(super) struct FaultApp {
    pub(super) cluster: Arc<Cluster>,
    pub(super) database: String,
    pub(super) auth: Auth,
    pub(super) server: Arc<TestServer>,
}

impl FaultApp {
    /// On a cluster of this test's own, which it may stop, freeze or reconfigure.
    pub(super) async fn own(tuning: Tuning) -> Self {
        Self::on(Arc::new(Cluster::new().await), tuning).await
    }

    /// On the cluster the tests running now share, on a database of this test's own.
    pub(super) async fn shared(tuning: Tuning) -> Self {
        Self::on(Cluster::shared().await, tuning).await
    }

    /// On a new database of `cluster`.
    pub(super) async fn on(cluster: Arc<Cluster>, tuning: Tuning) -> Self {
        let database = cluster.migrated_database(migrate).await;
        Self::on_database(cluster, database, tuning).await
    }

    /// On `database` of `cluster`, as it is (timeouts set on it apply to the pool's sessions).
    pub(super) async fn on_database(
        cluster: Arc<Cluster>,
        database: String,
        tuning: Tuning,
    ) -> Self {
        let auth = EngineBuilder::on(store(&cluster.url(&database), tuning).await).build();
        let server = Arc::new(TestServer::start(app(&auth, "/api/auth")).await);
        Self {
            cluster,
            database,
            auth,
            server,
        }
    }

    /// The database's URL.
    pub(super) fn url(&self) -> String {
        self.cluster.url(&self.database)
    }

    /// A connection to the database, for checking rows.
    pub(super) async fn client(&self) -> Client {
        self.cluster.client(&self.database).await
    }

    /// The `count(*)` that `sql` selects, on the database.
    pub(super) async fn count(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
            .get(0)
    }

    /// How many sessions of the server (other than the asking one) are on the database and
    /// match `condition`, a `pg_stat_activity` predicate.
    pub(super) async fn backends(&self, condition: &str) -> i64 {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND ({condition})"
        );
        self.cluster
            .client("postgres")
            .await
            .query_one(&sql, &[&self.database])
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
            .get(0)
    }

    /// Users without a session: what a sign-up that is not atomic leaves behind.
    pub(super) async fn users_without_session(&self) -> i64 {
        self.count(
            "SELECT count(*) FROM users u \
             WHERE NOT EXISTS (SELECT FROM sessions s WHERE s.user_id = u.id)",
        )
        .await
    }

    /// Signs up `email` while the database is healthy.
    pub(super) async fn sign_up(&self, email: &str) -> Tokens {
        self.server.sign_up(email).await.1
    }
}

/// A store with `tuning` on the database at `url`.
pub(super) async fn store(url: &str, tuning: Tuning) -> PgStore {
    let config = PoolConfig::default()
        .max_size(tuning.max_size)
        .connection_timeout(tuning.checkout);
    let pool = postgres::connect_with(url, &config)
        .await
        .unwrap_or_else(|err| panic!("connecting to the private cluster: {err}"));
    PgStore::new(pool).statement_timeout(tuning.statement)
}

/// One answer, with when its request started and how long it took.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) reply: Reply,
    pub(super) started: Instant,
    pub(super) took: Duration,
}

impl Answer {
    pub(super) fn ended(&self) -> Instant {
        self.started + self.took
    }

    /// Asserts that it came within `limit`.
    #[track_caller]
    pub(super) fn assert_within(&self, limit: Duration) {
        assert!(
            self.took <= limit,
            "{} answered {} after {:?}, beyond the bound of {limit:?}",
            self.reply.request,
            self.reply.status,
            self.took
        );
    }
}

/// Sends `request`, timing it.
pub(super) async fn timed(request: TestRequest<'_>) -> Answer {
    let started = Instant::now();
    let reply = request.send().await;
    Answer {
        reply,
        started,
        took: started.elapsed(),
    }
}

/// `n` concurrent `GET /api/auth/session` with `cookie`, all answered within twice the bound of
/// one (each answer is checked against the bound by the caller; this only keeps a test that
/// fails from hanging).
pub(super) async fn concurrent_reads(app: &FaultApp, cookie: &str, n: usize) -> Vec<Answer> {
    let mut requests = JoinSet::new();
    for _ in 0..n {
        let (server, cookie) = (app.server.clone(), cookie.to_owned());
        requests.spawn(async move { timed(server.get("/api/auth/session").cookie(&cookie)).await });
    }
    let deadline = tokio::time::Instant::now() + bound(1) * 2;
    let mut answers = Vec::with_capacity(n);
    while !requests.is_empty() {
        match tokio::time::timeout_at(deadline, requests.join_next()).await {
            Ok(Some(joined)) => answers.push(joined.unwrap()),
            Ok(None) => break,
            Err(_) => panic!(
                "{} of {n} requests had no answer after {:?}",
                requests.len(),
                bound(1) * 2
            ),
        }
    }
    answers
}

/// Waits until `condition` holds, checking every 10 ms; panics with `what` after `deadline`.
pub(super) async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < deadline,
            "waited {deadline:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a client of a [`Load`] sends, over and over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `GET /api/auth/session` with a valid cookie: one read.
    Session,
    /// `POST /api/auth/sign-in` with the right password: a read, then a session written.
    SignIn,
}

impl Kind {
    /// The store operations a request of this kind runs at most.
    pub(super) fn operations(self) -> u32 {
        match self {
            Self::Session => 1,
            Self::SignIn => 2,
        }
    }
}

/// Clients that send requests one after another until [`Load::finish`], keeping every answer.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<(Kind, Answer)>>>,
    clients: JoinSet<()>,
}

impl Load {
    /// Starts `sessions` clients reading the session of `tokens` and `sign_ins` clients signing
    /// `email` in.
    pub(super) fn start(
        server: &Arc<TestServer>,
        tokens: &Tokens,
        email: &str,
        sessions: usize,
        sign_ins: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let mut clients = JoinSet::new();
        let kinds = std::iter::repeat_n(Kind::Session, sessions)
            .chain(std::iter::repeat_n(Kind::SignIn, sign_ins));
        for kind in kinds {
            let (server, stop, answers) = (server.clone(), stop.clone(), answers.clone());
            let cookie = tokens.access_cookie();
            let credentials = json!({"email": email, "password": PASSWORD});
            clients.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let request = match kind {
                        Kind::Session => server.get("/api/auth/session").cookie(&cookie),
                        Kind::SignIn => server.post("/api/auth/sign-in").json(&credentials),
                    };
                    let answer = timed(request).await;
                    answers.lock().unwrap().push((kind, answer));
                }
            });
        }
        Self {
            stop,
            answers,
            clients,
        }
    }

    /// How many answers so far satisfy `filter`.
    pub(super) fn count(&self, filter: impl Fn(Kind, &Answer) -> bool) -> usize {
        let answers = self.answers.lock().unwrap();
        answers
            .iter()
            .filter(|(kind, answer)| filter(*kind, answer))
            .count()
    }

    /// Waits until `wanted` answers satisfy `filter`, for at most `deadline`.
    pub(super) async fn wait_for(
        &self,
        what: &str,
        wanted: usize,
        deadline: Duration,
        filter: impl Fn(Kind, &Answer) -> bool,
    ) {
        wait_until(what, deadline, || {
            let seen = self.count(&filter);
            async move { seen >= wanted }
        })
        .await;
    }

    /// Stops the clients after their current request, and returns every answer.
    pub(super) async fn finish(mut self) -> Vec<(Kind, Answer)> {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(joined) = self.clients.join_next().await {
            joined.unwrap();
        }
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}
