//! The application under test: the router under a prefix, and three routes of the user's own.

use authingo::Auth;
use authingo::http::CurrentUser;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::server::TestServer;
use crate::support::{TestDb, engine};

/// The routes nested under `prefix`, plus three routes of "the user's own":
/// `/api/me` behind `require_auth()` (reads `Extension<CurrentUser>`), `/api/profile` with the
/// `CurrentUser` extractor and `Auth` as state, `/api/whoami` with `Option<CurrentUser>`.
pub(super) fn app(auth: &Auth, prefix: &str) -> Router {
    Router::new()
        .nest(prefix, auth.router())
        .route("/api/me", get(me).layer(auth.require_auth()))
        .route("/api/profile", get(profile))
        .route("/api/whoami", get(whoami))
        .with_state(auth.clone())
}

pub(super) fn describe(current: &CurrentUser) -> Value {
    json!({
        "user_id": current.user.id,
        "email": current.user.email,
        "session_id": current.session.id,
        "session_user_id": current.session.user_id,
    })
}

pub(super) async fn me(Extension(current): Extension<CurrentUser>) -> Json<Value> {
    Json(describe(&current))
}

pub(super) async fn profile(current: CurrentUser) -> Json<Value> {
    Json(describe(&current))
}

pub(super) async fn whoami(current: Option<CurrentUser>) -> Json<Value> {
    Json(json!({ "user_id": current.map(|current| current.user.id) }))
}

/// A server with the default options, the routes under `/api/auth`.
pub(super) async fn default_server(db: &TestDb) -> TestServer {
    let auth = engine(db).await;
    TestServer::start(app(&auth, "/api/auth")).await
}
