//! Second factors: an enrolment pending until confirmed, each time step accepted once, recovery
//! codes (`enrolment`); the sign-in challenges and the sessions they open, raced
//! (`challenges`); trusted browsers, what ends them and the challenges with a user's sessions or
//! links, and the sweep (`devices`); values no column can hold (`input`).

mod challenges;
mod devices;
mod enrolment;
mod input;

use std::sync::Arc;

use authingo::token::{Token, TokenDigest, TokenKind};
use authingo::{SecondFactorProof, Session, SignInChallenge, TotpSecret, TrustedDevice, User};
use chrono::{DurationRound as _, TimeDelta, Utc};
use tokio::sync::Barrier;

use super::{Backend, user_with_session};
use crate::support::{Tokens, live_session};

/// The time step whose code confirmed an enrolment of [`enrolled`]: spent from then on.
const CONFIRMED_STEP: i64 = 59_000_000;

/// Calls started together in a race.
const CALLERS: usize = 16;

/// Now, in whole microseconds (as both backends keep times).
fn now() -> chrono::DateTime<Utc> {
    Utc::now()
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap()
}

/// A digest no row holds.
fn unknown_digest() -> TokenDigest {
    Token::generate(TokenKind::OneTime).unwrap().digest()
}

/// A secret of `owner` sealed (for the test's purpose) as `ciphertext` under key `k1`, pending.
fn secret(owner: &User, ciphertext: &[u8]) -> TotpSecret {
    TotpSecret {
        user_id: owner.id.clone(),
        key_id: "k1".to_owned(),
        ciphertext: ciphertext.to_vec(),
        confirmed_at: None,
        last_used_step: None,
    }
}

/// `n` new recovery codes, by digest.
fn recovery_codes(n: usize) -> Vec<TokenDigest> {
    (0..n).map(|_| unknown_digest()).collect()
}

/// A stored user, `email`, with a live session and a confirmed second factor (ciphertext
/// `sealed`, [`CONFIRMED_STEP`] spent) and its ten recovery codes, returned.
async fn enrolled(backend: &Backend, email: &str) -> (User, Session, Tokens, Vec<TokenDigest>) {
    let factors = backend.second_factors();
    let (owner, session, tokens) = user_with_session(backend, email).await;
    assert!(
        factors
            .begin_totp(&secret(&owner, b"sealed"))
            .await
            .unwrap()
    );
    let codes = recovery_codes(10);
    let confirmed = factors
        .confirm_totp(&owner.id, b"sealed", CONFIRMED_STEP, &codes, &session.id)
        .await
        .unwrap();
    assert!(confirmed);
    (owner, session, tokens, codes)
}

/// A challenge of `owner`'s sign-in, stored, valid `valid_for`; its digest.
async fn challenge(backend: &Backend, owner: &User, valid_for: TimeDelta) -> TokenDigest {
    let digest = unknown_digest();
    backend
        .second_factors()
        .create_challenge(&SignInChallenge {
            digest: digest.clone(),
            user_id: owner.id.clone(),
            persistent: true,
            failures: 0,
            expires_at: now() + valid_for,
        })
        .await
        .unwrap();
    digest
}

/// A browser of `owner`, trusted for `valid_for`; its digest.
async fn trusted(backend: &Backend, owner: &User, valid_for: TimeDelta) -> TokenDigest {
    let digest = unknown_digest();
    backend
        .second_factors()
        .trust_device(&TrustedDevice {
            digest: digest.clone(),
            user_id: owner.id.clone(),
            expires_at: now() + valid_for,
        })
        .await
        .unwrap();
    digest
}

/// Answers the challenge `digest` with `proof`, opening a new session of `owner`: what the
/// store answered, and the session's tokens.
async fn complete(
    backend: &Backend,
    digest: &TokenDigest,
    proof: SecondFactorProof<'_>,
    owner: &User,
) -> (Option<u64>, Tokens) {
    let (session, tokens) = live_session(owner);
    let left = backend
        .second_factors()
        .complete_challenge(digest, proof, &session)
        .await
        .unwrap();
    (left, tokens)
}

/// Whether the session of `tokens` is stored and usable.
async fn is_live(backend: &Backend, tokens: &Tokens) -> bool {
    backend
        .store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .is_some()
}

/// The last time step accepted for `owner`'s secret.
async fn last_step(backend: &Backend, owner: &User) -> Option<i64> {
    backend
        .second_factors()
        .totp_secret(&owner.id)
        .await
        .unwrap()
        .and_then(|secret| secret.last_used_step)
}

/// Whether `owner` has a confirmed second factor.
async fn is_confirmed(backend: &Backend, owner: &User) -> bool {
    backend
        .second_factors()
        .totp_secret(&owner.id)
        .await
        .unwrap()
        .is_some_and(|secret| secret.confirmed_at.is_some())
}

async fn codes_left(backend: &Backend, owner: &User) -> u64 {
    backend
        .second_factors()
        .recovery_codes_left(&owner.id)
        .await
        .unwrap()
}

async fn challenge_lives(backend: &Backend, digest: &TokenDigest) -> bool {
    backend
        .second_factors()
        .get_challenge(digest)
        .await
        .unwrap()
        .is_some()
}

async fn is_trusted(backend: &Backend, digest: &TokenDigest, owner: &User) -> bool {
    backend
        .second_factors()
        .is_trusted_device(digest, &owner.id)
        .await
        .unwrap()
}

/// What a racing answer presents: a TOTP code of a step, or a recovery code.
#[derive(Clone)]
enum Answer {
    Step(i64),
    Code(TokenDigest),
}

/// Answers, all started together behind a barrier, each to its challenge with a new session of
/// `owner`: what each got, with its session's tokens.
async fn complete_together(
    backend: &Backend,
    owner: &User,
    answers: Vec<(TokenDigest, Answer)>,
) -> Vec<(Option<u64>, Tokens)> {
    let barrier = Arc::new(Barrier::new(answers.len()));
    let tasks: Vec<_> = answers
        .into_iter()
        .map(|(digest, answer)| {
            let (factors, barrier) = (backend.second_factors(), barrier.clone());
            let (session, tokens) = live_session(owner);
            tokio::spawn(async move {
                let proof = match &answer {
                    Answer::Step(step) => SecondFactorProof::Totp { step: *step },
                    Answer::Code(code) => SecondFactorProof::RecoveryCode(code),
                };
                barrier.wait().await;
                let left = factors
                    .complete_challenge(&digest, proof, &session)
                    .await
                    .unwrap();
                (left, tokens)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

/// What only `MemoryStore` has: injected faults, its `Debug`, `clear`.
#[cfg(feature = "test-util")]
mod memory_only {
    use std::sync::Arc;

    use authingo::memory::{Fault, MemoryStore};
    use authingo::{SecondFactorProof, StoreError, TrustedDevice};
    use chrono::TimeDelta;

    use super::{
        Backend, CONFIRMED_STEP, challenge, codes_left, enrolled, is_trusted, last_step, now,
        recovery_codes, secret, trusted, unknown_digest,
    };
    use crate::support::{live_session, user};

    /// Each call of the capability goes through the fault injection: armed, the next call fails
    /// as the database would, and changes nothing.
    #[tokio::test]
    async fn every_call_can_fail_as_the_database_would_and_then_changed_nothing() {
        let memory = Arc::new(MemoryStore::new());
        let backend = Backend::memory_over(memory.clone());
        let factors = backend.second_factors();
        let (ada, session, _, codes) = enrolled(&backend, "ada@example.com").await;
        let waiting = challenge(&backend, &ada, TimeDelta::minutes(5)).await;
        let device = trusted(&backend, &ada, TimeDelta::days(30)).await;
        let (opening, tokens) = live_session(&ada);
        let later = CONFIRMED_STEP + 1;

        macro_rules! fails {
            ($call:expr) => {{
                memory.fail_call(0, Fault::Unavailable);
                let result = $call.await;
                assert!(
                    matches!(result, Err(StoreError::Unavailable(_))),
                    "{} did not fail",
                    stringify!($call)
                );
                assert!(memory.fault_fired());
                memory.clear_fault();
            }};
        }
        fails!(factors.totp_secret(&ada.id));
        fails!(factors.begin_totp(&secret(&user("new@example.com"), b"x")));
        fails!(factors.confirm_totp(&ada.id, b"sealed", later, &recovery_codes(1), &session.id));
        fails!(factors.reseal_totp(&ada.id, b"sealed", "k2", b"resealed"));
        fails!(factors.accept_totp_step(&ada.id, later));
        fails!(factors.replace_recovery_codes(&ada.id, later, &recovery_codes(1)));
        fails!(factors.recovery_codes_left(&ada.id));
        fails!(factors.remove_second_factor(&ada.id));
        fails!(factors.create_challenge(&authingo::SignInChallenge {
            digest: unknown_digest(),
            user_id: ada.id.clone(),
            persistent: false,
            failures: 0,
            expires_at: now() + TimeDelta::minutes(5),
        }));
        fails!(factors.get_challenge(&waiting));
        fails!(factors.fail_challenge(&waiting, 1));
        fails!(factors.complete_challenge(
            &waiting,
            SecondFactorProof::RecoveryCode(&codes[0]),
            &opening
        ));
        fails!(factors.trust_device(&TrustedDevice {
            digest: unknown_digest(),
            user_id: ada.id.clone(),
            expires_at: now() + TimeDelta::days(1),
        }));
        fails!(factors.is_trusted_device(&device, &ada.id));
        fails!(factors.cleanup_second_factors());

        let stored = factors.totp_secret(&ada.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.key_id.as_str(), &stored.ciphertext[..]),
            ("k1", &b"sealed"[..])
        );
        assert_eq!(last_step(&backend, &ada).await, Some(CONFIRMED_STEP));
        assert_eq!(codes_left(&backend, &ada).await, 10);
        let live = factors.get_challenge(&waiting).await.unwrap().unwrap();
        assert_eq!(live.failures, 0);
        assert!(is_trusted(&backend, &device, &ada).await);
        assert!(
            backend
                .store
                .get_session(&tokens.access.digest())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            factors
                .totp_secret(&user("new@example.com").id)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn debug_counts_the_rows_and_clear_forgets_them() {
        let memory = Arc::new(MemoryStore::new());
        let backend = Backend::memory_over(memory.clone());
        let (ada, _, _, codes) = enrolled(&backend, "ada@example.com").await;
        let waiting = challenge(&backend, &ada, TimeDelta::minutes(5)).await;
        let device = trusted(&backend, &ada, TimeDelta::days(30)).await;

        let shown = format!("{memory:?}");
        for count in [
            "totp_secrets: 1",
            "recovery_codes: 10",
            "two_factor_challenges: 1",
            "trusted_devices: 1",
        ] {
            assert!(shown.contains(count), "{count} not in {shown}");
        }
        for secret in [
            ada.id.as_str(),
            waiting.as_str(),
            device.as_str(),
            codes[0].as_str(),
            "k1",
        ] {
            assert!(!shown.contains(secret), "{shown} shows a row");
        }

        memory.clear();
        let factors = backend.second_factors();
        assert!(factors.totp_secret(&ada.id).await.unwrap().is_none());
        assert_eq!(codes_left(&backend, &ada).await, 0);
        assert!(factors.get_challenge(&waiting).await.unwrap().is_none());
        assert!(!is_trusted(&backend, &device, &ada).await);
        assert!(format!("{memory:?}").contains("trusted_devices: 0"));
    }
}
