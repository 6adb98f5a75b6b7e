//! Session management: a user's usable sessions in order of use, ending one, all or all but
//! one, the cap, and the change of password that ends them with the user's links.

use authingo::token::{Token, TokenKind};
use authingo::{EndSessions, OneTimeToken, Session, TokenPurpose, TokenUse};
use chrono::{Duration, TimeDelta, Utc};

use super::{Backend, GRACE, contract, rotation, user_with_session};
use crate::support::{live_session, session, user};

/// A stored session of `owner` made `age` ago (its `created_at`), live.
async fn session_made(backend: &Backend, owner: &authingo::User, age: Duration) -> Session {
    let (mut made, _) = live_session(owner);
    made.created_at = Some(Utc::now() - age);
    backend.store.create_session(&made).await.unwrap();
    made
}

fn ids(sessions: &[Session]) -> Vec<&str> {
    sessions.iter().map(|session| session.id.as_str()).collect()
}

/// A link for `owner`, valid an hour, mailed to `email`.
fn link(owner: &authingo::User, purpose: TokenPurpose, email: &str) -> (OneTimeToken, Token) {
    let token = Token::generate(TokenKind::OneTime).unwrap();
    let stored = OneTimeToken {
        token: token.digest(),
        user_id: owner.id.clone(),
        purpose,
        email: Some(email.to_owned()),
        expires_at: Utc::now() + Duration::hours(1),
    };
    (stored, token)
}

async fn the_list_holds_the_users_usable_sessions_most_recently_used_first(backend: &Backend) {
    let management = backend.management();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let bob = user("bob@example.com");
    backend.store.create_user(&bob).await.unwrap();
    session_made(backend, &bob, Duration::minutes(1)).await;

    let old = session_made(backend, &ada, Duration::hours(3)).await;
    let middle = session_made(backend, &ada, Duration::hours(2)).await;
    let (mut refreshed, refreshed_tokens) = live_session(&ada);
    refreshed.created_at = Some(Utc::now() - Duration::hours(5));
    backend.store.create_session(&refreshed).await.unwrap();
    // Neither an expired refresh token nor a session past its lifetime is listed.
    let (expired, _) = session(&ada, Duration::days(-2), Duration::seconds(-1));
    backend.store.create_session(&expired).await.unwrap();
    let (mut ended, _) = live_session(&ada);
    ended.absolute_expires_at = Some(Utc::now() - Duration::seconds(1));
    backend.store.create_session(&ended).await.unwrap();
    backend.pass_time(TimeDelta::minutes(1)).await;
    // Used last: refreshed now, though made first.
    let (renewal, _, _) = rotation(&refreshed_tokens.refresh, GRACE);
    backend
        .store
        .refresh_session(&refreshed_tokens.refresh.digest(), &renewal)
        .await
        .unwrap()
        .rotated()
        .unwrap();

    let listed = management.list_sessions(&ada.id).await.unwrap();
    // The first one `user_with_session` made is the newest sign-in.
    assert_eq!(ids(&listed)[0], refreshed.id.as_str());
    assert_eq!(ids(&listed)[2..], [middle.id.as_str(), old.id.as_str()]);
    assert_eq!(listed.len(), 4);
    assert!(
        management
            .list_sessions("usr_nobody")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(management.list_sessions("\0").await.unwrap().is_empty());
}

async fn a_user_ends_only_a_session_of_their_own(backend: &Backend) {
    let management = backend.management();
    let (ada, session, tokens) = user_with_session(backend, "ada@example.com").await;
    let (bob, _, _) = user_with_session(backend, "bob@example.com").await;
    assert!(
        !management
            .delete_user_session(&bob.id, &session.id)
            .await
            .unwrap()
    );
    assert!(
        backend
            .store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        management
            .delete_user_session(&ada.id, &session.id)
            .await
            .unwrap()
    );
    assert!(
        !management
            .delete_user_session(&ada.id, &session.id)
            .await
            .unwrap()
    );
    assert!(
        backend
            .store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
}

async fn ending_all_but_one_keeps_it_and_ending_all_takes_the_links_too(backend: &Backend) {
    let management = backend.management();
    let (ada, kept, kept_tokens) = user_with_session(backend, "ada@example.com").await;
    let (_, _, bobs) = user_with_session(backend, "bob@example.com").await;
    for _ in 0..2 {
        backend
            .store
            .create_session(&live_session(&ada).0)
            .await
            .unwrap();
    }
    let (verify, verify_token) = link(&ada, TokenPurpose::VerifyEmail, "ada@example.com");
    backend.tokens().issue_token(&verify).await.unwrap();
    let (reset, reset_token) = link(&ada, TokenPurpose::ResetPassword, "ada@example.com");
    backend.tokens().issue_token(&reset).await.unwrap();

    assert_eq!(
        management
            .delete_user_sessions(&ada.id, Some(&kept.id))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        ids(&management.list_sessions(&ada.id).await.unwrap()),
        [kept.id.as_str()]
    );
    // All but one leaves the links.
    assert!(
        backend
            .tokens()
            .use_token(&verify_token.digest(), TokenUse::VerifyEmail)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(
        management
            .delete_user_sessions(&ada.id, None)
            .await
            .unwrap(),
        1
    );
    assert!(
        backend
            .store
            .get_session(&kept_tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    // Every session ended: the links mailed before end with them.
    assert!(
        backend
            .tokens()
            .use_token(
                &reset_token.digest(),
                TokenUse::ResetPassword {
                    password_hash: "$new$"
                }
            )
            .await
            .unwrap()
            .is_none()
    );
    // Another user's session is untouched.
    assert!(
        backend
            .store
            .get_session(&bobs.access.digest())
            .await
            .unwrap()
            .is_some()
    );
}

async fn the_cap_evicts_the_least_recently_used_sessions(backend: &Backend) {
    let management = backend.management();
    let ada = user("ada@example.com");
    backend.store.create_user(&ada).await.unwrap();
    session_made(backend, &ada, Duration::hours(4)).await;
    session_made(backend, &ada, Duration::hours(3)).await;
    let recent = session_made(backend, &ada, Duration::hours(2)).await;
    let newest = session_made(backend, &ada, Duration::hours(1)).await;

    assert_eq!(management.evict_sessions(&ada.id, 2).await.unwrap(), 2);
    let listed = management.list_sessions(&ada.id).await.unwrap();
    assert_eq!(ids(&listed), [newest.id.as_str(), recent.id.as_str()]);
    assert_eq!(management.evict_sessions(&ada.id, 2).await.unwrap(), 0);
    assert_eq!(management.evict_sessions(&ada.id, 0).await.unwrap(), 2);
    assert!(management.list_sessions(&ada.id).await.unwrap().is_empty());
}

async fn a_change_of_password_needs_the_verified_hash_and_ends_sessions_and_links(
    backend: &Backend,
) {
    let management = backend.management();
    let (ada, kept, _) = user_with_session(backend, "ada@example.com").await;
    let (other, other_tokens) = live_session(&ada);
    backend.store.create_session(&other).await.unwrap();
    let (change, change_token) = link(&ada, TokenPurpose::ChangeEmail, "thief@example.com");
    backend.tokens().issue_token(&change).await.unwrap();

    // Verified against a hash a reset has replaced since: nothing moves.
    assert!(
        !management
            .set_password_hash(&ada.id, "$stale$", "$new$", EndSessions::AllBut(&kept.id))
            .await
            .unwrap()
    );
    let stored = backend.store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, ada.password_hash);
    assert_eq!(management.list_sessions(&ada.id).await.unwrap().len(), 2);

    assert!(
        management
            .set_password_hash(
                &ada.id,
                &ada.password_hash,
                "$new$",
                EndSessions::AllBut(&kept.id)
            )
            .await
            .unwrap()
    );
    let stored = backend.store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$new$");
    assert_eq!(
        ids(&management.list_sessions(&ada.id).await.unwrap()),
        [kept.id.as_str()]
    );
    assert!(
        backend
            .store
            .get_session(&other_tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        backend
            .tokens()
            .use_token(&change_token.digest(), TokenUse::ChangeEmail)
            .await
            .unwrap()
            .is_none()
    );

    // `None` keeps every session; `All` ends them.
    assert!(
        management
            .set_password_hash(&ada.id, "$new$", "$newer$", EndSessions::None)
            .await
            .unwrap()
    );
    assert_eq!(management.list_sessions(&ada.id).await.unwrap().len(), 1);
    assert!(
        management
            .set_password_hash(&ada.id, "$newer$", "$newest$", EndSessions::All)
            .await
            .unwrap()
    );
    assert!(management.list_sessions(&ada.id).await.unwrap().is_empty());
}

contract! {
    the_list_holds_the_users_usable_sessions_most_recently_used_first,
    a_user_ends_only_a_session_of_their_own,
    ending_all_but_one_keeps_it_and_ending_all_takes_the_links_too,
    the_cap_evicts_the_least_recently_used_sessions,
    a_change_of_password_needs_the_verified_hash_and_ends_sessions_and_links,
}
