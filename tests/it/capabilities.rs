//! A store with the core alone: `Auth::new` refuses the options that need a capability it lacks,
//! the methods that need one answer `Unsupported` (HTTP 501), and the core flows work.

use authingo::{RequestContext, SignUp};
use std::sync::Arc;

use async_trait::async_trait;
use authingo::postgres::PgStore;
use authingo::token::TokenDigest;
use authingo::{
    Auth, AuthError, Capability, CleanupPace, ConfigError, Options, RefreshOutcome, Session,
    SessionRotation, SessionWithUser, Store, StoreError, User,
};
use chrono::TimeDelta;
use serde_json::json;

use crate::support::{FAST, TestDb, engine};

/// `PgStore`'s core methods, and none of its capabilities.
struct CoreOnly(PgStore);

#[async_trait]
impl Store for CoreOnly {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.0.create_user(user).await
    }
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.0.get_user_by_email(email).await
    }
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.0.create_session(session).await
    }
    async fn create_session_verified(
        &self,
        session: &Session,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        self.0.create_session_verified(session, verified_hash).await
    }
    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError> {
        self.0.create_user_with_session(user, session).await
    }
    async fn get_session(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<SessionWithUser>, StoreError> {
        self.0.get_session(token).await
    }
    async fn delete_session(&self, token: &TokenDigest) -> Result<bool, StoreError> {
        self.0.delete_session(token).await
    }
    async fn refresh_session(
        &self,
        refresh_token: &TokenDigest,
        rotation: &SessionRotation,
    ) -> Result<RefreshOutcome, StoreError> {
        self.0.refresh_session(refresh_token, rotation).await
    }
    async fn delete_rotated_session(
        &self,
        token: &TokenDigest,
        grace: TimeDelta,
    ) -> Result<bool, StoreError> {
        self.0.delete_rotated_session(token, grace).await
    }
    async fn clear_rotation_secrets(&self, grace: TimeDelta) -> Result<u64, StoreError> {
        self.0.clear_rotation_secrets(grace).await
    }
    async fn replace_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.0
            .replace_password_hash(user_id, expected, password_hash)
            .await
    }
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.0.get_user(user_id).await
    }
    async fn cleanup_expired_sessions_paced(&self, pace: CleanupPace) -> Result<u64, StoreError> {
        self.0.cleanup_expired_sessions_paced(pace).await
    }
}

/// Options over the core-only store with the two abuse options off (they need counters).
async fn core_options(db: &TestDb) -> Options {
    Options::new(CoreOnly(db.store().await))
        .argon2(FAST)
        .cleanup_interval(None)
        .rate_limits(None)
        .sign_in_throttle(None)
}

fn refused(result: Result<Auth, ConfigError>) -> (&'static str, Capability) {
    match result {
        Err(ConfigError::Unsupported { option, capability }) => (option, capability),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[tokio::test]
async fn new_refuses_each_option_the_store_cannot_serve() {
    let db = TestDb::new().await;
    let defaults = Options::new(CoreOnly(db.store().await))
        .argon2(FAST)
        .cleanup_interval(None);
    assert_eq!(
        refused(Auth::new(defaults)),
        ("rate_limits", Capability::AbuseCounters)
    );
    let throttle_only = Options::new(CoreOnly(db.store().await))
        .argon2(FAST)
        .cleanup_interval(None)
        .rate_limits(None);
    assert_eq!(
        refused(Auth::new(throttle_only)),
        ("sign_in_throttle", Capability::AbuseCounters)
    );
    assert_eq!(
        refused(Auth::new(
            core_options(&db).await.require_email_verification(true)
        )),
        ("require_email_verification", Capability::OneTimeTokens)
    );
    assert_eq!(
        refused(Auth::new(
            core_options(&db).await.max_sessions_per_user(Some(3))
        )),
        ("max_sessions_per_user", Capability::SessionManagement)
    );
    let message = ConfigError::Unsupported {
        option: "rate_limits",
        capability: Capability::AbuseCounters,
    }
    .to_string();
    assert_eq!(
        message,
        "rate_limits needs a store with abuse counters, which this store does not offer"
    );
}

#[tokio::test]
async fn a_core_store_serves_the_core_and_answers_unsupported_for_the_rest() {
    let db = TestDb::new().await;
    let auth = Auth::new(core_options(&db).await).unwrap();
    for capability in [
        Capability::SessionManagement,
        Capability::OneTimeTokens,
        Capability::AbuseCounters,
    ] {
        assert!(!auth.supports(capability), "{capability}");
    }

    // The core: sign-up, sign-in, lookup, refresh, sign-out.
    let user = auth
        .sign_up(
            "ada@example.com",
            "correct horse battery",
            "Ada",
            &RequestContext::default(),
        )
        .await
        .and_then(SignUp::signed_in)
        .unwrap()
        .user;
    let signed_in = auth
        .sign_in(
            "ada@example.com",
            "correct horse battery",
            &RequestContext::default(),
        )
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    let found = auth
        .get_session(signed_in.tokens.access_token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.id, user.id);
    let refreshed = auth
        .refresh(
            signed_in.tokens.refresh_token.expose(),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    assert!(
        auth.sign_out(refreshed.tokens.access_token.expose())
            .await
            .unwrap()
    );

    // The rest: refused, with nothing done.
    let unsupported = |result: Result<(), AuthError>, capability| match result {
        Err(AuthError::Unsupported(got)) => assert_eq!(got, capability),
        other => panic!("expected Unsupported({capability}), got {other:?}"),
    };
    unsupported(
        auth.list_sessions(&user).await.map(drop),
        Capability::SessionManagement,
    );
    unsupported(
        auth.revoke_user_sessions(&user.id).await.map(drop),
        Capability::SessionManagement,
    );
    unsupported(
        auth.request_password_reset("ada@example.com", &RequestContext::default())
            .await,
        Capability::OneTimeTokens,
    );
    unsupported(
        auth.resend_verification("ada@example.com", &RequestContext::default())
            .await,
        Capability::OneTimeTokens,
    );
    unsupported(
        auth.send_verification_email(&user).await,
        Capability::OneTimeTokens,
    );
    unsupported(
        auth.unlock_account("ada@example.com").await.map(drop),
        Capability::AbuseCounters,
    );
}

#[tokio::test]
async fn pg_store_offers_every_capability() {
    let db = TestDb::new().await;
    let auth = engine(&db).await;
    for capability in [
        Capability::SessionManagement,
        Capability::OneTimeTokens,
        Capability::AbuseCounters,
    ] {
        assert!(auth.supports(capability), "{capability}");
    }
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    assert!(store.clone().session_management().is_some());
    assert!(store.clone().one_time_tokens().is_some());
    assert!(store.abuse_counters().is_some());
}

#[tokio::test]
async fn an_unsupported_route_answers_501_unsupported() {
    let db = TestDb::new().await;
    let auth = Auth::new(core_options(&db).await).unwrap();
    let app = axum::Router::new().nest("/auth", auth.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/auth/request-password-reset"))
        .header("x-authingo-client", "true")
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 501);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported", "{body}");
    server.abort();
}
