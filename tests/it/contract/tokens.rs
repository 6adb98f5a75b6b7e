//! One-time tokens: used once, for their purpose and their address only, replaced by a new one
//! of their purpose, swept after expiry; a reset and a change of email with what they end.

use authingo::token::{Token, TokenKind};
use authingo::{OneTimeToken, StoreError, TokenPurpose, TokenUse, User};
use chrono::{Duration, TimeDelta, Utc};

use super::{Backend, contract, user_with_session};
use crate::support::user;

/// Issues a link for `owner`, valid `valid_for`, for `email`; returns the raw token.
async fn issue(
    backend: &Backend,
    owner: &User,
    purpose: TokenPurpose,
    email: &str,
    valid_for: Duration,
) -> Token {
    let token = Token::generate(TokenKind::OneTime).unwrap();
    backend
        .tokens()
        .issue_token(&OneTimeToken {
            token: token.digest(),
            user_id: owner.id.clone(),
            purpose,
            email: Some(email.to_owned()),
            expires_at: Utc::now() + valid_for,
        })
        .await
        .unwrap();
    token
}

async fn a_token_is_used_once_and_only_for_its_purpose(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let link = issue(
        backend,
        &ada,
        TokenPurpose::VerifyEmail,
        "ada@example.com",
        Duration::hours(1),
    )
    .await;
    // Another purpose: refused, and the token is left as it is.
    for other in [
        TokenUse::ResetPassword {
            password_hash: "$new$",
        },
        TokenUse::ChangeEmail,
        TokenUse::CancelEmailChange,
    ] {
        assert!(
            tokens
                .use_token(&link.digest(), other)
                .await
                .unwrap()
                .is_none()
        );
    }
    let used = tokens
        .use_token(&link.digest(), TokenUse::VerifyEmail)
        .await
        .unwrap()
        .unwrap();
    assert!(used.user.email_verified);
    assert_eq!(used.previous_email, "ada@example.com");
    assert!(
        backend
            .store
            .get_user(&ada.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    assert!(
        tokens
            .use_token(&link.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_none()
    );
}

async fn an_expired_token_is_refused_and_swept(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let expired = issue(
        backend,
        &ada,
        TokenPurpose::VerifyEmail,
        "ada@example.com",
        Duration::seconds(-1),
    )
    .await;
    let aging = issue(
        backend,
        &ada,
        TokenPurpose::ResetPassword,
        "ada@example.com",
        Duration::minutes(30),
    )
    .await;
    assert!(
        tokens
            .use_token(&expired.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(tokens.cleanup_expired_tokens().await.unwrap(), 1);
    backend.pass_time(TimeDelta::minutes(31)).await;
    let reset = TokenUse::ResetPassword {
        password_hash: "$new$",
    };
    assert!(
        tokens
            .use_token(&aging.digest(), reset)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(tokens.cleanup_expired_tokens().await.unwrap(), 1);
    assert_eq!(tokens.cleanup_expired_tokens().await.unwrap(), 0);
}

async fn a_new_token_replaces_the_users_earlier_one_of_its_purpose(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let hour = Duration::hours(1);
    let first = issue(backend, &ada, TokenPurpose::VerifyEmail, &ada.email, hour).await;
    let other = issue(backend, &ada, TokenPurpose::ResetPassword, &ada.email, hour).await;
    let second = issue(backend, &ada, TokenPurpose::VerifyEmail, &ada.email, hour).await;
    assert!(
        tokens
            .use_token(&first.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tokens
            .use_token(&second.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_some()
    );
    let reset = TokenUse::ResetPassword {
        password_hash: "$new$",
    };
    assert!(
        tokens
            .use_token(&other.digest(), reset)
            .await
            .unwrap()
            .is_some()
    );

    // For an unknown user: a database error, nothing stored.
    let ghost = user("ghost@example.com");
    let token = Token::generate(TokenKind::OneTime).unwrap();
    let err = tokens
        .issue_token(&OneTimeToken {
            token: token.digest(),
            user_id: ghost.id.clone(),
            purpose: TokenPurpose::VerifyEmail,
            email: Some(ghost.email.clone()),
            expires_at: Utc::now() + hour,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

async fn a_link_for_an_address_the_user_no_longer_has_does_nothing(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let hour = Duration::hours(1);
    let verify = issue(
        backend,
        &ada,
        TokenPurpose::VerifyEmail,
        "old@example.com",
        hour,
    )
    .await;
    let reset = issue(
        backend,
        &ada,
        TokenPurpose::ResetPassword,
        "old@example.com",
        hour,
    )
    .await;
    assert!(
        tokens
            .use_token(&verify.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_none()
    );
    let new_hash = TokenUse::ResetPassword {
        password_hash: "$new$",
    };
    assert!(
        tokens
            .use_token(&reset.digest(), new_hash)
            .await
            .unwrap()
            .is_none()
    );
    let stored = backend.store.get_user(&ada.id).await.unwrap().unwrap();
    assert!(!stored.email_verified);
    assert_eq!(stored.password_hash, ada.password_hash);
}

async fn a_reset_sets_the_hash_verifies_the_address_and_ends_sessions_and_links(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, session_tokens) = user_with_session(backend, "ada@example.com").await;
    let (bob, _, bobs) = user_with_session(backend, "bob@example.com").await;
    let hour = Duration::hours(1);
    let reset = issue(backend, &ada, TokenPurpose::ResetPassword, &ada.email, hour).await;
    let verify = issue(backend, &ada, TokenPurpose::VerifyEmail, &ada.email, hour).await;
    let bobs_link = issue(backend, &bob, TokenPurpose::VerifyEmail, &bob.email, hour).await;

    let err = tokens
        .use_token(
            &reset.digest(),
            TokenUse::ResetPassword {
                password_hash: "$new\0$",
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    let used = tokens
        .use_token(
            &reset.digest(),
            TokenUse::ResetPassword {
                password_hash: "$new$",
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.user.password_hash, "$new$");
    assert!(used.user.email_verified);
    assert!(
        backend
            .store
            .get_session(&session_tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tokens
            .use_token(&verify.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_none()
    );
    // Another user's session and link are untouched.
    assert!(
        backend
            .store
            .get_session(&bobs.access.digest())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        tokens
            .use_token(&bobs_link.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_change_to_a_taken_address_is_duplicate_email_and_leaves_the_token(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let (bob, _, _) = user_with_session(backend, "bob@example.com").await;
    let hour = Duration::hours(1);
    let change = issue(
        backend,
        &ada,
        TokenPurpose::ChangeEmail,
        "bob@example.com",
        hour,
    )
    .await;
    let cancel = issue(
        backend,
        &ada,
        TokenPurpose::CancelEmailChange,
        &ada.email,
        hour,
    )
    .await;

    let err = tokens
        .use_token(&change.digest(), TokenUse::ChangeEmail)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEmail), "{err:?}");
    assert_eq!(
        backend
            .store
            .get_user(&ada.id)
            .await
            .unwrap()
            .unwrap()
            .email,
        "ada@example.com"
    );

    // Bob moves away; Ada's link, still there, now works and ends her other links.
    let bobs = issue(
        backend,
        &bob,
        TokenPurpose::ChangeEmail,
        "robert@example.com",
        hour,
    )
    .await;
    tokens
        .use_token(&bobs.digest(), TokenUse::ChangeEmail)
        .await
        .unwrap()
        .unwrap();
    let used = tokens
        .use_token(&change.digest(), TokenUse::ChangeEmail)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.user.email, "bob@example.com");
    assert_eq!(used.previous_email, "ada@example.com");
    assert!(used.user.email_verified);
    assert_eq!(
        backend
            .store
            .get_user_by_email("bob@example.com")
            .await
            .unwrap()
            .map(|user| user.id),
        Some(ada.id.clone())
    );
    assert!(
        tokens
            .use_token(&cancel.digest(), TokenUse::CancelEmailChange)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_cancel_voids_the_pending_change_and_keeps_other_links(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, session, _) = user_with_session(backend, "ada@example.com").await;
    let hour = Duration::hours(1);
    let change = issue(
        backend,
        &ada,
        TokenPurpose::ChangeEmail,
        "new@example.com",
        hour,
    )
    .await;
    let verify = issue(backend, &ada, TokenPurpose::VerifyEmail, &ada.email, hour).await;
    // Issued for a live session over the verified hash only.
    let cancel_token = Token::generate(TokenKind::OneTime).unwrap();
    let cancel = OneTimeToken {
        token: cancel_token.digest(),
        user_id: ada.id.clone(),
        purpose: TokenPurpose::CancelEmailChange,
        email: Some(ada.email.clone()),
        expires_at: Utc::now() + hour,
    };
    for (session_id, hash) in [
        (session.id.as_str(), "$stale$"),
        ("ses_gone", ada.password_hash.as_str()),
        ("\0", ada.password_hash.as_str()),
    ] {
        assert!(
            !tokens
                .issue_token_for_session(&cancel, session_id, hash)
                .await
                .unwrap()
        );
    }
    assert!(
        tokens
            .issue_token_for_session(&cancel, &session.id, &ada.password_hash)
            .await
            .unwrap()
    );

    let used = tokens
        .use_token(&cancel_token.digest(), TokenUse::CancelEmailChange)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.user.email, "ada@example.com");
    assert!(
        tokens
            .use_token(&change.digest(), TokenUse::ChangeEmail)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tokens
            .use_token(&verify.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_live_token_is_seen_without_being_used(backend: &Backend) {
    let tokens = backend.tokens();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let link = issue(
        backend,
        &ada,
        TokenPurpose::ResetPassword,
        "ada@example.com",
        Duration::hours(1),
    )
    .await;
    let random = Token::generate(TokenKind::OneTime).unwrap();
    assert!(
        !tokens
            .token_is_live(&random.digest(), TokenPurpose::ResetPassword)
            .await
            .unwrap()
    );
    assert!(
        !tokens
            .token_is_live(&link.digest(), TokenPurpose::VerifyEmail)
            .await
            .unwrap()
    );
    // Asking twice consumes nothing: the token is still there to use.
    for _ in 0..2 {
        assert!(
            tokens
                .token_is_live(&link.digest(), TokenPurpose::ResetPassword)
                .await
                .unwrap()
        );
    }
    backend.pass_time(TimeDelta::hours(2)).await;
    assert!(
        !tokens
            .token_is_live(&link.digest(), TokenPurpose::ResetPassword)
            .await
            .unwrap()
    );
}

contract! {
    a_live_token_is_seen_without_being_used,
    a_token_is_used_once_and_only_for_its_purpose,
    an_expired_token_is_refused_and_swept,
    a_new_token_replaces_the_users_earlier_one_of_its_purpose,
    a_link_for_an_address_the_user_no_longer_has_does_nothing,
    a_reset_sets_the_hash_verifies_the_address_and_ends_sessions_and_links,
    a_change_to_a_taken_address_is_duplicate_email_and_leaves_the_token,
    a_cancel_voids_the_pending_change_and_keeps_other_links,
}
