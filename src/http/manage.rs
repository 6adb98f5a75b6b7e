//! The routes that manage sessions: `GET /sessions`, `POST /sessions/revoke`,
//! `POST /sessions/revoke-others`, `POST /sign-out-everywhere` and `POST /change-password`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::cookies::Mount;
use super::error::ApiError;
use super::extract::{ApiJson, ClientHeader, CurrentUser, FreshUser};
use super::views::{SessionListView, SuccessBody};
use crate::auth::Auth;

/// The signed-in user's sessions, the current one marked.
pub(crate) async fn list(
    State(auth): State<Auth>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    let sessions = auth.list_sessions(&current.user).await?;
    Ok(Json(SessionListView::new(&sessions, &current.session.id)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct RevokeBody {
    #[serde(default)]
    id: String,
}

/// Ends one of the user's sessions; another user's id answers as an unknown one (404). Ending
/// the current session this way also expires its cookies.
pub(crate) async fn revoke(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    current: CurrentUser,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Response, ApiError> {
    if !auth.revoke_session(&current.user, &body.id).await? {
        return Err(ApiError::SessionNotFound);
    }
    let success = Json(SuccessBody { success: true });
    if body.id == current.session.id {
        return Ok((mount.cookies(&auth).expire(), success).into_response());
    }
    Ok(success.into_response())
}

#[derive(Serialize)]
struct RevokedBody {
    revoked: u64,
}

/// Ends every other session of the user; the current one stays.
pub(crate) async fn revoke_others(
    State(auth): State<Auth>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    let revoked = auth.revoke_other_sessions(&current).await?;
    Ok(Json(RevokedBody { revoked }).into_response())
}

/// Ends every session of the user, this one included, and expires both cookies. Needs a fresh
/// session.
pub(crate) async fn sign_out_everywhere(
    State(auth): State<Auth>,
    mount: Mount,
    FreshUser(current): FreshUser,
) -> Result<Response, ApiError> {
    auth.revoke_all_sessions(&current).await?;
    Ok((
        mount.cookies(&auth).expire(),
        Json(SuccessBody { success: true }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct ChangePasswordBody {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default = "revoke_by_default")]
    revoke_other_sessions: bool,
}

fn revoke_by_default() -> bool {
    true
}

/// Changes the password; by default every other session ends. Needs a fresh session.
pub(crate) async fn change_password(
    State(auth): State<Auth>,
    FreshUser(current): FreshUser,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> Result<Response, ApiError> {
    auth.change_password(
        &current,
        &body.current_password,
        &body.new_password,
        body.revoke_other_sessions,
    )
    .await?;
    Ok(Json(SuccessBody { success: true }).into_response())
}
