//! Trusted browsers, until they expire and for their user only; what ends them with the
//! challenges (every session ended, a reset, a new password, a new address) while the second
//! factor stays; and the sweep.

use authingo::token::{Token, TokenKind};
use authingo::{EndSessions, OneTimeToken, TokenPurpose, TokenUse, TrustedDevice, User};
use chrono::TimeDelta;

use super::{
    Backend, challenge, challenge_lives, codes_left, enrolled, is_confirmed, is_trusted, now,
    secret, trusted, unknown_digest,
};
use crate::contract::{contract, user_with_session};
use crate::support::user;

const FIVE_MINUTES: TimeDelta = TimeDelta::minutes(5);
const THIRTY_DAYS: TimeDelta = TimeDelta::days(30);

/// A link of `purpose` for `owner`, mailed to `email` and valid an hour: its token.
async fn link(backend: &Backend, owner: &User, purpose: TokenPurpose, email: &str) -> Token {
    let token = Token::generate(TokenKind::OneTime).unwrap();
    backend
        .tokens()
        .issue_token(&OneTimeToken {
            token: token.digest(),
            user_id: owner.id.clone(),
            purpose,
            email: Some(email.to_owned()),
            expires_at: now() + TimeDelta::hours(1),
        })
        .await
        .unwrap();
    token
}

/// Whether `owner` still has the confirmed second factor [`enrolled`] gave, with its codes.
async fn keeps_its_second_factor(backend: &Backend, owner: &User) -> bool {
    is_confirmed(backend, owner).await && codes_left(backend, owner).await == 10
}

async fn a_device_is_trusted_until_it_expires_and_by_its_user_only(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    let (bob, _, _) = user_with_session(backend, "bob@example.com").await;
    let device = trusted(backend, &ada, THIRTY_DAYS).await;
    let short = trusted(backend, &ada, TimeDelta::hours(1)).await;

    assert!(is_trusted(backend, &device, &ada).await);
    assert!(!is_trusted(backend, &device, &bob).await);
    assert!(!is_trusted(backend, &unknown_digest(), &ada).await);

    // A digest taken, or a user that does not exist: refused, and nothing is stored.
    let taken = TrustedDevice {
        digest: device.clone(),
        user_id: bob.id.clone(),
        expires_at: now() + THIRTY_DAYS,
    };
    assert!(factors.trust_device(&taken).await.is_err());
    assert!(!is_trusted(backend, &device, &bob).await);
    let nobody = user("nobody@example.com");
    let orphan = TrustedDevice {
        digest: unknown_digest(),
        user_id: nobody.id.clone(),
        expires_at: now() + THIRTY_DAYS,
    };
    assert!(factors.trust_device(&orphan).await.is_err());
    assert!(!is_trusted(backend, &orphan.digest, &nobody).await);

    backend
        .pass_time(TimeDelta::hours(1) + TimeDelta::seconds(1))
        .await;
    assert!(!is_trusted(backend, &short, &ada).await);
    assert!(is_trusted(backend, &device, &ada).await);
    backend.pass_time(THIRTY_DAYS).await;
    assert!(!is_trusted(backend, &device, &ada).await);
}

async fn ending_every_session_ends_the_trusted_devices_and_the_challenges(backend: &Backend) {
    let management = backend.management();
    let (ada, kept, _, _) = enrolled(backend, "ada@example.com").await;
    let (bob, _, _, _) = enrolled(backend, "bob@example.com").await;
    let device = trusted(backend, &ada, THIRTY_DAYS).await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;
    let bob_device = trusted(backend, &bob, THIRTY_DAYS).await;
    let bob_waiting = challenge(backend, &bob, FIVE_MINUTES).await;

    // All but one: the sign-ins wait on, but the trusted browsers end (a revoked session may
    // be a phisher's that asked for trust).
    management
        .delete_user_sessions(&ada.id, Some(&kept.id))
        .await
        .unwrap();
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(challenge_lives(backend, &waiting).await);
    // One session revoked: the same.
    let device = trusted(backend, &ada, THIRTY_DAYS).await;
    assert!(
        management
            .delete_user_session(&ada.id, &kept.id)
            .await
            .unwrap()
    );
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(challenge_lives(backend, &waiting).await);
    let device = trusted(backend, &ada, THIRTY_DAYS).await;

    management
        .delete_user_sessions(&ada.id, None)
        .await
        .unwrap();
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(!challenge_lives(backend, &waiting).await);
    assert!(keeps_its_second_factor(backend, &ada).await);
    assert!(is_trusted(backend, &bob_device, &bob).await);
    assert!(challenge_lives(backend, &bob_waiting).await);
}

async fn a_reset_ends_the_trusted_devices_and_the_challenges_but_not_the_second_factor(
    backend: &Backend,
) {
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let device = trusted(backend, &ada, THIRTY_DAYS).await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;
    let reset = link(
        backend,
        &ada,
        TokenPurpose::ResetPassword,
        "ada@example.com",
    )
    .await;

    let used = backend
        .tokens()
        .use_token(
            &reset.digest(),
            TokenUse::ResetPassword {
                password_hash: "$new$",
            },
        )
        .await
        .unwrap();
    assert!(used.is_some());
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(!challenge_lives(backend, &waiting).await);
    assert!(keeps_its_second_factor(backend, &ada).await);
}

async fn a_new_password_ends_the_challenges_and_with_ended_sessions_the_devices(backend: &Backend) {
    let management = backend.management();
    let (ada, kept, _, _) = enrolled(backend, "ada@example.com").await;
    let device = trusted(backend, &ada, THIRTY_DAYS).await;

    // Whatever sessions end, the sign-ins waiting on the old password end.
    let first = challenge(backend, &ada, FIVE_MINUTES).await;
    let changed = management
        .set_password_hash(&ada.id, &ada.password_hash, "$second$", EndSessions::None)
        .await
        .unwrap();
    assert!(changed);
    assert!(!challenge_lives(backend, &first).await);
    assert!(is_trusted(backend, &device, &ada).await);

    let second = challenge(backend, &ada, FIVE_MINUTES).await;
    let changed = management
        .set_password_hash(
            &ada.id,
            "$second$",
            "$third$",
            EndSessions::AllBut(&kept.id),
        )
        .await
        .unwrap();
    assert!(changed);
    assert!(!challenge_lives(backend, &second).await);
    // Other sessions ended: the trusted browsers with them.
    assert!(!is_trusted(backend, &device, &ada).await);

    // Every session ends: the trusted browsers with them.
    let device = trusted(backend, &ada, THIRTY_DAYS).await;
    let third = challenge(backend, &ada, FIVE_MINUTES).await;
    let changed = management
        .set_password_hash(&ada.id, "$third$", "$fourth$", EndSessions::All)
        .await
        .unwrap();
    assert!(changed);
    assert!(!challenge_lives(backend, &third).await);
    assert!(!is_trusted(backend, &device, &ada).await);
    assert!(keeps_its_second_factor(backend, &ada).await);
}

async fn a_new_address_ends_the_challenges_but_not_the_devices(backend: &Backend) {
    let (ada, _, _, _) = enrolled(backend, "ada@example.com").await;
    let device = trusted(backend, &ada, THIRTY_DAYS).await;
    let waiting = challenge(backend, &ada, FIVE_MINUTES).await;
    let change = link(backend, &ada, TokenPurpose::ChangeEmail, "ada@new.example").await;

    let used = backend
        .tokens()
        .use_token(&change.digest(), TokenUse::ChangeEmail)
        .await
        .unwrap();
    assert_eq!(used.unwrap().user.email, "ada@new.example");
    assert!(!challenge_lives(backend, &waiting).await);
    assert!(is_trusted(backend, &device, &ada).await);
    assert!(keeps_its_second_factor(backend, &ada).await);
}

async fn the_sweep_deletes_expired_challenges_and_devices_and_enrolments_pending_a_day(
    backend: &Backend,
) {
    let factors = backend.second_factors();
    let (ada, _, _) = user_with_session(backend, "ada@example.com").await;
    assert!(factors.begin_totp(&secret(&ada, b"ada")).await.unwrap());
    let (bob, _, _, _) = enrolled(backend, "bob@example.com").await;
    let (carol, _, _) = user_with_session(backend, "carol@example.com").await;
    assert!(factors.begin_totp(&secret(&carol, b"carol")).await.unwrap());
    let soon = challenge(backend, &bob, FIVE_MINUTES).await;
    let waiting = challenge(backend, &bob, TimeDelta::hours(4)).await;
    let short = trusted(backend, &bob, TimeDelta::hours(2)).await;
    let long = trusted(backend, &bob, THIRTY_DAYS).await;
    assert_eq!(factors.cleanup_second_factors().await.unwrap(), 0);

    // Three hours on: a challenge and a device have expired.
    backend.pass_time(TimeDelta::hours(3)).await;
    assert_eq!(factors.cleanup_second_factors().await.unwrap(), 2);
    assert!(!challenge_lives(backend, &soon).await);
    assert!(!is_trusted(backend, &short, &bob).await);
    assert!(challenge_lives(backend, &waiting).await);
    // Carol starts again: a new enrolment, with a day of its own.
    assert!(factors.begin_totp(&secret(&carol, b"again")).await.unwrap());

    // A day and an hour after the first enrolments: Ada's is still pending, Bob's was
    // confirmed; the other challenge has expired.
    backend.pass_time(TimeDelta::hours(22)).await;
    assert_eq!(factors.cleanup_second_factors().await.unwrap(), 2);
    assert!(factors.totp_secret(&ada.id).await.unwrap().is_none());
    let kept = factors.totp_secret(&carol.id).await.unwrap().unwrap();
    assert_eq!(&kept.ciphertext[..], b"again");
    assert!(is_confirmed(backend, &bob).await);
    assert!(is_trusted(backend, &long, &bob).await);
    assert_eq!(factors.cleanup_second_factors().await.unwrap(), 0);
}

contract! {
    a_device_is_trusted_until_it_expires_and_by_its_user_only,
    ending_every_session_ends_the_trusted_devices_and_the_challenges,
    a_reset_ends_the_trusted_devices_and_the_challenges_but_not_the_second_factor,
    a_new_password_ends_the_challenges_and_with_ended_sessions_the_devices,
    a_new_address_ends_the_challenges_but_not_the_devices,
    the_sweep_deletes_expired_challenges_and_devices_and_enrolments_pending_a_day,
}
