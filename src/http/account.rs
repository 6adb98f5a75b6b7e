//! The account routes: `POST /sign-up` and `POST /sign-in`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use super::client::Client;
use super::cookies::{Mount, RequestCookies};
use super::error::ApiError;
use super::extract::{ApiJson, ClientHeader};
use super::session::signed_in;
use super::views::{TwoFactorRequiredBody, VerificationSentBody};
use crate::auth::{Auth, SignIn, SignUp};

#[derive(Deserialize)]
pub(crate) struct SignUpBody {
    // Missing fields read as empty, so that the engine names the field in its error.
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
    /// `false`: a session that ends with the browser session, and at most
    /// `Options::short_session_lifetime`.
    #[serde(default = "remember")]
    remember_me: bool,
}

#[derive(Deserialize)]
pub(crate) struct SignInBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default = "remember")]
    remember_me: bool,
}

/// Sessions are remembered unless the client says otherwise.
fn remember() -> bool {
    true
}

pub(crate) async fn sign_up(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    client: Client,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<Response, ApiError> {
    let signed_up = auth
        .sign_up(
            &body.email,
            &body.password,
            &body.name,
            &client.context(body.remember_me),
        )
        .await?;
    Ok(match signed_up {
        SignUp::SignedIn(signed_up) => signed_in(&mount.cookies(&auth), &signed_up),
        // The same answer for a new and a taken address; no cookie.
        SignUp::VerificationSent => Json(VerificationSentBody {
            verification_sent: true,
        })
        .into_response(),
    })
}

/// Signs in, counted on the browser's device cookie if it has one (see `SignInThrottle`), and
/// gives it a new one.
pub(crate) async fn sign_in(
    State(auth): State<Auth>,
    _: ClientHeader,
    mount: Mount,
    client: Client,
    jar: RequestCookies,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Response, ApiError> {
    let cookies = mount.cookies(&auth);
    let context = client
        .context(body.remember_me)
        .device(cookies.device(&jar));
    let context = context.trusted_device(cookies.trusted_device(&jar));
    Ok(
        match auth.sign_in(&body.email, &body.password, &context).await? {
            SignIn::SignedIn(outcome) => signed_in(&cookies, &outcome),
            // The password was right; the session waits for the second factor.
            SignIn::TwoFactorRequired(challenge) => (
                cookies.add_two_factor(&challenge),
                Json(TwoFactorRequiredBody {
                    two_factor_required: true,
                }),
            )
                .into_response(),
        },
    )
}
