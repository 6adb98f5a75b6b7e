//! The bounded hashing queue: busy at once when full, a dropped request's hash skipped.

use super::*;
use authingo::{RequestContext, SignUp};

/// A hasher whose hashes wait at a gate while it is closed (open at first, so that the dummy hash
/// is made).
pub(crate) struct Gated {
    inner: Argon2id,
    open: Mutex<bool>,
    opened: Condvar,
    entered: AtomicUsize,
    hashes: AtomicUsize,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_at_once_and_a_dropped_requests_hash_is_skipped() {
    let db = TestDb::new().await;
    let hasher = Gated::new();
    let auth = Auth::new(
        options(&db, None)
            .await
            .password_hasher(hasher.clone())
            .max_concurrent_hashes(1)
            .max_queued_hashes(1),
    )
    .unwrap();
    auth.ready().await.unwrap();
    let dummy = hasher.hashes.load(Ordering::SeqCst);
    hasher.set(false);
    // One hashing, held at the gate; one waiting behind it.
    let running = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "ada@example.com",
                PASSWORD,
                "Ada",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
        }
    });
    while hasher.entered.load(Ordering::SeqCst) == dummy {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let waiting = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_up(
                "bob@example.com",
                PASSWORD,
                "Bob",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in)
        }
    });
    while auth.hashes_admitted() < 2 {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    // Full: refused at once, whatever the operation.
    let refused = tokio::time::timeout(StdDuration::from_secs(5), async {
        (
            auth.sign_up(
                "eve@example.com",
                PASSWORD,
                "Eve",
                &RequestContext::default(),
            )
            .await
            .and_then(SignUp::signed_in),
            auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
                .await,
        )
    })
    .await
    .expect("a full queue answers at once");
    assert!(matches!(refused.0, Err(AuthError::Busy)), "{:?}", refused.0);
    assert!(matches!(refused.1, Err(AuthError::Busy)), "{:?}", refused.1);
    // The waiting request goes away (its client hung up): its place is free, its job skipped.
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert_eq!(auth.hashes_admitted(), 1);
    hasher.set(true);
    running.await.unwrap().unwrap();
    for _ in 0..2000 {
        if auth.hashes_skipped() == 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert_eq!(auth.hashes_skipped(), 1);
    assert_eq!(
        hasher.hashes.load(Ordering::SeqCst),
        dummy + 1,
        "only Ada's hash ran"
    );
    assert_eq!(rows(&db, "users").await, 1);
    assert_eq!(auth.hashes_admitted(), 0);
}
