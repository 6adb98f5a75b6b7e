//! What the routes answer with: the wire shapes of users and sessions, apart from the domain types
//! so that a field added to [`User`] or [`Session`] is never sent by accident.
//!
//! Field names are snake_case, as the Go library's React client reads them. No token, digest or
//! password hash has a field here. [`UserView`] and [`SessionView`] are public so that an
//! application's own routes can show a user exactly as the crate's routes do.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Session, User};

/// A user as the routes show it: `id`, `email`, `name`, `email_verified`, `created_at`,
/// `updated_at`, and on `GET /session` `two_factor_enabled`. Serialize it, e.g.
/// `Json(UserView::from(&current.user))`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UserView<'a> {
    id: &'a str,
    email: &'a str,
    name: &'a str,
    email_verified: bool,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    two_factor_enabled: Option<bool>,
}

impl UserView<'_> {
    /// The view with `two_factor_enabled` (see [`Auth::two_factor_status`](crate::Auth::two_factor_status)).
    #[must_use]
    pub fn with_two_factor(mut self, enabled: bool) -> Self {
        self.two_factor_enabled = Some(enabled);
        self
    }
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: &user.id,
            email: &user.email,
            name: &user.name,
            email_verified: user.email_verified,
            created_at: user.created_at,
            updated_at: user.updated_at,
            two_factor_enabled: None,
        }
    }
}

/// A session as the routes show it: `id`, `user_id`, `expires_at`, `refresh_expires_at`,
/// `created_at`; never a token or a digest.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SessionView<'a> {
    id: &'a str,
    user_id: &'a str,
    expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    created_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a Session> for SessionView<'a> {
    fn from(session: &'a Session) -> Self {
        Self {
            id: &session.id,
            user_id: &session.user_id,
            expires_at: session.expires_at,
            refresh_expires_at: session.refresh_expires_at,
            created_at: session.created_at,
        }
    }
}

/// `{"user": …}`: sign-up, sign-in and refresh.
#[derive(Serialize)]
pub(crate) struct UserBody<'a> {
    pub(crate) user: UserView<'a>,
}

/// `{"user": …, "session": …}`: the session route.
#[derive(Serialize)]
pub(crate) struct SessionBody<'a> {
    pub(crate) user: UserView<'a>,
    pub(crate) session: SessionView<'a>,
}

/// `{"verification_sent": true}`: a sign-up while verification is required.
#[derive(Serialize)]
pub(crate) struct VerificationSentBody {
    pub(crate) verification_sent: bool,
}

/// `{"two_factor_required": true}`: a sign-in waiting for its second factor.
#[derive(Serialize)]
pub(crate) struct TwoFactorRequiredBody {
    pub(crate) two_factor_required: bool,
}

/// `{"success": true}`: sign-out.
#[derive(Serialize)]
pub(crate) struct SuccessBody {
    pub(crate) success: bool,
}

/// One entry of `GET /sessions`: where and when a session signed in, when it was last used,
/// and whether it is the one asking. Never a token or a digest.
#[derive(Serialize)]
pub(crate) struct SessionListEntry<'a> {
    id: &'a str,
    created_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    user_agent: Option<&'a str>,
    ip: Option<&'a str>,
    current: bool,
}

/// `{"sessions": [...]}`.
#[derive(Serialize)]
pub(crate) struct SessionListView<'a> {
    sessions: Vec<SessionListEntry<'a>>,
}

impl<'a> SessionListView<'a> {
    pub(crate) fn new(sessions: &'a [Session], current_id: &str) -> Self {
        Self {
            sessions: sessions
                .iter()
                .map(|session| SessionListEntry {
                    id: &session.id,
                    created_at: session.created_at,
                    last_used_at: session.last_used_at(),
                    user_agent: session.user_agent.as_deref(),
                    ip: session.ip_address.as_deref(),
                    current: session.id == current_id,
                })
                .collect(),
        }
    }
}
