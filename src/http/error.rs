//! The one table from errors to HTTP statuses and JSON bodies.

use std::fmt;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::error::InputReason;

/// Seconds a client is told to wait before retrying when the store is unavailable.
const RETRY_AFTER_SECS: &str = "5";
/// Seconds a client is told to wait before retrying when the hashing queue is full.
const BUSY_RETRY_AFTER_SECS: &str = "1";

/// An error answered over HTTP: the engine's, or one found in the request itself.
///
/// The body is `{"error": code, "message": text}` (plus `"field"` for invalid input); it never
/// holds a database message, a hash or a token. Server-side failures are logged instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The engine refused or failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The request lacks `X-Authingo-Client: true` (the anti-CSRF header).
    #[error("missing the X-Authingo-Client: true header")]
    MissingClientHeader,
    /// The request carries no session cookie.
    #[error("not signed in")]
    NoSession,
    /// The body is not JSON, or not of the expected shape.
    #[error("the request body is not valid JSON of the expected shape")]
    MalformedJson,
    /// An object of the body names a key twice (at any depth): which value counts would depend
    /// on who reads it.
    #[error("the request body names a key twice in one object")]
    DuplicateKey,
    /// The body is not declared as JSON.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// No session of the signed-in user has this id (another user's counts as none).
    #[error("no such session")]
    SessionNotFound,
    /// No route has this path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("this route does not take this method")]
    MethodNotAllowed,
}

impl ApiError {
    /// The status and the stable, machine-readable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Auth(err) => match err {
                AuthError::InvalidInput {
                    reason: InputReason::TooCommon,
                    ..
                } => (StatusCode::BAD_REQUEST, "password_too_common"),
                AuthError::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "invalid_input"),
                AuthError::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
                AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
                AuthError::InvalidSession => (StatusCode::UNAUTHORIZED, "invalid_session"),
                AuthError::InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token"),
                AuthError::EmailNotVerified => (StatusCode::FORBIDDEN, "email_not_verified"),
                AuthError::ReauthenticationRequired => {
                    (StatusCode::FORBIDDEN, "reauthentication_required")
                }
                AuthError::TooManyRequests { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
                }
                AuthError::AccountLocked => (StatusCode::TOO_MANY_REQUESTS, "account_locked"),
                AuthError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
                AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                AuthError::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
                AuthError::TwoFactorRequired => (StatusCode::UNAUTHORIZED, "two_factor_required"),
                AuthError::InvalidChallenge => (StatusCode::UNAUTHORIZED, "invalid_challenge"),
                AuthError::InvalidCode => (StatusCode::UNAUTHORIZED, "invalid_code"),
                AuthError::TwoFactorNotEnabled => {
                    (StatusCode::BAD_REQUEST, "two_factor_not_enabled")
                }
                AuthError::TwoFactorAlreadyEnabled => {
                    (StatusCode::CONFLICT, "two_factor_already_enabled")
                }
                AuthError::NoEncryptionKey => (StatusCode::NOT_IMPLEMENTED, "no_encryption_key"),
                AuthError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            Self::MissingClientHeader => (StatusCode::FORBIDDEN, "missing_client_header"),
            Self::NoSession => (StatusCode::UNAUTHORIZED, "no_session"),
            Self::MalformedJson | Self::DuplicateKey => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }
}

/// An error and its sources on one line, for the log: each source is added unless its message is
/// already in the text (most errors of the crate include their cause's), so that the line says
/// why ("no connection within 5s; … connection refused"), not only what failed.
struct Causes<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(err) = source {
            let message = err.to_string();
            if !text.contains(&message) {
                text.push_str(": ");
                text.push_str(&message);
            }
            source = err.source();
        }
        f.write_str(&text)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let field = match &self {
            Self::Auth(AuthError::InvalidInput { field, .. }) => Some(*field),
            _ => None,
        };
        let message = match &self {
            Self::Auth(AuthError::Unavailable(source)) => {
                tracing::warn!(error = %Causes(source), "store unavailable");
                "the service is temporarily unavailable".to_owned()
            }
            Self::Auth(AuthError::Internal(source)) => {
                tracing::error!(error = %Causes(&**source), "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(Body {
                error: code,
                message,
                field,
            }),
        )
            .into_response();
        let retry_after = match &self {
            Self::Auth(AuthError::TooManyRequests { retry_after }) => {
                // Whole seconds, rounded up, and at least one: never "retry now".
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(HeaderValue::from(secs.max(1)))
            }
            Self::Auth(AuthError::Busy) => Some(HeaderValue::from_static(BUSY_RETRY_AFTER_SECS)),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                Some(HeaderValue::from_static(RETRY_AFTER_SECS))
            }
            _ => None,
        };
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
