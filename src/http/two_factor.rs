//! The second factor's routes: `GET /two-factor`, `POST /two-factor/enable`,
//! `POST /two-factor/confirm`, `POST /two-factor/verify`, `POST /two-factor/disable` and
//! `POST /two-factor/recovery-codes`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::client::Client;
use super::cookies::{Mount, RequestCookies};
use super::error::ApiError;
use super::extract::{ApiJson, ClientHeader, CurrentUser, FreshUser};
use super::session::signed_in_with;
use super::views::SuccessBody;
use crate::auth::{
    Auth, AuthError, RecoveryCodes, SecondFactorCode, TotpEnrolment, TwoFactorProof,
};
use crate::error::InputReason;
use axum_extra::extract::CookieJar;

/// `{"enabled", "recovery_codes_left"}`.
#[derive(Serialize)]
struct StatusBody {
    enabled: bool,
    recovery_codes_left: u64,
}

/// Whether the signed-in user's account has a second factor.
pub(crate) async fn status(
    State(auth): State<Auth>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    let status = auth.two_factor_status(&current.user.id).await?;
    Ok(Json(StatusBody {
        enabled: status.enabled,
        recovery_codes_left: status.recovery_codes_left,
    })
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct PasswordBody {
    #[serde(default)]
    current_password: String,
}

/// `{"secret", "otpauth_uri", "qr_svg"}`: answered once.
#[derive(Serialize)]
struct EnrolmentBody<'a> {
    secret: &'a str,
    otpauth_uri: &'a str,
    qr_svg: &'a str,
}

impl<'a> From<&'a TotpEnrolment> for EnrolmentBody<'a> {
    fn from(enrolment: &'a TotpEnrolment) -> Self {
        Self {
            secret: &enrolment.secret,
            otpauth_uri: &enrolment.otpauth_uri,
            qr_svg: &enrolment.qr_svg,
        }
    }
}

/// Starts enrolling an authenticator app. Needs a fresh session and the password.
pub(crate) async fn enable(
    State(auth): State<Auth>,
    _: ClientHeader,
    FreshUser(current): FreshUser,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Response, ApiError> {
    let enrolment = auth
        .enable_two_factor(&current, &body.current_password)
        .await?;
    Ok(Json(EnrolmentBody::from(&enrolment)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CodeBody {
    #[serde(default)]
    code: String,
}

/// `{"recovery_codes": [...]}`: answered once.
#[derive(Serialize)]
struct RecoveryCodesBody<'a> {
    recovery_codes: &'a [String],
}

fn recovery_codes(codes: &RecoveryCodes) -> Response {
    Json(RecoveryCodesBody {
        recovery_codes: &codes.0,
    })
    .into_response()
}

/// Confirms the enrolment with a code of the app; answers the recovery codes. Needs a fresh
/// session.
pub(crate) async fn confirm(
    State(auth): State<Auth>,
    _: ClientHeader,
    FreshUser(current): FreshUser,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, ApiError> {
    let codes = auth.confirm_two_factor(&current, &body.code).await?;
    Ok(recovery_codes(&codes))
}

#[derive(Deserialize)]
pub(crate) struct VerifyBody {
    code: Option<String>,
    recovery_code: Option<String>,
    #[serde(default)]
    trust_device: bool,
}

/// Answers the sign-in's challenge (its cookie) with `code` or `recovery_code`: the session's
/// cookies, as a sign-in sets them, and the challenge cookie expired. A dead challenge expires
/// its cookie too.
pub(crate) async fn verify(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    client: Client,
    jar: RequestCookies,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Response {
    let cookies = mount.cookies(&auth);
    let code = match (&body.code, &body.recovery_code) {
        (Some(code), None) => SecondFactorCode::Totp(code),
        (None, Some(code)) => SecondFactorCode::RecoveryCode(code),
        _ => {
            return ApiError::Auth(AuthError::InvalidInput {
                field: "code",
                reason: InputReason::Empty,
            })
            .into_response();
        }
    };
    let Some(challenge) = cookies.two_factor(&jar) else {
        return ApiError::from(AuthError::InvalidChallenge).into_response();
    };
    let context = client
        .context(true)
        .device(cookies.device(&jar))
        .trusted_device(cookies.trusted_device(&jar));
    match auth
        .verify_two_factor(challenge, code, body.trust_device, &context)
        .await
    {
        Ok(outcome) => signed_in_with(
            &cookies,
            &outcome,
            cookies.expire_two_factor(CookieJar::new()),
        ),
        Err(err @ AuthError::InvalidChallenge) => (
            cookies.expire_two_factor(CookieJar::new()),
            ApiError::from(err),
        )
            .into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct DisableBody {
    current_password: Option<String>,
    code: Option<String>,
}

/// Turns the second factor off, proved by the password or a code. Needs a fresh session.
pub(crate) async fn disable(
    State(auth): State<Auth>,
    _: ClientHeader,
    FreshUser(current): FreshUser,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<Response, ApiError> {
    let proof = match (&body.current_password, &body.code) {
        (Some(password), None) => TwoFactorProof::Password(password),
        (None, Some(code)) => TwoFactorProof::Totp(code),
        _ => {
            return Err(ApiError::Auth(AuthError::InvalidInput {
                field: "code",
                reason: InputReason::Empty,
            }));
        }
    };
    auth.disable_two_factor(&current, proof).await?;
    Ok(Json(SuccessBody { success: true }).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TokenBody {
    #[serde(default)]
    token: String,
}

/// The link mailed when a factor was added: removes it and ends every session.
pub(crate) async fn remove(
    State(auth): State<Auth>,
    _: ClientHeader,
    client: Client,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    auth.remove_two_factor_by_link(&body.token, &client.context(true))
        .await?;
    Ok(Json(SuccessBody { success: true }).into_response())
}

/// New recovery codes, proved by a code of the app. Needs a fresh session.
pub(crate) async fn regenerate(
    State(auth): State<Auth>,
    _: ClientHeader,
    FreshUser(current): FreshUser,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, ApiError> {
    let codes = auth.regenerate_recovery_codes(&current, &body.code).await?;
    Ok(recovery_codes(&codes))
}
