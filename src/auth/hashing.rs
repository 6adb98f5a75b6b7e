//! Password work for the engine: the threads that hash and verify, and the dummy hash that makes
//! a sign-in of an unknown email cost what a wrong password costs.
//!
//! argon2 is CPU-bound by design. On threads of the same priority as the async workers, each hash
//! makes the requests that share its core wait for a time slice: the bench measured
//! `GET /session`'s p99 at six times its idle value while sign-ins ran flat out. These threads
//! lower their own scheduling priority once, when they start (`SCHED_BATCH`, nice 19), so the
//! request path goes first and sign-ins take the CPU that is left. There are as many as hashes may
//! run at once, which also bounds argon2's memory; further work waits in their queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};
use tokio::sync::{OnceCell, oneshot};

use super::{AuthError, internal};
use crate::password::PasswordHasher;

/// The hashing threads and the dummy hash, as the engine uses them.
pub(super) struct Hashing {
    pool: Arc<HashPool>,
    /// A hash of no password, verified against when the email is unknown, so that sign-in costs
    /// the same whether or not the account exists. Made when the engine starts.
    dummy_hash: Arc<OnceCell<String>>,
}

/// What the dummy hash is a hash of: no password anyone can sign in with.
const DUMMY_PASSWORD: &str = "authingo: no such account";

impl Hashing {
    /// Starts the threads and, on a tokio runtime, makes the dummy hash right away, so that it
    /// exists before the first sign-in of an unknown email needs it.
    pub(super) fn start(hasher: Arc<dyn PasswordHasher>, threads: usize) -> std::io::Result<Self> {
        let hashing = Self {
            pool: Arc::new(HashPool::start(hasher, threads)?),
            dummy_hash: Arc::new(OnceCell::new()),
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
        Ok(Self { hasher, jobs })
    }

    /// Runs `job` with the hasher on one of the threads and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, HashPoolFailed> {
        let (result, receive) = oneshot::channel();
        let hasher = self.hasher.clone();
        self.jobs
            .send(Box::new(move || {
                // The caller may have gone; then nobody wants the result.
                let _ = result.send(job(hasher.as_ref()));
            }))
            .map_err(|_| HashPoolFailed)?;
        receive.await.map_err(|_| HashPoolFailed)
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
    let lowered = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
    if let Err(err) = lowered {
        tracing::debug!(error = ?err, "hashing threads keep the default priority");
    }
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn threads_run_at_the_lowest_priority() {
        let nice = pool(1)
            .run(|_| {
                // Field 19 of a task's stat is its nice value; field 2, the name, may hold
                // spaces but ends with ')'.
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                let after_name = &stat[stat.rfind(')').unwrap() + 2..];
                after_name
                    .split(' ')
                    .nth(16)
                    .unwrap()
                    .parse::<i32>()
                    .unwrap()
            })
            .await
            .unwrap();
        assert_eq!(nice, 19);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_thread_lives_on() {
        let pool = pool(1);
        let failed = pool.run(|_| -> u8 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }
}
