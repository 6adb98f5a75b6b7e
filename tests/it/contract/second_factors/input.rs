//! Input no column can hold: refused as invalid by the writes, matching nothing in the lookups,
//! before any row is touched.

use authingo::{SecondFactorProof, StoreError};
use chrono::{TimeDelta, Utc};

use super::{
    Backend, challenge, challenge_lives, codes_left, enrolled, is_confirmed, is_live,
    recovery_codes, secret, unknown_digest,
};
use crate::contract::{contract, user_with_session};
use crate::support::{live_session, user};

async fn nul_bytes_are_invalid_input_for_writes_and_match_nothing_for_lookups(backend: &Backend) {
    let factors = backend.second_factors();
    let (ada, session, _, codes) = enrolled(backend, "ada@example.com").await;
    let invalid =
        |result: Result<_, StoreError>| matches!(result, Err(StoreError::InvalidInput { .. }));
    let mut nul = user("nul@example.com");
    nul.id = "usr_\0".to_owned();

    assert!(invalid(
        factors.begin_totp(&secret(&nul, b"x")).await.map(|_| ())
    ));
    assert!(invalid(
        factors
            .create_challenge(&authingo::SignInChallenge {
                digest: unknown_digest(),
                user_id: nul.id.clone(),
                persistent: false,
                failures: 0,
                expires_at: Utc::now() + TimeDelta::minutes(5),
            })
            .await
    ));
    assert!(invalid(
        factors
            .trust_device(&authingo::TrustedDevice {
                digest: unknown_digest(),
                user_id: nul.id.clone(),
                expires_at: Utc::now() + TimeDelta::days(1),
            })
            .await
    ));
    // A session no column can hold is refused before the challenge is touched.
    let waiting = challenge(backend, &ada, TimeDelta::minutes(5)).await;
    let (mut opening, _) = live_session(&ada);
    opening.user_agent = Some("agent\0".to_owned());
    let proof = SecondFactorProof::RecoveryCode(&codes[0]);
    assert!(invalid(
        factors
            .complete_challenge(&waiting, proof, &opening)
            .await
            .map(|_| ())
    ));
    assert!(challenge_lives(backend, &waiting).await);
    assert_eq!(codes_left(backend, &ada).await, 10);

    let nul_id = nul.id.as_str();
    assert!(factors.totp_secret(nul_id).await.unwrap().is_none());
    assert_eq!(factors.recovery_codes_left(nul_id).await.unwrap(), 0);
    assert!(!factors.accept_totp_step(nul_id, 1).await.unwrap());
    assert!(
        !factors
            .replace_recovery_codes(nul_id, 1, &recovery_codes(1))
            .await
            .unwrap()
    );
    assert!(
        !factors
            .confirm_totp(nul_id, b"x", 1, &recovery_codes(1), &session.id)
            .await
            .unwrap()
    );
    // A session to keep that no row can be confirms nothing, and ends no session.
    let (carol, _, carol_tokens) = user_with_session(backend, "carol@example.com").await;
    assert!(factors.begin_totp(&secret(&carol, b"carol")).await.unwrap());
    assert!(
        !factors
            .confirm_totp(&carol.id, b"carol", 1, &recovery_codes(1), "ses_\0")
            .await
            .unwrap()
    );
    assert!(!is_confirmed(backend, &carol).await);
    assert!(is_live(backend, &carol_tokens).await);
    assert!(!factors.reseal_totp(nul_id, b"x", "k2", b"y").await.unwrap());
    assert!(!factors.remove_second_factor(nul_id).await.unwrap());
    assert!(
        !factors
            .is_trusted_device(&unknown_digest(), nul_id)
            .await
            .unwrap()
    );
}

contract! {
    nul_bytes_are_invalid_input_for_writes_and_match_nothing_for_lookups,
}
