//! The HTTP face of [`Auth`] on axum: AuthInGo's five routes and those of session management and
//! recovery by mail, the `RequireAuth` layer and the `CurrentUser` extractor.
//!
//! | route | body | success |
//! |---|---|---|
//! | `POST /sign-up` | `{"email", "password", "name", "remember_me"?}` | `{"user": …}`, both cookies set; with verification required `{"verification_sent": true}` and no cookie, new address or taken |
//! | `POST /sign-in` | `{"email", "password", "remember_me"?}` | `{"user": …}`, both cookies set; for an account with a second factor `{"two_factor_required": true}` and the challenge cookie only (unless the browser is trusted) |
//! | `GET /session` | — | `{"user": …, "session": …}` |
//! | `POST /refresh` | — | `{"user": …}`, both cookies rotated |
//! | `POST /sign-out` | — | `{"success": true}`, both cookies expired; the session ends, also when a refresh replaced the access cookie within the grace window |
//! | `GET /sessions` | — | `{"sessions": [{"id", "created_at", "last_used_at", "user_agent", "ip", "current"}]}`, most recently used first |
//! | `POST /sessions/revoke` | `{"id"}` | `{"success": true}` (404 `session_not_found` for an id not the user's); the current session's cookies expired if it was this one |
//! | `POST /sessions/revoke-others` | — | `{"revoked": n}`; the current session stays |
//! | `POST /sign-out-everywhere` | — | `{"success": true}`, every session ended, both cookies expired; needs a fresh session |
//! | `POST /send-verification-email` | — | `{"success": true}`; a link to the signed-in user's address |
//! | `POST /resend-verification` | `{"email"}` | `{"success": true}`, whether or not the address has an account; a new link if it has one not yet verified |
//! | `POST /verify-email` | `{"token"}` | `{"user": …}`, the address verified |
//! | `POST /request-password-reset` | `{"email"}` | `{"success": true}`, whether or not the address has an account |
//! | `POST /reset-password` | `{"token", "new_password"}` | `{"success": true}`; every session and every other link ended, the address verified, nobody signed in |
//! | `POST /change-email` | `{"current_password", "new_email"}` | `{"success": true}`; a link to the new address, a notice with a cancel link to the current one; needs a fresh session and the password (401 `invalid_credentials`, counted as a failed sign-in) |
//! | `POST /confirm-email` | `{"token"}` | `{"user": …}` at its new, verified address, every other link ended (409 `email_taken` if taken meanwhile) |
//! | `POST /cancel-email-change` | `{"token"}` | `{"success": true}`; the pending change's link no longer works |
//! | `GET /two-factor` | — | `{"enabled", "recovery_codes_left"}` |
//! | `POST /two-factor/enable` | `{"current_password"}` | `{"secret", "otpauth_uri", "qr_svg"}`, once; nothing is on until confirmed; needs a fresh session (409 `two_factor_already_enabled`, 501 `no_encryption_key`) |
//! | `POST /two-factor/confirm` | `{"code"}` | `{"recovery_codes": [10 codes]}`, once; every other session ended; needs a fresh session (401 `invalid_code`) |
//! | `POST /two-factor/verify` | `{"code"}` or `{"recovery_code"}`, `"trust_device"`? | `{"user": …}`, both cookies set, the challenge cookie expired (401 `invalid_code`, 401 `invalid_challenge`: sign in again) |
//! | `POST /two-factor/disable` | `{"current_password"}` or `{"code"}` | `{"success": true}`; needs a fresh session |
//! | `POST /two-factor/recovery-codes` | `{"code"}` | `{"recovery_codes": [10 codes]}`, the old ones void; needs a fresh session |
//! | `POST /two-factor/remove` | `{"token"}` | `{"success": true}`: the link mailed when a factor was added removes it and ends every session |
//! | `POST /change-password` | `{"current_password", "new_password", "revoke_other_sessions"?}` | `{"success": true}`; other sessions end unless `false`; needs a fresh session |
//!
//! Every route requires the header `X-Authingo-Client: true` (403 without); the session routes
//! a valid session cookie (401 without); "fresh" ones a sign-in younger than
//! [`Options::fresh_age`](crate::Options::fresh_age) (403 `reauthentication_required`).
//! The client's address recorded at sign-in is the TCP peer's when the app is served with
//! `into_make_service_with_connect_info::<SocketAddr>()` (none otherwise), or, from a peer in
//! [`HttpOptions::trusted_proxies`](crate::HttpOptions), the one its
//! [`forwarded_header`](crate::HttpOptions::forwarded_header) names. Errors are
//! `{"error": code, "message": text}` with the status of [`ApiError::status_and_code`], including
//! an unknown path below the mount point (404) and a wrong method (405). Sign-up, sign-in and
//! refresh count against the client address's rate limits (429 `too_many_requests` with
//! `Retry-After`), sign-in against the email's failed attempts (429, then `account_locked`), and
//! the hashing routes answer 503 `busy` when the hashing queue is full. Every response carries
//! `Cache-Control: no-store`: each one is about one user's session.

mod account;
mod client;
mod cookies;
mod error;
mod extract;
mod forwarded;
mod layer;
mod manage;
mod recovery;
mod session;
mod two_factor;
mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

pub use error::ApiError;
pub use extract::{CurrentUser, FreshUser};
pub use layer::{RequireAuth, RequireAuthLayer};
pub use views::{SessionView, UserView};

use crate::auth::Auth;

impl Auth {
    /// The routes, to nest under a prefix of your choice:
    /// `Router::new().nest("/api/auth", auth.router())`. The refresh cookie's path follows the
    /// prefix (`/api/auth/refresh`) unless [`HttpOptions::refresh_path`](crate::HttpOptions)
    /// says otherwise.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/sign-up", post(account::sign_up))
            .route("/sign-in", post(account::sign_in))
            .route("/session", get(session::session))
            .route("/refresh", post(session::refresh))
            .route("/sign-out", post(session::sign_out))
            .route("/sessions", get(manage::list))
            .route("/sessions/revoke", post(manage::revoke))
            .route("/sessions/revoke-others", post(manage::revoke_others))
            .route("/sign-out-everywhere", post(manage::sign_out_everywhere))
            .route("/change-password", post(manage::change_password))
            .route(
                "/send-verification-email",
                post(recovery::send_verification_email),
            )
            .route("/resend-verification", post(recovery::resend_verification))
            .route("/verify-email", post(recovery::verify_email))
            .route(
                "/request-password-reset",
                post(recovery::request_password_reset),
            )
            .route("/reset-password", post(recovery::reset_password))
            .route("/change-email", post(recovery::change_email))
            .route("/confirm-email", post(recovery::confirm_email))
            .route("/cancel-email-change", post(recovery::cancel_email_change))
            .route("/two-factor", get(two_factor::status))
            .route("/two-factor/enable", post(two_factor::enable))
            .route("/two-factor/confirm", post(two_factor::confirm))
            .route("/two-factor/verify", post(two_factor::verify))
            .route("/two-factor/disable", post(two_factor::disable))
            .route("/two-factor/recovery-codes", post(two_factor::regenerate))
            .route("/two-factor/remove", post(two_factor::remove))
            .fallback(async || ApiError::NotFound)
            .method_not_allowed_fallback(async || ApiError::MethodNotAllowed)
            .layer(DefaultBodyLimit::max(self.http_options().max_body_bytes))
            .layer(axum::middleware::map_response(no_store))
            .with_state(self.clone())
    }

    /// A layer for your own routes that lets only signed-in requests through (see
    /// [`RequireAuthLayer`]); handlers then take a [`CurrentUser`] or
    /// `Extension<CurrentUser>`.
    pub fn require_auth(&self) -> RequireAuthLayer {
        RequireAuthLayer::new(self.clone())
    }
}

/// Keeps every answer of the routes out of shared and browser caches.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
