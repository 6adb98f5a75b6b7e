//! Go users' passwords: the bcrypt hashes the Go library stored (at Go's default cost) sign in,
//! and are replaced by argon2id during that sign-in; failing sign-ins cost what they did.

use authingo::RequestContext;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use authingo::password::{PasswordError, PasswordHasher, WithBcrypt};
use authingo::{AuthError, EndSessions, User};
use bcrypt::Version;
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl as _, SimpleAsyncConnection as _};

use crate::support::{EngineBuilder, FAST, PASSWORD, TestDb, Watched, engine, rows, user};

/// Go's `bcrypt.DefaultCost`.
const GO_COST: u32 = 10;

/// A user as the Go library stored one: a bcrypt hash of [`PASSWORD`] with `version`'s prefix.
fn go_user(email: &str, version: Version) -> User {
    let mut go = user(email);
    go.password_hash = bcrypt::hash_with_result(PASSWORD, GO_COST)
        .unwrap()
        .format_for_version(version);
    go
}

/// The password hash stored for `email`.
async fn stored_hash(db: &TestDb, email: &str) -> String {
    #[derive(QueryableByName)]
    struct Hash {
        #[diesel(sql_type = Text)]
        password_hash: String,
    }
    diesel::sql_query("SELECT password_hash FROM users WHERE email = $1")
        .bind::<Text, _>(email)
        .get_result::<Hash>(&mut db.conn().await)
        .await
        .unwrap()
        .password_hash
}

#[tokio::test]
async fn a_go_user_signs_in_with_each_bcrypt_prefix_and_then_holds_an_argon2id_hash() {
    let db = TestDb::new().await;
    let auth = engine(&db).await; // the default hasher
    for (n, version) in [Version::TwoA, Version::TwoB, Version::TwoY]
        .into_iter()
        .enumerate()
    {
        let go = go_user(&format!("go{n}@example.com"), version);
        auth.store().create_user(&go).await.unwrap();

        let signed_in = auth
            .sign_in(&go.email, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap();
        let stored = stored_hash(&db, &go.email).await;
        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert_eq!(signed_in.user.password_hash, stored);
        // A hash of the same password: the next sign-in verifies it and rewrites nothing.
        auth.sign_in(&go.email, PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in)
            .unwrap();
        assert_eq!(stored_hash(&db, &go.email).await, stored);
        assert!(matches!(
            auth.sign_in(&go.email, "not the password", &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // Each user's first session outlived the re-hash.
    assert_eq!(rows(&db, "sessions").await, 6);
}

/// [`Watched`] behind an `Arc`, so that the test keeps its counters.
struct Shared(Arc<Watched>);

impl PasswordHasher for Shared {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.0.hash(password)
    }
    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.0.verify(password, hash)
    }
}

/// Counts every verification, bcrypt's and argon2's.
struct Counted<H> {
    inner: H,
    verifies: AtomicUsize,
}

impl<H> Counted<H> {
    fn verifies(&self) -> usize {
        AtomicUsize::load(&self.verifies, Ordering::SeqCst)
    }
}

impl<H: PasswordHasher> PasswordHasher for Counted<H> {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.inner.hash(password)
    }
    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(password, hash)
    }
    fn needs_rehash(&self, hash: &str) -> bool {
        self.inner.needs_rehash(hash)
    }
}

#[tokio::test]
async fn a_wrong_password_against_a_bcrypt_hash_costs_one_bcrypt_verification_and_no_argon2() {
    let db = TestDb::new().await;
    let argon2 = Watched::new(FAST);
    let hasher = Arc::new(Counted {
        inner: WithBcrypt::new(Shared(argon2.clone())),
        verifies: AtomicUsize::new(0),
    });
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .ready()
        .await;
    let go = go_user("go@example.com", Version::TwoA);
    auth.store().create_user(&go).await.unwrap();
    let costs = || (hasher.verifies(), argon2.count(&argon2.work));

    let before = costs();
    let err = auth
        .sign_in(&go.email, "not the password", &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap_err();
    assert!(matches!(err, AuthError::InvalidCredentials), "{err:?}");
    assert_eq!(costs(), (before.0 + 1, before.1), "one bcrypt verification");
    assert_eq!(stored_hash(&db, &go.email).await, go.password_hash);

    // An unknown email still costs one argon2 verification, against the dummy hash.
    let before = costs();
    let err = auth
        .sign_in("nobody@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap_err();
    assert!(matches!(err, AuthError::InvalidCredentials), "{err:?}");
    assert_eq!(costs(), (before.0 + 1, before.1 + 1));

    // The right password: one bcrypt verification, then one argon2 hash to replace it.
    let (before, hashes) = (costs(), argon2.count(&argon2.hashes));
    auth.sign_in(&go.email, PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(costs(), (before.0 + 1, before.1 + 1));
    assert_eq!(argon2.count(&argon2.hashes), hashes + 1);
}

#[tokio::test]
async fn a_re_hash_that_cannot_be_stored_leaves_the_sign_in_and_the_old_hash() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let go = go_user("go@example.com", Version::TwoB);
    auth.store().create_user(&go).await.unwrap();
    let mut conn = db.conn().await;
    conn.batch_execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'users are read-only'; END $$;
         CREATE TRIGGER read_only BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .await
    .unwrap();

    let signed_in = auth
        .sign_in(&go.email, PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert_eq!(signed_in.user.password_hash, go.password_hash);
    assert_eq!(stored_hash(&db, &go.email).await, go.password_hash);

    // The next sign-in upgrades it.
    conn.batch_execute("DROP TRIGGER read_only ON users")
        .await
        .unwrap();
    auth.sign_in(&go.email, PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert!(stored_hash(&db, &go.email).await.starts_with("$argon2id$"));
    assert_eq!(rows(&db, "sessions").await, 2);
}

/// Once armed, holds every hash it makes between two barriers: the test acts while a re-hash
/// is under way. (Unarmed while the engine makes its own hashes at start.)
struct Paused {
    inner: WithBcrypt<authingo::password::Argon2id>,
    armed: AtomicBool,
    reached: Barrier,
    release: Barrier,
}

impl PasswordHasher for Paused {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if AtomicBool::load(&self.armed, Ordering::SeqCst) {
            self.reached.wait();
            self.release.wait();
        }
        self.inner.hash(password)
    }
    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        self.inner.verify(password, hash)
    }
    fn needs_rehash(&self, hash: &str) -> bool {
        self.inner.needs_rehash(hash)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_hash_never_undoes_a_password_change_made_during_the_sign_in() {
    let db = TestDb::new().await;
    let hasher = Arc::new(Paused {
        inner: WithBcrypt::new(authingo::password::Argon2id::new(FAST).unwrap()),
        armed: AtomicBool::new(false),
        reached: Barrier::new(2),
        release: Barrier::new(2),
    });
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .ready()
        .await;
    let go = go_user("go@example.com", Version::TwoB);
    auth.store().create_user(&go).await.unwrap();
    hasher.armed.store(true, Ordering::SeqCst);

    let sign_in = tokio::spawn({
        let (auth, email) = (auth.clone(), go.email.clone());
        async move {
            auth.sign_in(&email, PASSWORD, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in)
        }
    });
    // The old password has matched and its re-hash is under way: the password changes now.
    let wait = |barrier: fn(&Paused) -> &Barrier| {
        let hasher = Arc::clone(&hasher);
        tokio::task::spawn_blocking(move || {
            barrier(&hasher).wait();
        })
    };
    wait(|hasher| &hasher.reached).await.unwrap();
    let changed = bcrypt::hash("a brand new password", 4).unwrap();
    assert!(
        auth.store()
            .clone()
            .session_management()
            .unwrap()
            .set_password_hash(&go.id, &go.password_hash, &changed, EndSessions::None)
            .await
            .unwrap()
    );
    wait(|hasher| &hasher.release).await.unwrap();

    // The sign-in verified the old password: no session once the change committed.
    assert!(matches!(
        sign_in.await.unwrap(),
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(rows(&db, "sessions").await, 0);
    // The change stands: the re-hash of the old password did not overwrite it.
    assert_eq!(stored_hash(&db, &go.email).await, changed);
}
