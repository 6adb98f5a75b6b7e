//! Users: insert and lookups, the unique email, the values no backend can hold, the atomic
//! sign-up write and the compare-and-set writes of a password hash.

use authingo::{InputReason, StoreError};

use super::{Backend, contract};
use crate::support::{live_session, user};

async fn a_user_round_trips_by_email_and_by_id(backend: &Backend) {
    let store = &backend.store;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();

    let found = store
        .get_user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&found.id, &found.email, &found.name, &found.password_hash),
        (&ada.id, &ada.email, &ada.name, &ada.password_hash)
    );
    assert!(!found.email_verified);
    // Left to the columns' defaults: now.
    assert!(found.created_at.is_some() && found.updated_at.is_some());
    assert_eq!(store.get_user(&ada.id).await.unwrap(), Some(found));

    for absent in ["bob@example.com", "ADA@example.com", "ada\0@example.com"] {
        assert!(store.get_user_by_email(absent).await.unwrap().is_none());
    }
    for absent in ["usr_nobody", "\0"] {
        assert!(store.get_user(absent).await.unwrap().is_none());
    }
}

async fn a_second_user_with_the_same_email_is_duplicate_email(backend: &Backend) {
    let store = &backend.store;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let twin = user("ada@example.com");
    let err = store.create_user(&twin).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEmail), "{err:?}");
    assert!(store.get_user(&twin.id).await.unwrap().is_none());

    // A taken id is another constraint: a database error, not a duplicate email.
    let mut bob = user("bob@example.com");
    bob.id = ada.id.clone();
    let err = store.create_user(&bob).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(
        store
            .get_user_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn nul_bytes_and_overlong_values_are_invalid_input_and_store_nothing(backend: &Backend) {
    let store = &backend.store;
    let err = store
        .create_user(&user("ada\0@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "email",
                reason: InputReason::NulByte
            }
        ),
        "{err:?}"
    );

    let long = format!("{}@example.com", "a".repeat(256 - "@example.com".len()));
    let err = store.create_user(&user(&long)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "email",
                reason: InputReason::TooLong {
                    max: 255,
                    unit: "characters"
                }
            }
        ),
        "{err:?}"
    );
    assert!(store.get_user_by_email(&long).await.unwrap().is_none());

    // 255 characters fit, multi-byte ones included.
    let fits = format!("{}@example.com", "é".repeat(255 - "@example.com".len()));
    store.create_user(&user(&fits)).await.unwrap();
    assert!(store.get_user_by_email(&fits).await.unwrap().is_some());

    let mut named = user("bob@example.com");
    named.name = "Bob\0".to_owned();
    let (session, tokens) = live_session(&named);
    let err = store
        .create_user_with_session(&named, &session)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput { field: "name", .. }),
        "{err:?}"
    );
    assert!(store.get_user(&named.id).await.unwrap().is_none());
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_user_and_its_first_session_are_written_together_or_not_at_all(backend: &Backend) {
    let store = &backend.store;
    let ada = user("ada@example.com");
    let (session, tokens) = live_session(&ada);
    store
        .create_user_with_session(&ada, &session)
        .await
        .unwrap();
    let found = store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.id, ada.id);

    // The session cannot be stored (its id is taken): the user must not stay behind.
    let bob = user("bob@example.com");
    let (mut clash, _) = live_session(&bob);
    clash.id = session.id.clone();
    let err = store
        .create_user_with_session(&bob, &clash)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(
        store
            .get_user_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // The email is taken: neither is stored.
    let twin = user("ada@example.com");
    let (twin_session, twin_tokens) = live_session(&twin);
    let err = store
        .create_user_with_session(&twin, &twin_session)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEmail), "{err:?}");
    assert!(
        store
            .get_session(&twin_tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );
}

async fn replacing_a_password_hash_needs_the_hash_it_replaces(backend: &Backend) {
    let store = &backend.store;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (session, tokens) = live_session(&ada);
    store.create_session(&session).await.unwrap();

    // A hash changed since it was read: nothing moves.
    assert!(
        !store
            .replace_password_hash(&ada.id, "$stale$", "$rehashed$")
            .await
            .unwrap()
    );
    let stored = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, ada.password_hash);

    assert!(
        store
            .replace_password_hash(&ada.id, &ada.password_hash, "$rehashed$")
            .await
            .unwrap()
    );
    let stored = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$rehashed$");
    // A re-hash keeps the sessions.
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_some()
    );
    for (user_id, expected) in [("usr_nobody", "$rehashed$"), (ada.id.as_str(), "\0")] {
        assert!(
            !store
                .replace_password_hash(user_id, expected, "$x$")
                .await
                .unwrap()
        );
    }
    let err = store
        .replace_password_hash(&ada.id, "$rehashed$", "$x\0$")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "password_hash",
                ..
            }
        ),
        "{err:?}"
    );
}

async fn a_session_opens_only_over_the_hash_its_sign_in_verified(backend: &Backend) {
    let store = &backend.store;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (mut session, tokens) = live_session(&ada);
    session.user_agent = Some("Firefox".to_owned());
    session.ip_address = Some("192.0.2.1".to_owned());

    for stale in ["$stale$", "\0"] {
        assert!(
            !store
                .create_session_verified(&session, stale)
                .await
                .unwrap()
        );
    }
    let mut ghost = session.clone();
    ghost.user_id = "usr_nobody".to_owned();
    assert!(
        !store
            .create_session_verified(&ghost, &ada.password_hash)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_session(&tokens.access.digest())
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        store
            .create_session_verified(&session, &ada.password_hash)
            .await
            .unwrap()
    );
    let found = store
        .get_session(&tokens.access.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.id, session.id);
    assert_eq!(found.session.user_agent.as_deref(), Some("Firefox"));
    assert_eq!(found.session.ip_address.as_deref(), Some("192.0.2.1"));
    assert!(found.session.persistent);
}

contract! {
    a_user_round_trips_by_email_and_by_id,
    a_second_user_with_the_same_email_is_duplicate_email,
    nul_bytes_and_overlong_values_are_invalid_input_and_store_nothing,
    a_user_and_its_first_session_are_written_together_or_not_at_all,
    replacing_a_password_hash_needs_the_hash_it_replaces,
    a_session_opens_only_over_the_hash_its_sign_in_verified,
}
