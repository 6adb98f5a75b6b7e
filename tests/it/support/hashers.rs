//! Password hashers that wrap argon2id to watch the engine use them: `Watched` counts calls and
//! sees where and how many run at once, `Gated` holds hashes at a gate the test opens.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;

use authingo::password::{Argon2Params, Argon2id, PasswordError, PasswordHasher};

use super::FAST;

/// Wraps the argon2id hasher, counting calls and watching where and how many run at once.
#[derive(Default)]
pub(crate) struct Watched {
    pub(crate) hashes: AtomicUsize,
    pub(crate) verifies: AtomicUsize,
    /// Calls that ran argon2: every hash, and every verification of a readable hash.
    pub(crate) work: AtomicUsize,
    running: AtomicUsize,
    /// The most calls that ran at the same moment.
    pub(crate) most_at_once: AtomicUsize,
    /// The threads the calls ran on.
    pub(crate) threads: Mutex<HashSet<ThreadId>>,
    inner: Option<Argon2id>,
}

impl Watched {
    pub(crate) fn new(params: Argon2Params) -> Arc<Self> {
        Arc::new(Self {
            inner: Some(Argon2id::new(params).unwrap()),
            ..Self::default()
        })
    }

    pub(crate) fn count(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    fn enter(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
    }

    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHasher for Watched {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.enter();
        self.hashes.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.as_ref().unwrap().hash(password);
        self.work.fetch_add(1, Ordering::SeqCst);
        self.leave();
        result
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.enter();
        self.verifies.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.as_ref().unwrap().verify(password, hash);
        if result.is_ok() {
            self.work.fetch_add(1, Ordering::SeqCst);
        }
        self.leave();
        result
    }
}

/// A hasher whose hashes wait at a gate while it is closed (open at first, so that the dummy hash
/// is made).
pub(crate) struct Gated {
    inner: Argon2id,
    open: Mutex<bool>,
    opened: Condvar,
    /// Hashes that reached the gate.
    pub(crate) entered: AtomicUsize,
    /// Hashes that passed it.
    pub(crate) hashes: AtomicUsize,
}

impl Gated {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Argon2id::new(FAST).unwrap(),
            open: Mutex::new(true),
            opened: Condvar::new(),
            entered: AtomicUsize::new(0),
            hashes: AtomicUsize::new(0),
        })
    }

    pub(crate) fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

impl PasswordHasher for Gated {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.inner.hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.inner.verify(password, hash)
    }
}
