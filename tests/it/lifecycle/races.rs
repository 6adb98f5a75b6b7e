//! No race undoes a reset: a sign-in or a change of password that verified the old password is
//! held at a Barrier while the reset commits, then let go.

use authingo::{RequestContext, SignUp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use authingo::password::{Argon2id, PasswordError, PasswordHasher};
use authingo::{Auth, AuthError, SignedIn, TokenPurpose};

use super::{issue, tokens_of};
use crate::support::{EngineBuilder, FAST, PASSWORD, TestDb, current, rows};

/// Once armed, holds the next verification, after it has run, between two barriers: the test
/// acts while the operation that verified is on its way to its write.
struct HeldVerify {
    inner: Argon2id,
    armed: AtomicBool,
    reached: Barrier,
    release: Barrier,
}

impl PasswordHasher for HeldVerify {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.inner.hash(password)
    }
    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let result = self.inner.verify(password, hash);
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.wait();
            self.release.wait();
        }
        result
    }
}

/// An engine whose verifications can be held, with two hashing threads: the reset hashes its
/// new password while the held verification occupies the other.
async fn held_engine(db: &TestDb) -> (Auth, Arc<HeldVerify>) {
    let hasher = Arc::new(HeldVerify {
        inner: Argon2id::new(FAST).unwrap(),
        armed: AtomicBool::new(false),
        reached: Barrier::new(2),
        release: Barrier::new(2),
    });
    let auth = EngineBuilder::over(db)
        .await
        .hasher(hasher.clone())
        .with(|options| options.max_concurrent_hashes(2))
        .ready()
        .await;
    (auth, hasher)
}

/// Signs Ada up and issues her a reset link, as the owner's mailbox would hold it.
async fn ada_with_a_reset_link(auth: &Auth) -> (SignedIn, String) {
    let ada = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let reset = issue(
        auth,
        &ada.user,
        TokenPurpose::ResetPassword,
        Some("ada@example.com"),
    )
    .await;
    (ada, reset)
}

/// Runs `act` (which must succeed) while the held verification waits between its barriers.
async fn while_held<T, E: std::fmt::Debug>(
    hasher: &Arc<HeldVerify>,
    act: impl std::future::Future<Output = Result<T, E>>,
) {
    meet(hasher, |h| &h.reached).await;
    act.await.unwrap();
    meet(hasher, |h| &h.release).await;
}

/// Waits at `barrier` of `hasher` off the runtime's workers.
async fn meet(hasher: &Arc<HeldVerify>, barrier: fn(&HeldVerify) -> &Barrier) {
    let hasher = Arc::clone(hasher);
    tokio::task::spawn_blocking(move || {
        barrier(&hasher).wait();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_that_verified_the_old_password_opens_no_session_after_a_reset() {
    let db = TestDb::new().await;
    let (auth, hasher) = held_engine(&db).await;
    let (_, reset) = ada_with_a_reset_link(&auth).await;

    hasher.armed.store(true, Ordering::SeqCst);
    let sign_in = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in)
        }
    });
    // The old password has matched; the owner resets it before the sign-in writes its session.
    while_held(
        &hasher,
        auth.reset_password(
            &reset,
            "the owner's new password",
            &RequestContext::default(),
        ),
    )
    .await;

    assert!(
        matches!(sign_in.await.unwrap(), Err(AuthError::InvalidCredentials)),
        "a sign-in with the old password must fail once a reset committed"
    );
    assert_eq!(rows(&db, "sessions").await, 0);
    assert!(matches!(
        auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    auth.sign_in(
        "ada@example.com",
        "the owner's new password",
        &RequestContext::default(),
    )
    .await
    .and_then(authingo::SignIn::signed_in)
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_that_verified_the_old_password_does_not_overwrite_a_reset() {
    let db = TestDb::new().await;
    let (auth, hasher) = held_engine(&db).await;
    let (thief, reset) = ada_with_a_reset_link(&auth).await;

    hasher.armed.store(true, Ordering::SeqCst);
    let change = tokio::spawn({
        let (auth, current) = (auth.clone(), current(&thief));
        async move {
            auth.change_password(&current, PASSWORD, "the thief's password", false)
                .await
        }
    });
    while_held(
        &hasher,
        auth.reset_password(
            &reset,
            "the owner's new password",
            &RequestContext::default(),
        ),
    )
    .await;

    assert!(
        matches!(change.await.unwrap(), Err(AuthError::InvalidSession)),
        "a change that verified the old password must not write after the reset"
    );
    assert_eq!(rows(&db, "sessions").await, 0);
    for dead in [PASSWORD, "the thief's password"] {
        assert!(matches!(
            auth.sign_in("ada@example.com", dead, &RequestContext::default())
                .await
                .and_then(authingo::SignIn::signed_in),
            Err(AuthError::InvalidCredentials)
        ));
    }
    auth.sign_in(
        "ada@example.com",
        "the owner's new password",
        &RequestContext::default(),
    )
    .await
    .and_then(authingo::SignIn::signed_in)
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_racing_a_sign_out_everywhere_and_a_change_of_email_deadlocks_with_neither() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::on(
        db.store_with(authingo::postgres::PoolConfig::default().max_size(8))
            .await,
    )
    .with(|options| options.max_concurrent_hashes(2))
    .build();
    for i in 0..40 {
        let email = format!("user{i}@example.com");
        let signed_in = auth
            .sign_up(&email, PASSWORD, "Ada", &RequestContext::default())
            .await
            .and_then(SignUp::signed_in)
            .unwrap();
        let reset = issue(
            &auth,
            &signed_in.user,
            TokenPurpose::ResetPassword,
            Some(&email),
        )
        .await;
        let change = issue(
            &auth,
            &signed_in.user,
            TokenPurpose::ChangeEmail,
            Some(&format!("moved{i}@example.com")),
        )
        .await;
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        let a = tokio::spawn({
            let (auth, barrier) = (auth.clone(), barrier.clone());
            async move {
                barrier.wait().await;
                auth.reset_password(
                    &reset,
                    "the owner's new password",
                    &RequestContext::default(),
                )
                .await
            }
        });
        let b = tokio::spawn({
            let (auth, barrier, id) = (auth.clone(), barrier.clone(), signed_in.user.id.clone());
            async move {
                barrier.wait().await;
                auth.revoke_user_sessions(&id).await.map(drop)
            }
        });
        let c = tokio::spawn({
            let (auth, barrier) = (auth.clone(), barrier.clone());
            async move {
                barrier.wait().await;
                auth.confirm_email_change(&change, &RequestContext::default())
                    .await
                    .map(drop)
            }
        });
        for (what, outcome) in [("reset", a), ("sign out everywhere", b), ("change", c)] {
            match outcome.await.unwrap() {
                Ok(()) | Err(AuthError::InvalidToken) => {}
                Err(err) => panic!("{what} failed in round {i}: {err:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_email_that_verified_the_password_issues_no_link_after_a_reset_or_a_sign_out_everywhere()
 {
    for event in ["reset", "sign out everywhere"] {
        let db = TestDb::new().await;
        let (auth, hasher) = held_engine(&db).await;
        let (thief, reset) = ada_with_a_reset_link(&auth).await;

        hasher.armed.store(true, Ordering::SeqCst);
        let change = tokio::spawn({
            let (auth, current) = (auth.clone(), current(&thief));
            async move {
                auth.request_email_change(
                    &current,
                    PASSWORD,
                    "thief@evil.example",
                    &RequestContext::default(),
                )
                .await
            }
        });
        match event {
            "reset" => {
                while_held(
                    &hasher,
                    auth.reset_password(
                        &reset,
                        "the owner's new password",
                        &RequestContext::default(),
                    ),
                )
                .await;
            }
            _ => {
                while_held(&hasher, auth.revoke_user_sessions(&thief.user.id)).await;
            }
        }

        assert!(
            matches!(change.await.unwrap(), Err(AuthError::InvalidSession)),
            "after: {event}"
        );
        assert_eq!(tokens_of(&db, &thief.user).await, 0, "after: {event}");
    }
}
