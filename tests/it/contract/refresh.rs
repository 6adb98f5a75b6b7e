//! Refresh: the rotation and its one winner, the replay within the grace window, reuse
//! detection by family however many rotations ago, the zero window, the absolute lifetime, and
//! the secrets' sweep.

use std::sync::Arc;

use authingo::token::{Token, TokenKind};
use authingo::{RefreshOutcome, SessionWithUser};
use chrono::{Duration, TimeDelta, Utc};
use tokio::sync::Barrier;

use super::{Backend, GRACE, contract, rotation, user_with_session};
use crate::support::session;

/// Rotates the session of `presented` and returns the new pair's access and refresh tokens.
async fn rotate(backend: &Backend, presented: &Token, grace: TimeDelta) -> (Token, Token) {
    let (renewal, access, refresh) = rotation(presented, grace);
    backend
        .store
        .refresh_session(&presented.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .expect("the current token rotates");
    (access, refresh)
}

async fn refresh(backend: &Backend, presented: &Token, grace: TimeDelta) -> RefreshOutcome {
    let (renewal, _, _) = rotation(presented, grace);
    backend
        .store
        .refresh_session(&presented.digest(), &renewal)
        .await
        .unwrap()
}

async fn is_live(backend: &Backend, access: &Token) -> bool {
    backend
        .store
        .get_session(&access.digest())
        .await
        .unwrap()
        .is_some()
}

async fn a_rotation_replaces_both_tokens_and_both_expiries(backend: &Backend) {
    let store = &backend.store;
    let (ada, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let (renewal, new_access, new_refresh) = rotation(&tokens.refresh, GRACE);
    let SessionWithUser {
        session: rotated,
        user,
    } = store
        .refresh_session(&tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    assert_eq!(rotated.id, session.id);
    assert_eq!(user.id, ada.id);
    assert_eq!(rotated.token, new_access.digest());
    assert_eq!(rotated.refresh_token, new_refresh.digest());
    assert_eq!(rotated.expires_at, renewal.expires_at);
    assert_eq!(rotated.refresh_expires_at, renewal.refresh_expires_at);
    assert!(rotated.rotated_at.is_some());
    assert_eq!(rotated.absolute_expires_at, None);

    assert!(!is_live(backend, &tokens.access).await);
    let found = store
        .get_session(&new_access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session, rotated);
    rotate(backend, &new_refresh, GRACE).await;
}

async fn a_replay_within_the_window_gets_the_rotations_secret_and_writes_nothing(
    backend: &Backend,
) {
    let (_, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let (renewal, new_access, new_refresh) = rotation(&tokens.refresh, GRACE);
    backend
        .store
        .refresh_session(&tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    // Replayed twice (a racing tab, a retry): both get the secret, the session keeps its pair.
    for _ in 0..2 {
        match refresh(backend, &tokens.refresh, GRACE).await {
            RefreshOutcome::Replayed { found, secret } => {
                assert_eq!(found.session.id, session.id);
                assert_eq!(found.session.token, new_access.digest());
                assert_eq!(secret, renewal.secret);
                // What the engine re-derives from it is the pair the rotation issued.
                assert_eq!(
                    Token::derive(TokenKind::Refresh, &secret, &tokens.refresh),
                    new_refresh
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(is_live(backend, &new_access).await);
    rotate(backend, &new_refresh, GRACE).await;
}

async fn the_replaced_token_after_the_window_revokes_the_session(backend: &Backend) {
    let (ada, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let (new_access, new_refresh) = rotate(backend, &tokens.refresh, GRACE).await;
    backend.pass_time(TimeDelta::seconds(11)).await;
    assert_eq!(
        refresh(backend, &tokens.refresh, GRACE).await,
        RefreshOutcome::Reused {
            session_id: session.id.clone(),
            user_id: ada.id.clone(),
        }
    );
    // Both tokens of the current pair stopped at once.
    assert!(!is_live(backend, &new_access).await);
    assert_eq!(
        refresh(backend, &new_refresh, GRACE).await,
        RefreshOutcome::Invalid
    );
}

async fn a_token_replaced_two_or_three_rotations_ago_revokes_even_within_the_window(
    backend: &Backend,
) {
    for (n, rotations) in [2, 3].into_iter().enumerate() {
        let (ada, session, tokens) =
            user_with_session(backend, &format!("ada{n}@example.com")).await;
        let mut current = (tokens.access, tokens.refresh.clone());
        for _ in 0..rotations {
            current = rotate(backend, &current.1, GRACE).await;
        }
        assert_eq!(
            refresh(backend, &tokens.refresh, GRACE).await,
            RefreshOutcome::Reused {
                session_id: session.id,
                user_id: ada.id,
            },
            "{rotations} rotations"
        );
        assert!(!is_live(backend, &current.0).await, "{rotations} rotations");
    }
}

async fn with_a_zero_window_the_last_replaced_token_is_refused_and_older_ones_revoke(
    backend: &Backend,
) {
    let zero = TimeDelta::zero();
    let (_, session, first) = user_with_session(backend, "ada@example.com").await;
    let (_, second) = rotate(backend, &first.refresh, zero).await;
    let (third_access, _) = rotate(backend, &second, zero).await;
    // The loser of a race: refused, nothing ends.
    assert_eq!(
        refresh(backend, &second, zero).await,
        RefreshOutcome::Invalid
    );
    assert!(is_live(backend, &third_access).await);
    // Older: a reuse.
    assert!(matches!(
        refresh(backend, &first.refresh, zero).await,
        RefreshOutcome::Reused { session_id, .. } if session_id == session.id
    ));
    assert!(!is_live(backend, &third_access).await);
}

async fn a_token_of_the_family_that_was_never_issued_revokes_and_a_stranger_is_only_refused(
    backend: &Backend,
) {
    let (_, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let (new_access, new_refresh) = rotate(backend, &tokens.refresh, GRACE).await;
    let stranger = Token::generate(TokenKind::Refresh).unwrap();
    assert_eq!(
        refresh(backend, &stranger, GRACE).await,
        RefreshOutcome::Invalid
    );
    assert!(is_live(backend, &new_access).await);

    // The family is the first 16 bytes: 21 characters, and 2 bits of the 22nd.
    let forged = format!(
        "{}{}",
        &new_refresh.expose()[..22],
        &stranger.expose()[22..]
    );
    let forged = Token::parse(&forged, TokenKind::Refresh).unwrap();
    assert_eq!(forged.family(), tokens.refresh.family());
    assert!(matches!(
        refresh(backend, &forged, GRACE).await,
        RefreshOutcome::Reused { session_id, .. } if session_id == session.id
    ));
    assert!(!is_live(backend, &new_access).await);
}

async fn an_expired_refresh_token_cannot_refresh_and_nothing_is_written(backend: &Backend) {
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let (dead, tokens) = session(&ada, Duration::seconds(-2), Duration::seconds(-1));
    backend.store.create_session(&dead).await.unwrap();
    let (renewal, new_access, _) = rotation(&tokens.refresh, GRACE);
    assert_eq!(
        backend
            .store
            .refresh_session(&tokens.refresh.digest(), &renewal)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(!is_live(backend, &new_access).await);
    // Still dead, so the sweep takes it.
    assert_eq!(backend.store.cleanup_expired_sessions().await.unwrap(), 1);
}

async fn no_rotation_extends_a_session_past_its_absolute_lifetime(backend: &Backend) {
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let (mut bounded, tokens) = session(&ada, Duration::minutes(15), Duration::days(30));
    let cap = Utc::now() + Duration::hours(1);
    bounded.absolute_expires_at = Some(cap);
    backend.store.create_session(&bounded).await.unwrap();

    let (renewal, _, new_refresh) = rotation(&tokens.refresh, GRACE);
    let rotated = backend
        .store
        .refresh_session(&tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    let cap_micros = cap.timestamp_micros();
    assert_eq!(
        rotated.session.refresh_expires_at.timestamp_micros(),
        cap_micros
    );
    assert!(rotated.session.expires_at <= rotated.session.refresh_expires_at);
    assert_eq!(
        rotated
            .session
            .absolute_expires_at
            .map(|at| at.timestamp_micros()),
        Some(cap_micros)
    );
    // Past the cap the refresh token is refused, although its own expiry is not reached.
    backend.pass_time(TimeDelta::hours(2)).await;
    assert_eq!(
        refresh(backend, &new_refresh, GRACE).await,
        RefreshOutcome::Invalid
    );
}

/// A session adopted from the Go library has no absolute expiry: its lifetime counts from its
/// `created_at` (`SessionRotation::max_lifetime`).
async fn an_adopted_session_counts_its_lifetime_from_created_at(backend: &Backend) {
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    for (age_days, refreshable) in [(29, true), (31, false)] {
        let (mut adopted, tokens) = session(&ada, Duration::minutes(-1), Duration::days(30));
        adopted.created_at = Some(Utc::now() - Duration::days(age_days));
        backend.store.create_session(&adopted).await.unwrap();
        let (mut renewal, _, _) = rotation(&tokens.refresh, GRACE);
        renewal.max_lifetime = Some(TimeDelta::days(30));
        let outcome = backend
            .store
            .refresh_session(&tokens.refresh.digest(), &renewal)
            .await
            .unwrap();
        match outcome {
            RefreshOutcome::Rotated(found) if refreshable => {
                let cap = (adopted.created_at.unwrap() + Duration::days(30)).timestamp_micros();
                assert_eq!(
                    found
                        .session
                        .absolute_expires_at
                        .map(|at| at.timestamp_micros()),
                    Some(cap)
                );
                assert_eq!(found.session.refresh_expires_at.timestamp_micros(), cap);
            }
            RefreshOutcome::Invalid if !refreshable => {}
            other => panic!("{age_days} days old: {other:?}"),
        }
    }
}

const CALLERS: usize = 16;

/// `CALLERS` refreshes with `presented`, started together; their outcomes and the access token
/// each would have issued.
async fn refresh_together(
    backend: &Backend,
    presented: &Token,
    grace: TimeDelta,
) -> Vec<(RefreshOutcome, Token)> {
    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (store, barrier) = (backend.store.clone(), barrier.clone());
            let (renewal, access, _) = rotation(presented, grace);
            let old = presented.digest();
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = store.refresh_session(&old, &renewal).await.unwrap();
                (outcome, access)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn of_concurrent_refreshes_exactly_one_rotates_and_the_rest_are_refused(backend: &Backend) {
    let (_, _, tokens) = user_with_session(backend, "ada@example.com").await;
    let outcomes = refresh_together(backend, &tokens.refresh, TimeDelta::zero()).await;
    let winners: Vec<&Token> = outcomes
        .iter()
        .filter_map(|(outcome, access)| {
            matches!(outcome, RefreshOutcome::Rotated(_)).then_some(access)
        })
        .collect();
    assert_eq!(winners.len(), 1);
    let refused = outcomes
        .iter()
        .filter(|(outcome, _)| *outcome == RefreshOutcome::Invalid)
        .count();
    assert_eq!(refused, CALLERS - 1);
    // The winner's token is the one the session now holds.
    assert!(is_live(backend, winners[0]).await);
}

async fn of_concurrent_refreshes_one_rotates_and_the_rest_replay_its_secret(backend: &Backend) {
    let (_, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let outcomes = refresh_together(backend, &tokens.refresh, GRACE).await;
    let winner = outcomes
        .iter()
        .find_map(|(outcome, _)| outcome.clone().rotated())
        .unwrap();
    let mut rotated = 0;
    for (outcome, _) in &outcomes {
        match outcome {
            RefreshOutcome::Rotated(_) => rotated += 1,
            RefreshOutcome::Replayed { found, secret } => {
                assert_eq!(found.session.id, session.id);
                assert_eq!(found.session.token, winner.session.token);
                assert_eq!(
                    Token::derive(TokenKind::Access, secret, &tokens.refresh).digest(),
                    winner.session.token
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rotated, 1);
}

async fn a_rotation_secret_is_forgotten_once_its_window_has_passed(backend: &Backend) {
    let (ada, _, old) = user_with_session(backend, "ada@example.com").await;
    let (old_access, _) = rotate(backend, &old.refresh, GRACE).await;
    backend.pass_time(TimeDelta::seconds(11)).await;
    let (recent, recent_tokens) = session(&ada, Duration::minutes(15), Duration::days(30));
    backend.store.create_session(&recent).await.unwrap();
    rotate(backend, &recent_tokens.refresh, GRACE).await;

    assert_eq!(
        backend.store.clear_rotation_secrets(GRACE).await.unwrap(),
        1
    );
    assert_eq!(
        backend.store.clear_rotation_secrets(GRACE).await.unwrap(),
        0
    );
    // The recent rotation kept its secret: its replay is answered.
    assert!(matches!(
        refresh(backend, &recent_tokens.refresh, GRACE).await,
        RefreshOutcome::Replayed { .. }
    ));
    // The old session lives on, and its replaced token is still recognised as its own.
    assert!(is_live(backend, &old_access).await);
    assert!(matches!(
        refresh(backend, &old.refresh, GRACE).await,
        RefreshOutcome::Reused { .. }
    ));
}

contract! {
    a_rotation_replaces_both_tokens_and_both_expiries,
    a_replay_within_the_window_gets_the_rotations_secret_and_writes_nothing,
    the_replaced_token_after_the_window_revokes_the_session,
    a_token_replaced_two_or_three_rotations_ago_revokes_even_within_the_window,
    with_a_zero_window_the_last_replaced_token_is_refused_and_older_ones_revoke,
    a_token_of_the_family_that_was_never_issued_revokes_and_a_stranger_is_only_refused,
    an_expired_refresh_token_cannot_refresh_and_nothing_is_written,
    no_rotation_extends_a_session_past_its_absolute_lifetime,
    an_adopted_session_counts_its_lifetime_from_created_at,
    of_concurrent_refreshes_exactly_one_rotates_and_the_rest_are_refused(
        flavor = "multi_thread",
        worker_threads = 4
    ),
    of_concurrent_refreshes_one_rotates_and_the_rest_replay_its_secret(
        flavor = "multi_thread",
        worker_threads = 4
    ),
    a_rotation_secret_is_forgotten_once_its_window_has_passed,
}
