//! The five routes.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::cookies::{Cookies, Mount};
use super::error::ApiError;
use super::extract::{ApiJson, ClientHeader, CurrentUser, authenticate};
use crate::auth::{Auth, AuthError, SignedIn};
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

/// The response to a sign-up, sign-in or refresh: the user, and both cookies set.
fn signed_in(cookies: &Cookies<'_>, jar: CookieJar, signed_in: &SignedIn) -> Response {
    let jar = cookies.issue(jar, &signed_in.tokens);
    (
        jar,
        Json(UserBody {
            user: &signed_in.user,
        }),
    )
        .into_response()
}

pub(crate) async fn sign_up(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    jar: CookieJar,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<Response, ApiError> {
    let signed_up = auth
        .sign_up(&body.email, &body.password, &body.name)
        .await?;
    Ok(signed_in(&mount.cookies(&auth), jar, &signed_up))
}

pub(crate) async fn sign_in(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    jar: CookieJar,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Response, ApiError> {
    let outcome = auth.sign_in(&body.email, &body.password).await?;
    Ok(signed_in(&mount.cookies(&auth), jar, &outcome))
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
    mount: Mount,
    jar: CookieJar,
) -> Response {
    let cookies = mount.cookies(&auth);
    let Some(token) = cookies.refresh_token(&jar) else {
        return (cookies.expire(jar), ApiError::NoSession).into_response();
    };
    match auth.refresh(token).await {
        Ok(refreshed) => signed_in(&cookies, jar, &refreshed),
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
    mount: Mount,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    let cookies = mount.cookies(&auth);
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
