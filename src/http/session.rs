//! The session routes: `GET /session`, `POST /refresh` and `POST /sign-out`.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use super::client::Client;
use super::cookies::{Cookies, Mount, RequestCookies};
use super::error::ApiError;
use super::extract::{ClientHeader, CurrentUser, authenticate};
use super::views::{SessionBody, SuccessBody, UserBody, UserView};
use crate::auth::{Auth, AuthError, SignedIn};
use crate::store::Capability;
use axum_extra::extract::CookieJar;

/// The response to a sign-up, sign-in or refresh: the user, both cookies set, and the device
/// cookie (and trusted-device cookie) a sign-in gives.
pub(crate) fn signed_in(cookies: &Cookies<'_>, signed_in: &SignedIn) -> Response {
    signed_in_with(cookies, signed_in, CookieJar::new())
}

/// [`signed_in`], with the cookies of `jar` too.
pub(crate) fn signed_in_with(
    cookies: &Cookies<'_>,
    signed_in: &SignedIn,
    mut jar: CookieJar,
) -> Response {
    for cookie in cookies.issue(&signed_in.tokens).iter() {
        jar = jar.add(cookie.clone());
    }
    if let Some(device) = &signed_in.device {
        jar = cookies.add_device(jar, device);
    }
    if let Some(trust) = &signed_in.trusted_device {
        jar = cookies.add_trusted_device(jar, trust);
    }
    (
        jar,
        Json(UserBody {
            user: (&signed_in.user).into(),
        }),
    )
        .into_response()
}

/// The session of the access cookie. A 401 here clears no cookie: the client answers it with a
/// refresh, and the access cookie must stay so that sign-out can still find the session.
pub(crate) async fn session(
    State(auth): State<Auth>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let current: CurrentUser = authenticate(&auth, &parts).await?;
    let mut user = UserView::from(&current.user);
    if auth.supports(Capability::SecondFactors) {
        user = user.with_two_factor(auth.two_factor_enabled(&current.user.id).await?);
    }
    Ok(Json(SessionBody {
        user,
        session: (&current.session).into(),
    })
    .into_response())
}

/// Rotates both tokens. An unknown, expired or replayed refresh token expires both cookies; a
/// store failure keeps them, so the client can try again.
pub(crate) async fn refresh(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    client: Client,
    jar: RequestCookies,
) -> Response {
    let cookies = mount.cookies(&auth);
    let Some(token) = cookies.refresh_token(&jar) else {
        return (cookies.expire(), ApiError::NoSession).into_response();
    };
    match auth.refresh(token, &client.context(true)).await {
        Ok(refreshed) => signed_in(&cookies, &refreshed),
        Err(err @ AuthError::InvalidSession) => {
            (cookies.expire(), ApiError::from(err)).into_response()
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
    jar: RequestCookies,
) -> Result<Response, ApiError> {
    let cookies = mount.cookies(&auth);
    let mut ended = false;
    if let Some(token) = cookies.session_token(&jar) {
        ended = auth.sign_out(token).await?;
    }
    if !ended && let Some(token) = cookies.refresh_token(&jar) {
        auth.sign_out(token).await?;
    }
    Ok((cookies.expire(), Json(SuccessBody { success: true })).into_response())
}
