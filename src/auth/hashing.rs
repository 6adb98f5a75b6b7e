//! Password work for the engine: the threads that hash and verify, and the dummy hash that makes
//! a sign-in of an unknown email cost what a wrong password costs.
//!
//! argon2 is CPU-bound by design. On threads of the same priority as the async workers, each hash
//! makes the requests that share its core wait for a time slice: the bench measured
//! `GET /session`'s p99 at six times its idle value while sign-ins ran flat out. These threads
//! lower their own scheduling priority once, when they start, so the request path goes first and
//! sign-ins take the CPU that is left: on Linux (and Android) `SCHED_BATCH` at nice 19; elsewhere
//! the lowest priority of the platform's normal policy (nice 19 on other Unixes,
//! `THREAD_PRIORITY_LOWEST` on Windows), the fallback. A platform that refuses either keeps the
//! default priority, with a debug log line. There are as many threads as hashes may run at once,
//! which also bounds argon2's memory; further work waits in their queue.
//!
//! The queue is bounded too (load shedding): a sign-up, sign-in or change of password is
//! admitted only while fewer than the threads plus `max_queued_hashes` are admitted, and is
//! refused at once ([`AuthError::Busy`]) beyond. A job whose caller has gone (a dropped request)
//! is skipped when its turn comes, not hashed, and counted.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use thread_priority::ThreadPriority;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, oneshot};

use super::{AuthError, internal, observe};
use crate::password::PasswordHasher;

/// The hashing threads and the dummy hash, as the engine uses them.
pub(super) struct Hashing {
    pool: Arc<HashPool>,
    /// A hash of no password, verified against when the email is unknown, so that sign-in costs
    /// the same whether or not the account exists. Made when the engine starts.
    dummy_hash: Arc<OnceCell<String>>,
    /// One permit per operation admitted: the threads plus the queue's bound.
    admission: Arc<Semaphore>,
    capacity: usize,
}

/// An operation's place among the admitted ones, given back when dropped.
#[derive(Debug)]
pub(super) struct Admission(
    #[expect(dead_code, reason = "held for its drop")] OwnedSemaphorePermit,
);

/// What the dummy hash is a hash of: no password anyone can sign in with.
const DUMMY_PASSWORD: &str = "authingo: no such account";

impl Hashing {
    /// Starts the threads and, on a tokio runtime, makes the dummy hash right away, so that it
    /// exists before the first sign-in of an unknown email needs it. `queued` operations may
    /// wait beyond the `threads` running.
    pub(super) fn start(
        hasher: Arc<dyn PasswordHasher>,
        threads: usize,
        queued: usize,
    ) -> std::io::Result<Self> {
        let capacity = threads.saturating_add(queued).min(Semaphore::MAX_PERMITS);
        let hashing = Self {
            pool: Arc::new(HashPool::start(hasher, threads)?),
            dummy_hash: Arc::new(OnceCell::new()),
            admission: Arc::new(Semaphore::new(capacity)),
            capacity,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (pool, dummy) = (hashing.pool.clone(), hashing.dummy_hash.clone());
            runtime.spawn(async move {
                if let Err(err) = dummy.get_or_try_init(|| hash(&pool, DUMMY_PASSWORD)).await {
                    tracing::warn!(error = %err, "cannot make the dummy hash yet");
                }
            });
        }
        Ok(hashing)
    }

    /// A place for one operation, or [`AuthError::Busy`] at once when the queue is full. Hold it
    /// until the operation's hashing is done.
    pub(super) fn admit(&self) -> Result<Admission, AuthError> {
        self.admission
            .clone()
            .try_acquire_owned()
            .map(Admission)
            .map_err(|_| {
                observe::hashing_refused();
                AuthError::Busy
            })
    }

    /// Operations admitted now (running or waiting).
    pub(super) fn admitted(&self) -> usize {
        self.capacity - self.admission.available_permits()
    }

    /// Jobs skipped because their caller had gone.
    pub(super) fn skipped(&self) -> u64 {
        self.pool.skipped.load(Ordering::Relaxed)
    }

    /// A new hash of `password`.
    pub(super) async fn hash(&self, password: &str) -> Result<String, AuthError> {
        hash(&self.pool, password).await
    }

    /// Whether `password` matches `hash`.
    pub(super) async fn verify(&self, password: &str, hash: String) -> Result<bool, AuthError> {
        let password = password.to_owned();
        self.pool
            .run(move |hasher| hasher.verify(&password, &hash))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    /// Whether the hasher asks for `hash`, which it has just accepted, to be replaced.
    pub(super) fn needs_rehash(&self, hash: &str) -> bool {
        self.pool.hasher.needs_rehash(hash)
    }

    /// The dummy hash, made now if the start did not make it yet.
    pub(super) async fn dummy(&self) -> Result<&str, AuthError> {
        self.dummy_hash
            .get_or_try_init(|| hash(&self.pool, DUMMY_PASSWORD))
            .await
            .map(String::as_str)
    }

    /// Costs one verification, for sign-ins that have no usable hash to check: a verification
    /// against the dummy hash. A caller that arrives while the dummy is still being made waits
    /// for it and then verifies too, so no failing sign-in is ever cheaper than a wrong password.
    pub(super) async fn spend_one_verification(&self, password: &str) -> Result<(), AuthError> {
        let dummy = self.dummy().await?.to_owned();
        self.verify(password, dummy).await.map(drop)
    }
}

async fn hash(pool: &HashPool, password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    pool.run(move |hasher| hasher.hash(&password))
        .await
        .map_err(internal)?
        .map_err(internal)
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of low-priority threads running a [`PasswordHasher`]. The threads end when the
/// pool is dropped (after the job each is running).
struct HashPool {
    hasher: Arc<dyn PasswordHasher>,
    jobs: mpsc::Sender<Job>,
    /// Jobs not run because nobody waited for their result any more.
    skipped: Arc<AtomicU64>,
    /// Jobs sent and not yet taken by a thread.
    queued: Arc<AtomicUsize>,
}

/// The hashing threads could not run a job: they are gone, or the job panicked.
#[derive(Debug, thiserror::Error)]
#[error("the password hashing threads did not return a result")]
struct HashPoolFailed;

impl HashPool {
    /// Starts `threads` threads named `authingo-hash-<n>`.
    fn start(hasher: Arc<dyn PasswordHasher>, threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("authingo-hash-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self {
            hasher,
            jobs,
            skipped: Arc::new(AtomicU64::new(0)),
            queued: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `job` with the hasher on one of the threads and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, HashPoolFailed> {
        let (result, receive) = oneshot::channel();
        let (hasher, skipped) = (self.hasher.clone(), self.skipped.clone());
        let queued = self.queued.clone();
        // The metrics are recorded here, on the caller's task, not on the hashing thread: a
        // recorder the application scoped to its tasks' thread sees them too.
        observe::hash_queue_depth(self.queued.fetch_add(1, Ordering::Relaxed) + 1);
        let enqueued = Instant::now();
        let sent = self.jobs.send(Box::new(move || {
            queued.fetch_sub(1, Ordering::Relaxed);
            // The caller went while the job waited (its request was dropped): skip it.
            if result.is_closed() {
                skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let started = Instant::now();
            // The caller may go while it runs; then nobody wants the result.
            let _ = result.send((started, job(hasher.as_ref())));
        }));
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(HashPoolFailed);
        }
        let received = receive.await;
        observe::hash_queue_depth(self.queued.load(Ordering::Relaxed));
        let (started, value) = received.map_err(|_| HashPoolFailed)?;
        observe::hash_queue_wait(started.saturating_duration_since(enqueued));
        Ok(value)
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        // Only the wait for a job holds the lock, never the job itself.
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            // Every sender is gone: the pool was dropped.
            return;
        };
        // A panicking hasher loses its one result (the caller gets an error), not the thread.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("the password hasher panicked");
        }
    }
}

fn lower_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let lowered = lower_priority_batch();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let lowered = lower_priority_portable();
    if let Err(err) = lowered {
        tracing::debug!(error = ?err, "hashing threads keep the default priority");
    }
}

/// Linux and Android: `SCHED_BATCH` (the scheduler treats the thread as CPU-bound and lets
/// interactive work preempt it) at nice 19. `SCHED_BATCH` exists nowhere else.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn lower_priority_batch() -> Result<(), thread_priority::Error> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    )
}

/// The fallback on every other platform: the lowest priority within the thread's current
/// policy (nice 19 on Unix, `THREAD_PRIORITY_LOWEST` on Windows). Compiled on Linux for the
/// tests too, which run it there, since no other target's standard library can be installed in CI.
#[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
fn lower_priority_portable() -> Result<(), thread_priority::Error> {
    thread_priority::set_current_thread_priority(ThreadPriority::Min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{Argon2Params, Argon2id};

    fn pool(threads: usize) -> HashPool {
        let hasher = Argon2id::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        HashPool::start(Arc::new(hasher), threads).unwrap()
    }

    #[tokio::test]
    async fn jobs_run_on_the_named_threads() {
        let pool = pool(2);
        let (name, hash) = pool
            .run(|hasher| {
                let name = std::thread::current().name().map(str::to_owned);
                (name, hasher.hash("pw").unwrap())
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("authingo-hash-"));
        assert!(
            pool.run(move |h| h.verify("pw", &hash).unwrap())
                .await
                .unwrap()
        );
    }

    /// The nice value and scheduling policy of the calling thread, from
    /// `/proc/thread-self/stat`: fields 19 and 41 (field 2, the name, may hold spaces but ends
    /// with ')').
    #[cfg(target_os = "linux")]
    fn nice_and_policy() -> (i32, u32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        (
            fields[19 - 3].parse().unwrap(),
            fields[41 - 3].parse().unwrap(),
        )
    }

    #[cfg(target_os = "linux")]
    const SCHED_OTHER: u32 = 0;
    #[cfg(target_os = "linux")]
    const SCHED_BATCH: u32 = 3;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn threads_run_at_the_lowest_priority() {
        let (nice, policy) = pool(1).run(|_| nice_and_policy()).await.unwrap();
        assert_eq!((nice, policy), (19, SCHED_BATCH));
    }

    /// The path other platforms take, run here on a thread of its own: it lowers the priority
    /// within the default policy, without `SCHED_BATCH`.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_fallback_lowers_the_priority_without_sched_batch() {
        let (before, after) = std::thread::spawn(|| {
            let before = nice_and_policy();
            lower_priority_portable().unwrap();
            (before, nice_and_policy())
        })
        .join()
        .unwrap();
        assert_eq!(before.1, SCHED_OTHER);
        assert_eq!(after, (19, SCHED_OTHER));
    }

    #[tokio::test]
    async fn a_job_whose_caller_went_is_skipped_and_counted() {
        let pool = Arc::new(pool(1));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (entered, started) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |_| {
                    let _ = entered.send(());
                    let _ = gate.recv();
                })
                .await
            }
        });
        started.await.unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        // Queued behind the blocker, then dropped by its caller's timeout.
        let dropped = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            pool.run(move |_| flag.store(true, Ordering::SeqCst)),
        )
        .await;
        assert!(dropped.is_err());
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(pool.skipped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_thread_lives_on() {
        let pool = pool(1);
        let failed = pool.run(|_| -> u8 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }
}
