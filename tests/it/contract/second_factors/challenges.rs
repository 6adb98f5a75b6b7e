//! Sign-in challenges: found until they expire, ended by the last wrong code they may take, and
//! completed once, by a proof spent once, into a session of their own user, all or nothing: also
//! when the answers race.

use authingo::{SecondFactorProof, SignInChallenge};
use chrono::TimeDelta;

use super::{
    Answer, Backend, CALLERS, CONFIRMED_STEP, challenge, challenge_lives, codes_left, complete,
    complete_together, enrolled, is_live, last_step, now, secret, unknown_digest,
};
use crate::contract::{contract, user_with_session};
use crate::support::{live_session, user};

const FIVE_MINUTES: TimeDelta = TimeDelta::minutes(5);

fn step(step: i64) -> SecondFactorProof<'static> {
    SecondFactorProof::Totp { step }
}

async fn a_challenge_is_found_as_stored_until_it_expires(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let remembered = SignInChallenge {
        digest: unknown_digest(),
        user_id: ada.id.clone(),
        persistent: true,
        failures: 0,
        expires_at: now() + FIVE_MINUTES,
    };
    let forgotten = SignInChallenge {
        digest: unknown_digest(),
        persistent: false,
        expires_at: now() + TimeDelta::minutes(10),
        ..remembered.clone()
    };
    factors.create_challenge(&remembered).await.unwrap();
    factors.create_challenge(&forgotten).await.unwrap();
    assert_eq!(
        factors.get_challenge(&remembered.digest).await.unwrap(),
        Some(remembered.clone())
    );
    assert_eq!(
        factors.get_challenge(&forgotten.digest).await.unwrap(),
        Some(forgotten.clone())
    );
    assert_eq!(
        factors.get_challenge(&unknown_digest()).await.unwrap(),
        None
    );

    // A digest taken, or a user that does not exist: refused, and nothing is stored.
    let taken = SignInChallenge {
        persistent: false,
        ..remembered.clone()
    };
    assert!(factors.create_challenge(&taken).await.is_err());
    assert_eq!(
        factors.get_challenge(&remembered.digest).await.unwrap(),
        Some(remembered.clone())
    );
    let orphan = SignInChallenge {
        digest: unknown_digest(),
        user_id: user("nobody@example.com").id,
        ..remembered.clone()
    };
    assert!(factors.create_challenge(&orphan).await.is_err());
    assert!(!challenge_lives(backend, &orphan.digest).await);

    backend
        .pass_time(FIVE_MINUTES + TimeDelta::seconds(1))
        .await;
    assert!(!challenge_lives(backend, &remembered.digest).await);
    assert!(challenge_lives(backend, &forgotten.digest).await);
}

async fn wrong_codes_are_counted_and_the_challenge_ends_at_the_limit(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;
    let other = challenge(backend, &ada, FIVE_MINUTES).await;

    assert!(factors.fail_challenge(&waiting, 3).await.unwrap());
    assert!(factors.fail_challenge(&waiting, 3).await.unwrap());
    let counted = factors.get_challenge(&waiting).await.unwrap().unwrap();
    assert_eq!(counted.failures, 2);
    // The third reaches the limit: the challenge ends.
    assert!(!factors.fail_challenge(&waiting, 3).await.unwrap());
    assert!(!challenge_lives(backend, &waiting).await);
    // Gone: no count revives it, no code completes it (nor is the code spent).
    assert!(!factors.fail_challenge(&waiting, 3).await.unwrap());
    let (opened, tokens) = complete(backend, &waiting, step(CONFIRMED_STEP + 1), &ada).await;
    assert_eq!(opened, None);
    assert!(!is_live(backend, &tokens).await);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP));
    // Each challenge counts its own.
    let untouched = factors.get_challenge(&other).await.unwrap().unwrap();
    assert_eq!(untouched.failures, 0);

    // An unknown challenge, or an expired one, does not live.
    assert!(!factors.fail_challenge(&unknown_digest(), 3).await.unwrap());
    backend
        .pass_time(FIVE_MINUTES + TimeDelta::seconds(1))
        .await;
    assert!(!factors.fail_challenge(&other, 3).await.unwrap());
}

async fn a_code_completes_the_challenge_once_and_its_step_is_spent(backend: &Backend) {
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;

    // The step that confirmed is spent: nothing is written.
    let (opened, tokens) = complete(backend, &waiting, step(CONFIRMED_STEP), &ada).await;
    assert_eq!(opened, None);
    assert!(!is_live(backend, &tokens).await);
    assert!(challenge_lives(backend, &waiting).await);

    let (opened, tokens) = complete(backend, &waiting, step(CONFIRMED_STEP + 1), &ada).await;
    assert_eq!(opened, Some(10));
    let found = backend
        .store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.id, ada.id);
    assert!(!challenge_lives(backend, &waiting).await);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP + 1));

    // The challenge is used: a later code does not complete it again.
    let (again, tokens) = complete(backend, &waiting, step(CONFIRMED_STEP + 2), &ada).await;
    assert_eq!(again, None);
    assert!(!is_live(backend, &tokens).await);
    // And the step is spent: another challenge cannot take it, but a later one.
    let next = challenge(backend, &ada, FIVE_MINUTES).await;
    let (replayed, _) = complete(backend, &next, step(CONFIRMED_STEP + 1), &ada).await;
    assert_eq!(replayed, None);
    let (later, _) = complete(backend, &next, step(CONFIRMED_STEP + 2), &ada).await;
    assert_eq!(later, Some(10));
}

async fn a_recovery_code_completes_one_challenge_of_its_owner(backend: &Backend) {
    let (ada, _, _, codes) = enrolled(backend, "ada@example.com").await;
    let (bob, _, _, bob_codes) = enrolled(backend, "bob@example.com").await;
    let first = challenge(backend, &ada, FIVE_MINUTES).await;

    // Bob's code is not Ada's, and a code nobody has is nobody's.
    let theirs = SecondFactorProof::RecoveryCode(&bob_codes[0]);
    assert_eq!(complete(backend, &first, theirs, &ada).await.0, None);
    let unknown = unknown_digest();
    let nobodys = SecondFactorProof::RecoveryCode(&unknown);
    assert_eq!(complete(backend, &first, nobodys, &ada).await.0, None);
    assert!(challenge_lives(backend, &first).await);
    assert_eq!(codes_left(backend, &bob).await, 10);

    let (opened, tokens) = complete(
        backend,
        &first,
        SecondFactorProof::RecoveryCode(&codes[0]),
        &ada,
    )
    .await;
    assert_eq!(opened, Some(9));
    assert!(is_live(backend, &tokens).await);
    assert_eq!(codes_left(backend, &ada).await, 9);
    // Spent: it completes no other challenge, which waits on for another code.
    let second = challenge(backend, &ada, FIVE_MINUTES).await;
    let (spent, tokens) = complete(
        backend,
        &second,
        SecondFactorProof::RecoveryCode(&codes[0]),
        &ada,
    )
    .await;
    assert_eq!(spent, None);
    assert!(!is_live(backend, &tokens).await);
    assert!(challenge_lives(backend, &second).await);
    let (next, _) = complete(
        backend,
        &second,
        SecondFactorProof::RecoveryCode(&codes[1]),
        &ada,
    )
    .await;
    assert_eq!(next, Some(8));
}

async fn a_challenge_opens_no_session_for_another_user_nor_once_expired(backend: &Backend) {
    let (ada, _, _, codes) = enrolled(backend, "ada@example.com").await;
    let (bob, _, _, _) = enrolled(backend, "bob@example.com").await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;

    // A session of Bob's on Ada's challenge: nothing written, nothing spent.
    let (opened, tokens) = complete(backend, &waiting, step(CONFIRMED_STEP + 1), &bob).await;
    assert_eq!(opened, None);
    assert!(!is_live(backend, &tokens).await);
    assert!(challenge_lives(backend, &waiting).await);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP));
    assert_eq!(last_step(backend, &bob).await, Some(CONFIRMED_STEP));

    // Expired: neither a code nor a recovery code completes it, and neither is spent.
    backend
        .pass_time(FIVE_MINUTES + TimeDelta::seconds(1))
        .await;
    let (opened, tokens) = complete(backend, &waiting, step(CONFIRMED_STEP + 1), &ada).await;
    assert_eq!(opened, None);
    assert!(!is_live(backend, &tokens).await);
    let code = SecondFactorProof::RecoveryCode(&codes[0]);
    assert_eq!(complete(backend, &waiting, code, &ada).await.0, None);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP));
    assert_eq!(codes_left(backend, &ada).await, 10);

    // A pending secret takes no code.
    let factors = backend.second_factors();
    let (carol, _, _) = user_with_session(backend, "carol@example.com").await;
    assert!(factors.begin_totp(&secret(&carol, b"carol")).await.unwrap());
    let pending = challenge(backend, &carol, FIVE_MINUTES).await;
    let (opened, tokens) = complete(backend, &pending, step(1), &carol).await;
    assert_eq!(opened, None);
    assert!(!is_live(backend, &tokens).await);
    assert!(challenge_lives(backend, &pending).await);
}

async fn a_completion_that_cannot_store_its_session_writes_nothing(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, existing, _, codes) = enrolled(backend, "ada@example.com").await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;
    // A session whose id is taken cannot be inserted.
    let (mut clash, tokens) = live_session(&ada);
    clash.id = existing.id.clone();

    for proof in [
        step(CONFIRMED_STEP + 1),
        SecondFactorProof::RecoveryCode(&codes[0]),
    ] {
        assert!(
            factors
                .complete_challenge(&waiting, proof, &clash)
                .await
                .is_err()
        );
    }
    assert!(!is_live(backend, &tokens).await);
    assert!(challenge_lives(backend, &waiting).await);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP));
    assert_eq!(codes_left(backend, &ada).await, 10);

    let code = SecondFactorProof::RecoveryCode(&codes[0]);
    assert_eq!(complete(backend, &waiting, code, &ada).await.0, Some(9));
}

async fn of_concurrent_answers_to_one_challenge_exactly_one_opens_a_session(backend: &Backend) {
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;
    // Each with a step of its own: only the challenge is shared.
    let answers = (1..=CALLERS as i64)
        .map(|n| (waiting.clone(), Answer::Step(CONFIRMED_STEP + n)))
        .collect();
    let outcomes = complete_together(backend, &ada, answers).await;

    let opened: Vec<_> = outcomes.iter().filter(|(left, _)| left.is_some()).collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].0, Some(10));
    let mut live = 0;
    for (_, tokens) in &outcomes {
        live += usize::from(is_live(backend, tokens).await);
    }
    assert_eq!(live, 1);
    assert!(!challenge_lives(backend, &waiting).await);
}

async fn of_concurrent_answers_with_one_step_exactly_one_opens_a_session(backend: &Backend) {
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let mut answers = Vec::new();
    for _ in 0..CALLERS {
        let digest = challenge(backend, &ada, FIVE_MINUTES).await;
        answers.push((digest, Answer::Step(CONFIRMED_STEP + 1)));
    }
    let digests: Vec<_> = answers.iter().map(|(digest, _)| digest.clone()).collect();
    let outcomes = complete_together(backend, &ada, answers).await;

    assert_eq!(
        outcomes.iter().filter(|(left, _)| left.is_some()).count(),
        1
    );
    let mut live = 0;
    for (_, tokens) in &outcomes {
        live += usize::from(is_live(backend, tokens).await);
    }
    assert_eq!(live, 1);
    // The losers' challenges wait on for another code.
    let mut waiting = 0;
    for digest in &digests {
        waiting += usize::from(challenge_lives(backend, digest).await);
    }
    assert_eq!(waiting, CALLERS - 1);
    assert_eq!(last_step(backend, &ada).await, Some(CONFIRMED_STEP + 1));
}

async fn of_concurrent_answers_with_one_recovery_code_exactly_one_opens_a_session(
    backend: &Backend,
) {
    let (ada, _, _, codes) = enrolled(backend, "ada@example.com").await;
    let mut answers = Vec::new();
    for _ in 0..CALLERS {
        let digest = challenge(backend, &ada, FIVE_MINUTES).await;
        answers.push((digest, Answer::Code(codes[0].clone())));
    }
    let digests: Vec<_> = answers.iter().map(|(digest, _)| digest.clone()).collect();
    let outcomes = complete_together(backend, &ada, answers).await;

    let opened: Vec<_> = outcomes.iter().filter(|(left, _)| left.is_some()).collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].0, Some(9));
    let mut live = 0;
    for (_, tokens) in &outcomes {
        live += usize::from(is_live(backend, tokens).await);
    }
    assert_eq!(live, 1);
    assert_eq!(codes_left(backend, &ada).await, 9);
    let mut waiting = 0;
    for digest in &digests {
        waiting += usize::from(challenge_lives(backend, digest).await);
    }
    assert_eq!(waiting, CALLERS - 1);
}

contract! {
    a_challenge_is_found_as_stored_until_it_expires,
    wrong_codes_are_counted_and_the_challenge_ends_at_the_limit,
    a_code_completes_the_challenge_once_and_its_step_is_spent,
    a_recovery_code_completes_one_challenge_of_its_owner,
    a_challenge_opens_no_session_for_another_user_nor_once_expired,
    a_completion_that_cannot_store_its_session_writes_nothing,
    of_concurrent_answers_to_one_challenge_exactly_one_opens_a_session(
        flavor = "multi_thread",
        worker_threads = 4
    ),
    of_concurrent_answers_with_one_step_exactly_one_opens_a_session(
        flavor = "multi_thread",
        worker_threads = 4
    ),
    of_concurrent_answers_with_one_recovery_code_exactly_one_opens_a_session(
        flavor = "multi_thread",
        worker_threads = 4
    ),
}
