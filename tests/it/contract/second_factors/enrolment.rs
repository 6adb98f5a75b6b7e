//! Enrolment: pending until the ciphertext whose code was checked is confirmed, which ends what
//! the password alone opened; time steps accepted once, in order; recovery codes replaced over an
//! unused step; a reseal over the expected ciphertext; removal.

use std::sync::Arc;

use authingo::{SecondFactorProof, TotpSecret};
use chrono::{TimeDelta, Utc};
use tokio::sync::Barrier;

use super::{
    Backend, CALLERS, CONFIRMED_STEP, challenge, challenge_lives, codes_left, complete, enrolled,
    is_confirmed, is_live, is_trusted, last_step, recovery_codes, secret, trusted,
};
use crate::contract::{contract, user_with_session};
use crate::support::{live_session, user};

async fn an_enrolment_is_pending_until_confirmed_and_a_new_one_replaces_it(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, session, _) = user_with_session(backend, "ada@example.com").await;
    assert!(factors.totp_secret(&ada.id).await.unwrap().is_none());

    // Whatever the record says of confirmation, it is stored pending.
    let claimed = TotpSecret {
        confirmed_at: Some(Utc::now()),
        last_used_step: Some(7),
        ..secret(&ada, b"first")
    };
    assert!(factors.begin_totp(&claimed).await.unwrap());
    let stored = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.user_id, ada.id);
    assert_eq!(
        (stored.key_id.as_str(), &stored.ciphertext[..]),
        ("k1", &b"first"[..])
    );
    assert_eq!((stored.confirmed_at, stored.last_used_step), (None, None));
    // A pending secret protects nothing: no step is accepted for it, no codes are made.
    assert!(!factors.accept_totp_step(&ada.id, 8).await.unwrap());
    let codes = recovery_codes(2);
    assert!(
        !factors
            .replace_recovery_codes(&ada.id, 8, &codes)
            .await
            .unwrap()
    );
    assert_eq!(codes_left(backend, &ada).await, 0);

    // Asking again replaces it, and the first one's code confirms nothing.
    let again = TotpSecret {
        key_id: "k2".to_owned(),
        ..secret(&ada, b"second")
    };
    assert!(factors.begin_totp(&again).await.unwrap());
    let stored = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.key_id.as_str(), &stored.ciphertext[..]),
        ("k2", &b"second"[..])
    );
    assert!(
        !factors
            .confirm_totp(&ada.id, b"first", 8, &codes, &session.id)
            .await
            .unwrap()
    );
    assert!(!is_confirmed(backend, &ada).await);

    // No enrolment for a user that does not exist.
    let nobody = user("nobody@example.com");
    assert!(!factors.begin_totp(&secret(&nobody, b"x")).await.unwrap());
    assert!(factors.totp_secret(&nobody.id).await.unwrap().is_none());
}

async fn a_confirmed_secret_stays_whatever_enrolment_is_asked_for(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, session, _, _) = enrolled(backend, "ada@example.com").await;
    let before = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert!(before.confirmed_at.is_some());

    assert!(!factors.begin_totp(&secret(&ada, b"other")).await.unwrap());
    // Nor is it confirmed again (with a new step and new codes).
    let codes = recovery_codes(1);
    assert!(
        !factors
            .confirm_totp(&ada.id, b"sealed", CONFIRMED_STEP + 5, &codes, &session.id)
            .await
            .unwrap()
    );
    let after = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert_eq!(&after.ciphertext[..], b"sealed");
    assert_eq!(after.confirmed_at, before.confirmed_at);
    assert_eq!(after.last_used_step, Some(CONFIRMED_STEP));
    assert_eq!(codes_left(backend, &ada).await, 10);
}

async fn confirming_needs_the_checked_ciphertext_and_ends_what_the_password_alone_opened(
    backend: &Backend,
) {
    let factors = backend.second_factors();
    let (ada, kept, kept_tokens) = user_with_session(backend, "ada@example.com").await;
    let (other, other_tokens) = live_session(&ada);
    backend.store.create_session(&other).await.unwrap();
    let device = trusted(backend, &ada, TimeDelta::days(30)).await;
    let waiting = challenge(backend, &ada, TimeDelta::minutes(5)).await;
    let (bob, _, bob_tokens) = user_with_session(backend, "bob@example.com").await;
    let bob_device = trusted(backend, &bob, TimeDelta::days(30)).await;
    let bob_waiting = challenge(backend, &bob, TimeDelta::minutes(5)).await;
    assert!(factors.begin_totp(&secret(&ada, b"sealed")).await.unwrap());
    let codes = recovery_codes(10);

    // Not the ciphertext whose code was checked (another enrolment replaced it): nothing changes.
    assert!(
        !factors
            .confirm_totp(&ada.id, b"replaced", 42, &codes, &kept.id)
            .await
            .unwrap()
    );
    assert!(!is_confirmed(backend, &ada).await);
    assert_eq!(codes_left(backend, &ada).await, 0);
    assert!(is_live(backend, &other_tokens).await);
    assert!(is_trusted(backend, &device, &ada).await);
    assert!(challenge_lives(backend, &waiting).await);

    assert!(
        factors
            .confirm_totp(&ada.id, b"sealed", 42, &codes, &kept.id)
            .await
            .unwrap()
    );
    let confirmed = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert!(confirmed.confirmed_at.is_some());
    assert_eq!(confirmed.last_used_step, Some(42));
    assert!(!factors.accept_totp_step(&ada.id, 42).await.unwrap());
    assert_eq!(codes_left(backend, &ada).await, 10);
    // The session that confirmed stays; what the password alone opened or allowed ends.
    assert!(is_live(backend, &kept_tokens).await);
    assert!(!is_live(backend, &other_tokens).await);
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(!challenge_lives(backend, &waiting).await);
    // Bob's are his own.
    assert!(is_live(backend, &bob_tokens).await);
    assert!(is_trusted(backend, &bob_device, &bob).await);
    assert!(challenge_lives(backend, &bob_waiting).await);

    assert!(
        !factors
            .confirm_totp("usr_nobody", b"sealed", 42, &codes, &kept.id)
            .await
            .unwrap()
    );
}

async fn a_step_is_accepted_once_and_only_after_the_last_accepted_one(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let (bob, _, _, _) = enrolled(backend, "bob@example.com").await;

    // The step that confirmed, and any before it, are spent.
    assert!(
        !factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP)
            .await
            .unwrap()
    );
    assert!(
        !factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP - 1)
            .await
            .unwrap()
    );
    assert!(
        factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP + 1)
            .await
            .unwrap()
    );
    assert!(
        !factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP + 1)
            .await
            .unwrap()
    );
    // A later step is accepted; then one between is too old.
    assert!(
        factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP + 3)
            .await
            .unwrap()
    );
    assert!(
        !factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP + 2)
            .await
            .unwrap()
    );
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP + 3));
    // Each user's steps are their own.
    assert_eq!(last_step(backend, &bob).await, Some(CONFIRMED_STEP));
    assert!(
        factors
            .accept_totp_step(&bob.id, CONFIRMED_STEP + 1)
            .await
            .unwrap()
    );
    assert!(
        !factors
            .accept_totp_step("usr_nobody", CONFIRMED_STEP + 9)
            .await
            .unwrap()
    );
}

async fn of_concurrent_acceptances_of_one_step_exactly_one_succeeds(backend: &Backend) {
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (factors, barrier, id) =
                (backend.second_factors(), barrier.clone(), ada.id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                factors
                    .accept_totp_step(&id, CONFIRMED_STEP + 1)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap());
    }
    assert_eq!(accepted, 1);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP + 1));
}

async fn new_recovery_codes_need_an_unused_step_and_replace_the_old_ones(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, _, _, old) = enrolled(backend, "ada@example.com").await;
    let new = recovery_codes(3);

    // A spent step: nothing changes.
    assert!(
        !factors
            .replace_recovery_codes(&ada.id, CONFIRMED_STEP, &new)
            .await
            .unwrap()
    );
    assert_eq!(codes_left(backend, &ada).await, 10);
    assert!(
        factors
            .replace_recovery_codes(&ada.id, CONFIRMED_STEP + 1, &new)
            .await
            .unwrap()
    );
    assert_eq!(codes_left(backend, &ada).await, 3);
    // The step is spent with them.
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP + 1));
    assert!(
        !factors
            .accept_totp_step(&ada.id, CONFIRMED_STEP + 1)
            .await
            .unwrap()
    );
    // The old codes open nothing; the new ones do.
    let waiting = challenge(backend, &ada, TimeDelta::minutes(5)).await;
    let spent = SecondFactorProof::RecoveryCode(&old[0]);
    assert_eq!(complete(backend, &waiting, spent, &ada).await.0, None);
    let fresh = SecondFactorProof::RecoveryCode(&new[0]);
    assert_eq!(complete(backend, &waiting, fresh, &ada).await.0, Some(2));

    // Without a confirmed secret there is nothing to replace.
    let (carol, _, _) = user_with_session(backend, "carol@example.com").await;
    assert!(factors.begin_totp(&secret(&carol, b"carol")).await.unwrap());
    assert!(
        !factors
            .replace_recovery_codes(&carol.id, 1, &recovery_codes(3))
            .await
            .unwrap()
    );
    assert_eq!(codes_left(backend, &carol).await, 0);
    assert!(
        !factors
            .replace_recovery_codes("usr_nobody", 1, &recovery_codes(3))
            .await
            .unwrap()
    );
}

async fn a_reseal_replaces_the_ciphertext_only_while_it_is_the_expected_one(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let before = factors.totp_secret(&ada.id).await.unwrap().unwrap();

    assert!(
        !factors
            .reseal_totp(&ada.id, b"stale", "k2", b"resealed")
            .await
            .unwrap()
    );
    let unchanged = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (unchanged.key_id.as_str(), &unchanged.ciphertext[..]),
        ("k1", &b"sealed"[..])
    );

    assert!(
        factors
            .reseal_totp(&ada.id, b"sealed", "k2", b"resealed")
            .await
            .unwrap()
    );
    let after = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (after.key_id.as_str(), &after.ciphertext[..]),
        ("k2", &b"resealed"[..])
    );
    assert_eq!(after.confirmed_at, before.confirmed_at);
    assert_eq!(after.last_used_step, before.last_used_step);
    // A second reseal from the same ciphertext lost the race.
    assert!(
        !factors
            .reseal_totp(&ada.id, b"sealed", "k3", b"again")
            .await
            .unwrap()
    );
    let kept = factors.totp_secret(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (kept.key_id.as_str(), &kept.ciphertext[..]),
        ("k2", &b"resealed"[..])
    );
    assert!(
        !factors
            .reseal_totp("usr_nobody", b"sealed", "k2", b"x")
            .await
            .unwrap()
    );
}

async fn removing_the_second_factor_takes_its_secret_codes_devices_and_challenges(
    backend: &Backend,
) {
    let factors = backend.second_factors();
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let (bob, _, _, _) = enrolled(backend, "bob@example.com").await;
    let device = trusted(backend, &ada, TimeDelta::days(30)).await;
    let waiting = challenge(backend, &ada, TimeDelta::minutes(5)).await;
    let bob_device = trusted(backend, &bob, TimeDelta::days(30)).await;
    let bob_waiting = challenge(backend, &bob, TimeDelta::minutes(5)).await;

    assert!(factors.remove_second_factor(&ada.id).await.unwrap());
    assert!(factors.totp_secret(&ada.id).await.unwrap().is_none());
    assert_eq!(codes_left(backend, &ada).await, 0);
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(!challenge_lives(backend, &waiting).await);
    // Bob's stay.
    assert!(is_confirmed(backend, &bob).await);
    assert_eq!(codes_left(backend, &bob).await, 10);
    assert!(is_trusted(backend, &bob_device, &bob).await);
    assert!(challenge_lives(backend, &bob_waiting).await);

    // Nothing left to remove; then a pending enrolment is a secret too.
    assert!(!factors.remove_second_factor(&ada.id).await.unwrap());
    assert!(factors.begin_totp(&secret(&ada, b"again")).await.unwrap());
    assert!(factors.remove_second_factor(&ada.id).await.unwrap());
    assert!(factors.totp_secret(&ada.id).await.unwrap().is_none());
    assert!(!factors.remove_second_factor("usr_nobody").await.unwrap());
}

contract! {
    an_enrolment_is_pending_until_confirmed_and_a_new_one_replaces_it,
    a_confirmed_secret_stays_whatever_enrolment_is_asked_for,
    confirming_needs_the_checked_ciphertext_and_ends_what_the_password_alone_opened,
    a_step_is_accepted_once_and_only_after_the_last_accepted_one,
    of_concurrent_acceptances_of_one_step_exactly_one_succeeds(
        flavor = "multi_thread",
        worker_threads = 4
    ),
    new_recovery_codes_need_an_unused_step_and_replace_the_old_ones,
    a_reseal_replaces_the_ciphertext_only_while_it_is_the_expected_one,
    removing_the_second_factor_takes_its_secret_codes_devices_and_challenges,
}
