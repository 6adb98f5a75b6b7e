//! Sessions a user can see and end, the per-user cap, freshness, and the change of password, on
//! the engine and the real database. Sign-in times are written into the past instead of waiting.

use std::net::IpAddr;
use std::sync::Arc;

use authingo::mail::CapturingMailer;
use authingo::{Auth, AuthError, RequestContext, SessionWithUser, SignUp, SignedIn};

use crate::support::{
    EngineBuilder, FAST, PASSWORD, TestDb, Watched, count, counted_store, current, engine, exec,
    sign_in_failures,
};

async fn sign_in(auth: &Auth, email: &str, agent: &str) -> SignedIn {
    auth.sign_in(
        email,
        PASSWORD,
        &RequestContext::default()
            .user_agent(Some(agent))
            .ip_address(Some(IpAddr::from([203, 0, 113, 7]))),
    )
    .await
    .and_then(authingo::SignIn::signed_in)
    .unwrap()
}

async fn execute(db: &TestDb, sql: &str) {
    exec(&mut db.conn().await, sql).await;
}

/// Whether the access token of `signed_in` still opens its session.
async fn alive(auth: &Auth, signed_in: &SignedIn) -> bool {
    auth.get_session(signed_in.tokens.access_token.expose())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn listing_shows_only_the_users_live_sessions_most_recently_used_first() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
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
    auth.sign_up(
        "bob@example.com",
        PASSWORD,
        "Bob",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    let laptop = sign_in(&auth, "ada@example.com", "Laptop\r\n").await;
    let phone = sign_in(&auth, "ada@example.com", "Phone").await;
    // The sign-up's session is dead (its refresh token expired); the laptop refreshed last.
    execute(
        &db,
        &format!(
            "UPDATE sessions SET refresh_expires_at = NOW() - INTERVAL '1 second',
                                 expires_at = NOW() - INTERVAL '1 second' WHERE id = '{}'",
            ada.session.id
        ),
    )
    .await;
    auth.refresh(
        laptop.tokens.refresh_token.expose(),
        &RequestContext::default(),
    )
    .await
    .unwrap();

    let listed = auth.list_sessions(&ada.user).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [laptop.session.id.as_str(), phone.session.id.as_str()]);
    assert_eq!(listed[0].user_agent.as_deref(), Some("Laptop"));
    assert_eq!(listed[1].ip_address.as_deref(), Some("203.0.113.7"));
    assert!(listed[0].last_used_at() > listed[1].last_used_at());
    assert!(listed.iter().all(|s| s.user_id == ada.user.id));
    assert_eq!(auth.list_user_sessions(&ada.user.id).await.unwrap(), listed);
}

#[tokio::test]
async fn another_users_session_id_is_treated_as_an_unknown_one() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
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
    let bob = auth
        .sign_up(
            "bob@example.com",
            PASSWORD,
            "Bob",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    assert!(
        !auth
            .revoke_session(&ada.user, &bob.session.id)
            .await
            .unwrap()
    );
    assert!(!auth.revoke_session(&ada.user, "ses_unknown").await.unwrap());
    assert!(!auth.revoke_session(&ada.user, "ses_\0").await.unwrap());
    assert!(alive(&auth, &bob).await);
    assert!(
        auth.revoke_session(&ada.user, &ada.session.id)
            .await
            .unwrap()
    );
    assert!(!alive(&auth, &ada).await);
}

#[tokio::test]
async fn revoking_the_others_keeps_exactly_the_current_session() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let second = sign_in(&auth, "ada@example.com", "Phone").await;
    let third = sign_in(&auth, "ada@example.com", "Tablet").await;
    let bob = auth
        .sign_up(
            "bob@example.com",
            PASSWORD,
            "Bob",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    assert_eq!(
        auth.revoke_other_sessions(&current(&second)).await.unwrap(),
        2
    );
    assert!(alive(&auth, &second).await);
    assert!(!alive(&auth, &first).await && !alive(&auth, &third).await);
    assert!(alive(&auth, &bob).await);
    assert_eq!(auth.revoke_user_sessions(&first.user.id).await.unwrap(), 1);
    assert!(!alive(&auth, &second).await);
}

#[tokio::test]
async fn signing_out_everywhere_needs_a_fresh_session_and_ends_them_all() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    let first = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let second = sign_in(&auth, "ada@example.com", "Phone").await;
    // Signed in 25 hours ago: past the default 24 hours, whatever its refreshes since.
    execute(
        &db,
        &format!(
            "UPDATE sessions SET created_at = NOW() - INTERVAL '25 hours' WHERE id = '{}'",
            first.session.id
        ),
    )
    .await;
    let stale = auth
        .get_session(first.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(!auth.is_fresh(&stale.session));
    assert!(matches!(
        auth.revoke_all_sessions(&stale).await,
        Err(AuthError::ReauthenticationRequired)
    ));
    assert!(alive(&auth, &first).await && alive(&auth, &second).await);

    assert!(auth.is_fresh(&second.session));
    assert_eq!(
        auth.revoke_all_sessions(&current(&second)).await.unwrap(),
        2
    );
    assert!(!alive(&auth, &first).await && !alive(&auth, &second).await);
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing_and_costs_one_verification() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .build();
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
    let other = sign_in(&auth, "ada@example.com", "Phone").await;
    let hash_before = count(
        &db,
        "SELECT count(*) AS n FROM users WHERE password_hash = (SELECT password_hash FROM users)",
    )
    .await;
    let before = hasher.count(&hasher.work);
    let wrong = auth
        .change_password(
            &current(&ada),
            "not the password",
            "a brand new password",
            true,
        )
        .await;
    assert!(
        matches!(wrong, Err(AuthError::InvalidCredentials)),
        "{wrong:?}"
    );
    assert_eq!(hasher.count(&hasher.work), before + 1);
    assert_eq!(hash_before, 1);
    assert!(alive(&auth, &other).await);
    auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();

    // A new password the sign-up rules refuse costs nothing at all.
    let before = hasher.count(&hasher.work);
    assert!(matches!(
        auth.change_password(&current(&ada), PASSWORD, "short", true)
            .await,
        Err(AuthError::InvalidInput {
            field: "password",
            ..
        })
    ));
    assert_eq!(hasher.count(&hasher.work), before);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_keeps_this_one() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
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
    let phone = sign_in(&auth, "ada@example.com", "Phone").await;
    let tablet = sign_in(&auth, "ada@example.com", "Tablet").await;
    let updated_before = ada.user.updated_at.unwrap();

    auth.change_password(&current(&phone), PASSWORD, "a brand new password", true)
        .await
        .unwrap();
    assert!(alive(&auth, &phone).await);
    assert!(!alive(&auth, &ada).await && !alive(&auth, &tablet).await);
    assert!(matches!(
        auth.sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .and_then(authingo::SignIn::signed_in),
        Err(AuthError::InvalidCredentials)
    ));
    let again = auth
        .sign_in(
            "ada@example.com",
            "a brand new password",
            &RequestContext::default(),
        )
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    assert!(again.user.updated_at.unwrap() > updated_before);

    // Asked not to, it keeps the others.
    auth.change_password(
        &current(&again),
        "a brand new password",
        "another new one",
        false,
    )
    .await
    .unwrap();
    assert!(alive(&auth, &phone).await && alive(&auth, &again).await);
}

#[tokio::test]
async fn a_stale_session_cannot_change_the_password_and_costs_no_hashing() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .build();
    auth.sign_up(
        "ada@example.com",
        PASSWORD,
        "Ada",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
    execute(
        &db,
        "UPDATE sessions SET created_at = NOW() - INTERVAL '2 days'",
    )
    .await;
    let user = auth
        .store()
        .get_user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let session = auth.list_user_sessions(&user.id).await.unwrap().remove(0);
    let before = hasher.count(&hasher.work);
    assert!(matches!(
        auth.change_password(
            &SessionWithUser { session, user },
            PASSWORD,
            "a brand new one",
            true
        )
        .await,
        Err(AuthError::ReauthenticationRequired)
    ));
    assert_eq!(hasher.count(&hasher.work), before);
}

#[tokio::test]
async fn the_session_cap_ends_the_least_recently_used() {
    let db = TestDb::new().await;
    let auth = EngineBuilder::over(&db)
        .await
        .with(|options| options.max_sessions_per_user(Some(2)))
        .build();
    let first = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let second = sign_in(&auth, "ada@example.com", "Phone").await;
    // The first is used again (refreshed): the second is now the least recently used.
    execute(
        &db,
        "UPDATE sessions SET created_at = created_at - INTERVAL '1 minute'",
    )
    .await;
    let first = auth
        .refresh(
            first.tokens.refresh_token.expose(),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    let third = sign_in(&auth, "ada@example.com", "Tablet").await;
    assert!(alive(&auth, &first).await && alive(&auth, &third).await);
    assert!(!alive(&auth, &second).await);
    assert_eq!(auth.list_sessions(&first.user).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_session_lookup_is_still_one_statement() {
    let db = TestDb::new().await;
    let (store, statements) = counted_store(&db).await;
    let auth = EngineBuilder::on(store).build();
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
    let before = statements.total();
    for _ in 0..5 {
        assert!(alive(&auth, &ada).await);
    }
    assert_eq!(statements.total() - before, 5);
}

#[tokio::test]
async fn wrong_current_passwords_count_on_the_sign_in_throttle_and_stop_at_its_back_off() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .hasher(hasher.clone())
        .build();
    let ada = sign_in_new(&auth, "ada@example.com").await;
    // The default throttle's five free failures, each one verification...
    for _ in 0..5 {
        let wrong = auth
            .change_password(
                &current(&ada),
                "not the password",
                "a brand new password",
                true,
            )
            .await;
        assert!(
            matches!(wrong, Err(AuthError::InvalidCredentials)),
            "{wrong:?}"
        );
    }
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 5);
    // ...then the back-off refuses the next guess before any verification, here and at sign-in.
    let work = hasher.count(&hasher.work);
    let refused = auth
        .change_password(
            &current(&ada),
            "another guess",
            "a brand new password",
            true,
        )
        .await;
    assert!(
        matches!(refused, Err(AuthError::TooManyRequests { .. })),
        "{refused:?}"
    );
    assert_eq!(hasher.count(&hasher.work), work);
    let sign_in = auth
        .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(
        matches!(sign_in, Err(AuthError::TooManyRequests { .. })),
        "{sign_in:?}"
    );
}

#[tokio::test]
async fn a_right_current_password_clears_the_failures_and_the_owner_is_mailed_a_notice() {
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db).await.mailer(mail.clone()).build();
    let ada = sign_in_new(&auth, "ada@example.com").await;
    let wrong = auth
        .change_password(
            &current(&ada),
            "not the password",
            "a brand new password",
            true,
        )
        .await;
    assert!(
        matches!(wrong, Err(AuthError::InvalidCredentials)),
        "{wrong:?}"
    );
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 1);
    auth.change_password(&current(&ada), PASSWORD, "a brand new password", true)
        .await
        .unwrap();
    assert_eq!(sign_in_failures(&db, "ada@example.com").await, 0);
    auth.flush_background().await;
    let notices = mail.sent_to("ada@example.com");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].subject, "Your password was changed");
    assert!(
        notices[0]
            .text
            .contains("every other session of the account was signed out"),
        "{}",
        notices[0].text
    );
    assert_eq!(notices[0].link, None);
}

async fn sign_in_new(auth: &Auth, email: &str) -> SignedIn {
    auth.sign_up(email, PASSWORD, "Ada", &RequestContext::default())
        .await
        .and_then(SignUp::signed_in)
        .unwrap()
}
