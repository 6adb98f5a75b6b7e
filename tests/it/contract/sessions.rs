//! Sessions: lookup by access token, the two expiries, deletion by any of the session's tokens,
//! the sign-out that raced a rotation, and the sweep.

use authingo::token::{Token, TokenKind};
use authingo::{CleanupPace, RefreshOutcome, StoreError};
use chrono::{Duration, TimeDelta};

use super::{Backend, GRACE, contract, rotation, user_with_session};
use crate::support::{live_session, session, user};

async fn a_session_is_found_by_its_access_token_with_its_user(backend: &Backend) {
    let store = &backend.store;
    let (ada, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let found = store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.id, session.id);
    assert_eq!(found.session.token, session.token);
    assert_eq!(found.session.refresh_token, session.refresh_token);
    assert_eq!(
        found.session.expires_at.timestamp_micros(),
        session.expires_at.timestamp_micros()
    );
    assert!(found.session.created_at.is_some());
    assert_eq!(found.session.rotated_at, None);
    assert_eq!(found.user.id, ada.id);
    assert_eq!(found.user.email, ada.email);

    // Neither its refresh token nor a stranger's token finds it.
    let stranger = Token::generate(TokenKind::Access).unwrap();
    for digest in [tokens.refresh.digest(), stranger.digest()] {
        assert!(store.get_session(&digest).await.unwrap().is_none());
    }
}

async fn a_session_for_an_unknown_user_or_a_taken_token_is_refused(backend: &Backend) {
    let store = &backend.store;
    let ghost = user("ghost@example.com");
    let (orphan, tokens) = live_session(&ghost);
    let err = store.create_session(&orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );

    let (ada, taken, _) = user_with_session(backend, "ada@example.com").await;
    let (mut copy, _) = live_session(&ada);
    copy.token = taken.token.clone();
    let err = store.create_session(&copy).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

async fn the_access_token_expires_first_and_the_refresh_token_later(backend: &Backend) {
    let store = &backend.store;
    let (ada, _, tokens) = user_with_session(backend, "ada@example.com").await;
    // Written with an access token already expired: found by nothing but its refresh token.
    let (stale, stale_tokens) = session(&ada, Duration::seconds(-1), Duration::days(30));
    store.create_session(&stale).await.unwrap();
    assert!(
        store
            .get_session(&stale_tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    let (renewal, new_access, _) = rotation(&stale_tokens.refresh, GRACE);
    let rotated = store
        .refresh_session(&stale_tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    assert_eq!(rotated.session.id, stale.id);
    assert!(
        store
            .get_session(&new_access.digest())
            .await
            .unwrap()
            .is_some()
    );

    // The live session, 16 minutes on: its access token has expired, its refresh token not.
    backend.pass_time(TimeDelta::minutes(16)).await;
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    // 31 days on: neither works.
    backend.pass_time(TimeDelta::days(31)).await;
    let (late, _, _) = rotation(&tokens.refresh, GRACE);
    assert_eq!(
        store
            .refresh_session(&tokens.refresh.digest(), &late)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
}

async fn delete_session_matches_the_access_the_refresh_and_the_previous_refresh_token(
    backend: &Backend,
) {
    let store = &backend.store;
    let (ada, _, by_access) = user_with_session(backend, "ada@example.com").await;
    let (by_refresh, by_refresh_tokens) = live_session(&ada);
    store.create_session(&by_refresh).await.unwrap();
    let (by_previous, by_previous_tokens) = live_session(&ada);
    store.create_session(&by_previous).await.unwrap();
    let (untouched, untouched_tokens) = live_session(&ada);
    store.create_session(&untouched).await.unwrap();
    // A sign-out that raced a refresh presents the refresh token the rotation replaced.
    let (renewal, new_access, _) = rotation(&by_previous_tokens.refresh, GRACE);
    store
        .refresh_session(&by_previous_tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();

    for (presented, found_by) in [
        (by_access.access.digest(), by_access.access.digest()),
        (
            by_refresh_tokens.refresh.digest(),
            by_refresh_tokens.access.digest(),
        ),
        (by_previous_tokens.refresh.digest(), new_access.digest()),
    ] {
        assert!(store.get_session(&found_by).await.unwrap().is_some());
        assert!(store.delete_session(&presented).await.unwrap());
        assert!(store.get_session(&found_by).await.unwrap().is_none());
        // A second delete finds nothing.
        assert!(!store.delete_session(&presented).await.unwrap());
    }
    assert!(
        store
            .get_session(&untouched_tokens.access.digest())
            .await
            .unwrap()
            .is_some()
    );
}

async fn the_access_token_a_rotation_replaced_ends_its_session_only_within_the_window(
    backend: &Backend,
) {
    let store = &backend.store;
    let (ada, _, tokens) = user_with_session(backend, "ada@example.com").await;
    let (renewal, new_access, _) = rotation(&tokens.refresh, GRACE);
    store
        .refresh_session(&tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    // The replaced access token finds nothing else, and nothing with a zero window.
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .delete_rotated_session(&tokens.access.digest(), TimeDelta::zero())
            .await
            .unwrap()
    );
    // Nor the current access token: only a replaced one.
    assert!(
        !store
            .delete_rotated_session(&new_access.digest(), GRACE)
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_rotated_session(&tokens.access.digest(), GRACE)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_session(&new_access.digest())
            .await
            .unwrap()
            .is_none()
    );

    // After the window, the replaced token finds nothing.
    let (later, later_tokens) = live_session(&ada);
    store.create_session(&later).await.unwrap();
    let (renewal, later_access, _) = rotation(&later_tokens.refresh, GRACE);
    store
        .refresh_session(&later_tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();
    backend.pass_time(TimeDelta::seconds(11)).await;
    assert!(
        !store
            .delete_rotated_session(&later_tokens.access.digest(), GRACE)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_session(&later_access.digest())
            .await
            .unwrap()
            .is_some()
    );
}

async fn the_sweep_deletes_only_sessions_none_of_whose_tokens_can_be_used(backend: &Backend) {
    let store = &backend.store;
    let (ada, _, live) = user_with_session(backend, "ada@example.com").await;
    for _ in 0..3 {
        let (dead, _) = session(&ada, Duration::days(-2), Duration::seconds(-1));
        store.create_session(&dead).await.unwrap();
    }
    // Access expired, refresh valid: the specification's OR would delete it.
    let (idle, idle_tokens) = session(&ada, Duration::minutes(-20), Duration::days(29));
    store.create_session(&idle).await.unwrap();

    let deleted = store
        .cleanup_expired_sessions_paced(CleanupPace::UNTHROTTLED)
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(
        store
            .cleanup_expired_sessions_paced(CleanupPace::UNTHROTTLED)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .get_session(&live.access.digest())
            .await
            .unwrap()
            .is_some()
    );
    let (renewal, _, _) = rotation(&idle_tokens.refresh, GRACE);
    assert!(
        store
            .refresh_session(&idle_tokens.refresh.digest(), &renewal)
            .await
            .unwrap()
            .rotated()
            .is_some()
    );
}

contract! {
    a_session_is_found_by_its_access_token_with_its_user,
    a_session_for_an_unknown_user_or_a_taken_token_is_refused,
    the_access_token_expires_first_and_the_refresh_token_later,
    delete_session_matches_the_access_the_refresh_and_the_previous_refresh_token,
    the_access_token_a_rotation_replaced_ends_its_session_only_within_the_window,
    the_sweep_deletes_only_sessions_none_of_whose_tokens_can_be_used,
}
