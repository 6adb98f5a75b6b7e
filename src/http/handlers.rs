//! The five routes.

use axum::Json;
use axum::extract::{OriginalUri, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::cookies::Cookies;
use super::error::ApiError;
use super::extract::{ApiJson, ClientHeader, CurrentUser, authenticate};
use crate::auth::{Auth, AuthError};
use crate::model::{Session, User};

#[derive(Deserialize)]
pub(crate) struct SignUpBody {
    // Missing fields read as empty, so that the engine names the field in its error.
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub(crate) struct SignInBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Serialize)]
struct UserBody<'a> {
    user: &'a User,
}

#[derive(Serialize)]
struct SessionBody<'a> {
    user: &'a User,
    session: &'a Session,
}

#[derive(Serialize)]
struct SuccessBody {
    success: bool,
}

fn cookies<'a>(auth: &'a Auth, original: &Uri, routed: &Uri) -> Cookies<'a> {
    Cookies::new(auth.http_options(), original, routed)
}

pub(crate) async fn sign_up(
    State(auth): State<Auth>,
    _: ClientHeader,
    OriginalUri(original): OriginalUri,
    routed: Uri,
    jar: CookieJar,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<Response, ApiError> {
    let signed_up = auth
        .sign_up(&body.email, &body.password, &body.name)
        .await?;
    let jar = cookies(&auth, &original, &routed).issue(jar, &signed_up.tokens);
    Ok((
        jar,
        Json(UserBody {
            user: &signed_up.user,
        }),
    )
        .into_response())
}

pub(crate) async fn sign_in(
    State(auth): State<Auth>,
    _: ClientHeader,
    OriginalUri(original): OriginalUri,
    routed: Uri,
    jar: CookieJar,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Response, ApiError> {
    let signed_in = auth.sign_in(&body.email, &body.password).await?;
    let jar = cookies(&auth, &original, &routed).issue(jar, &signed_in.tokens);
    Ok((
        jar,
        Json(UserBody {
            user: &signed_in.user,
        }),
    )
        .into_response())
}

/// The session of the access cookie. A 401 here clears no cookie: the client answers it with a
/// refresh, and the access cookie must stay so that sign-out can still find the session.
pub(crate) async fn session(
    State(auth): State<Auth>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let current: CurrentUser = authenticate(&auth, &parts).await?;
    Ok(Json(SessionBody {
        user: &current.user,
        session: &current.session,
    })
    .into_response())
}

/// Rotates both tokens. An unknown, expired or replayed refresh token expires both cookies; a
/// store failure keeps them, so the client can try again.
pub(crate) async fn refresh(
    State(auth): State<Auth>,
    _: ClientHeader,
    OriginalUri(original): OriginalUri,
    routed: Uri,
    jar: CookieJar,
) -> Response {
    let cookies = cookies(&auth, &original, &routed);
    let Some(token) = cookies.refresh_token(&jar) else {
        return (cookies.expire(jar), ApiError::NoSession).into_response();
    };
    match auth.refresh(token).await {
        Ok(refreshed) => {
            let jar = cookies.issue(jar, &refreshed.tokens);
            (
                jar,
                Json(UserBody {
                    user: &refreshed.user,
                }),
            )
                .into_response()
        }
        Err(err @ AuthError::InvalidSession) => {
            (cookies.expire(jar), ApiError::from(err)).into_response()
        }
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// Deletes the session of the access cookie, else of the refresh cookie, and expires both
/// cookies. If the store cannot be reached, nothing is cleared and the client may retry.
pub(crate) async fn sign_out(
    State(auth): State<Auth>,
    _: ClientHeader,
    OriginalUri(original): OriginalUri,
    routed: Uri,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    let cookies = cookies(&auth, &original, &routed);
    let mut ended = false;
    if let Some(token) = cookies.session_token(&jar) {
        ended = auth.sign_out(token).await?;
    }
    if !ended {
        if let Some(token) = cookies.refresh_token(&jar) {
            auth.sign_out(token).await?;
        }
    }
    Ok((cookies.expire(jar), Json(SuccessBody { success: true })).into_response())
}
