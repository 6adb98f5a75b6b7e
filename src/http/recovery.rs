//! The recovery and verification routes: `POST /send-verification-email`,
//! `/resend-verification`, `/verify-email`, `/request-password-reset`, `/reset-password`,
//! `/change-email`, `/confirm-email` and `/cancel-email-change`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::client::Client;
use super::error::ApiError;
use super::extract::{ApiJson, ClientHeader, CurrentUser, FreshUser};
use super::views::{SuccessBody, UserBody};
use crate::auth::Auth;

fn success() -> Response {
    Json(SuccessBody { success: true }).into_response()
}

#[derive(Deserialize)]
pub(crate) struct TokenBody {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub(crate) struct EmailBody {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub(crate) struct ResetBody {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

#[derive(Deserialize)]
pub(crate) struct NewEmailBody {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_email: String,
}

/// Mails the signed-in user a verification link.
pub(crate) async fn send_verification_email(
    State(auth): State<Auth>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    auth.send_verification_email(&current.user).await?;
    Ok(success())
}

/// Mails a new verification link to an unverified account's address, without a session: the
/// same answer whether or not the address has an account.
pub(crate) async fn resend_verification(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, ApiError> {
    auth.resend_verification(&body.email, &client.context(true))
        .await?;
    Ok(success())
}

/// Verifies the address a link was sent to.
pub(crate) async fn verify_email(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    let user = auth
        .verify_email(&body.token, &client.context(true))
        .await?;
    Ok(Json(UserBody {
        user: (&user).into(),
    })
    .into_response())
}

/// Starts a password reset: the same answer whether or not the address has an account.
pub(crate) async fn request_password_reset(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, ApiError> {
    auth.request_password_reset(&body.email, &client.context(true))
        .await?;
    Ok(success())
}

/// Sets a new password with a reset link's token; every session ends, nobody is signed in.
pub(crate) async fn reset_password(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Response, ApiError> {
    auth.reset_password(&body.token, &body.new_password, &client.context(true))
        .await?;
    Ok(success())
}

/// Mails a link to the new address and a notice with a cancel link to the current one; needs a
/// fresh session and the current password.
pub(crate) async fn change_email(
    State(auth): State<Auth>,
    FreshUser(current): FreshUser,
    client: Client,
    ApiJson(body): ApiJson<NewEmailBody>,
) -> Result<Response, ApiError> {
    auth.request_email_change(
        &current,
        &body.current_password,
        &body.new_email,
        &client.context(true),
    )
    .await?;
    Ok(success())
}

/// Cancels a pending change of email with the link mailed to the current address.
pub(crate) async fn cancel_email_change(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    auth.cancel_email_change(&body.token, &client.context(true))
        .await?;
    Ok(success())
}

/// Moves the account to the address a change-of-email link was sent to.
pub(crate) async fn confirm_email(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    let user = auth
        .confirm_email_change(&body.token, &client.context(true))
        .await?;
    Ok(Json(UserBody {
        user: (&user).into(),
    })
    .into_response())
}
