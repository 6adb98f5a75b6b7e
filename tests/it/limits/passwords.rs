//! Common passwords refused wherever a password is set, unless turned off.

use super::*;
use crate::support::{EngineBuilder, FAST, PASSWORD, TestDb, Watched};
use authingo::{RequestContext, SignUp};

#[tokio::test]
async fn a_common_password_is_refused_wherever_a_password_is_set() {
    let db = TestDb::new().await;
    let hasher = Watched::new(FAST);
    let auth = EngineBuilder::over(&db)
        .await
        .rate_limits(None)
        .sign_in_throttle(None)
        .hasher(hasher.clone())
        .with(|options| options.fresh_age(StdDuration::from_secs(3600)))
        .ready()
        .await;
    let hashes = hasher.count(&hasher.hashes);
    for common in ["password1", "Iloveyou12", " qwertyuiop "] {
        match auth
            .sign_up("ada@example.com", common, "Ada", &RequestContext::default())
            .await
            .and_then(SignUp::signed_in)
        {
            Err(AuthError::InvalidInput {
                field: "password",
                reason: InputReason::TooCommon,
            }) => {}
            other => panic!("{common}: {other:?}"),
        }
    }
    assert_eq!(
        hasher.count(&hasher.hashes),
        hashes,
        "refused before hashing"
    );
    let signed_up = auth
        .sign_up(
            "ada@example.com",
            PASSWORD,
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    let current = authingo::SessionWithUser {
        session: signed_up.session,
        user: signed_up.user,
    };
    assert!(matches!(
        auth.change_password(&current, PASSWORD, "Password123", true)
            .await,
        Err(AuthError::InvalidInput {
            field: "password",
            reason: InputReason::TooCommon,
        })
    ));
    assert!(auth.check_new_password("baseball1").is_err());
    auth.change_password(&current, PASSWORD, "a rarer passphrase", true)
        .await
        .unwrap();
    // Off: allowed.
    let lax = EngineBuilder::over(&db)
        .await
        .rate_limits(None)
        .sign_in_throttle(None)
        .with(|options| options.reject_common_passwords(false))
        .build();
    lax.sign_up(
        "bob@example.com",
        "password1",
        "Bob",
        &RequestContext::default(),
    )
    .await
    .and_then(SignUp::signed_in)
    .unwrap();
}
