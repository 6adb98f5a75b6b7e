//! Row types: what Diesel reads from and writes to `users` and `sessions` through the query
//! builder, the rows of the fixed statements that read a session together with its user, and
//! their conversions to and from the public records.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;

use super::schema::{sessions, users};
use crate::model::{Session, SessionWithUser, User};
use crate::token::TokenDigest;

/// A user read with the query builder (by id, or as an update returns it), or by position from a
/// fixed statement's row (`UserSql` in `fixed.rs`).
#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Pg))]
pub(crate) struct UserRecord {
    id: String,
    pub(crate) email: String,
    name: String,
    password_hash: String,
    email_verified: Option<bool>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl From<UserRecord> for User {
    fn from(row: UserRecord) -> Self {
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            password_hash: row.password_hash,
            email_verified: row.email_verified.unwrap_or(false),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users, check_for_backend(Pg))]
pub(crate) struct NewUserRow<'a> {
    id: &'a str,
    email: &'a str,
    name: &'a str,
    password_hash: &'a str,
    email_verified: bool,
    // Never `Option`: Diesel would write `DEFAULT` for `None`, giving the insert a second text
    // and a second prepared statement.
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl<'a> From<&'a User> for NewUserRow<'a> {
    fn from(user: &'a User) -> Self {
        let now = Utc::now();
        Self {
            id: &user.id,
            email: &user.email,
            name: &user.name,
            password_hash: &user.password_hash,
            email_verified: user.email_verified,
            created_at: user.created_at.unwrap_or(now),
            updated_at: user.updated_at.unwrap_or(now),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = sessions, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct NewSessionRow<'a> {
    id: &'a str,
    user_id: &'a str,
    token: &'a str,
    refresh_token: &'a str,
    expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    // Never `Option`, as in `NewUserRow`.
    created_at: DateTime<Utc>,
    // `None` binds NULL (no bound), not `DEFAULT`: one statement text either way.
    absolute_expires_at: Option<DateTime<Utc>>,
    persistent: bool,
    user_agent: Option<&'a str>,
    ip_address: Option<&'a str>,
}

impl<'a> From<&'a Session> for NewSessionRow<'a> {
    fn from(session: &'a Session) -> Self {
        Self {
            id: &session.id,
            user_id: &session.user_id,
            token: session.token.as_str(),
            refresh_token: session.refresh_token.as_str(),
            expires_at: session.expires_at,
            refresh_expires_at: session.refresh_expires_at,
            created_at: session.created_at.unwrap_or_else(Utc::now),
            absolute_expires_at: session.absolute_expires_at,
            persistent: session.persistent,
            user_agent: session.user_agent.as_deref(),
            ip_address: session.ip_address.as_deref(),
        }
    }
}

/// A session as a user's list shows it: every column but the token digests' history and the
/// rotation secret.
#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(Pg))]
pub(crate) struct SessionRow {
    id: String,
    user_id: String,
    token: String,
    refresh_token: String,
    expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    created_at: Option<DateTime<Utc>>,
    rotated_at: Option<DateTime<Utc>>,
    absolute_expires_at: Option<DateTime<Utc>>,
    persistent: bool,
    user_agent: Option<String>,
    ip_address: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            token: TokenDigest::from_stored(row.token),
            refresh_token: TokenDigest::from_stored(row.refresh_token),
            expires_at: row.expires_at,
            refresh_expires_at: row.refresh_expires_at,
            created_at: row.created_at,
            rotated_at: row.rotated_at,
            absolute_expires_at: row.absolute_expires_at,
            persistent: row.persistent,
            user_agent: row.user_agent,
            ip_address: row.ip_address,
        }
    }
}

/// One row of `get_session.sql` or `refresh_session.sql`: a session and its user, read by
/// position (`(SessionSql, UserSql)` in `fixed.rs`).
#[derive(Queryable)]
pub(crate) struct SessionUserRow {
    pub(crate) session: SessionColumns,
    pub(crate) user: UserRecord,
}

/// A row of `replayed_session.sql`: the session and its user, with the last rotation's secret,
/// whether the token is the one that rotation replaced, and whether it is within the window.
#[derive(Queryable)]
pub(crate) struct ReplayedRow {
    pub(crate) found: SessionUserRow,
    pub(crate) rotation_secret: Option<String>,
    pub(crate) replaced_last: bool,
    pub(crate) within_grace: bool,
}

/// The session's columns in those rows, in the order the `.sql` files select them.
#[derive(Queryable)]
pub(crate) struct SessionColumns {
    session_id: String,
    token: String,
    refresh_token: String,
    expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    session_created_at: Option<DateTime<Utc>>,
    rotated_at: Option<DateTime<Utc>>,
    absolute_expires_at: Option<DateTime<Utc>>,
    persistent: bool,
    user_agent: Option<String>,
    ip_address: Option<String>,
}

impl From<SessionUserRow> for SessionWithUser {
    fn from(row: SessionUserRow) -> Self {
        let user = User::from(row.user);
        let session = row.session;
        Self {
            session: Session {
                id: session.session_id,
                user_id: user.id.clone(),
                token: TokenDigest::from_stored(session.token),
                refresh_token: TokenDigest::from_stored(session.refresh_token),
                expires_at: session.expires_at,
                refresh_expires_at: session.refresh_expires_at,
                created_at: session.session_created_at,
                rotated_at: session.rotated_at,
                absolute_expires_at: session.absolute_expires_at,
                persistent: session.persistent,
                user_agent: session.user_agent,
                ip_address: session.ip_address,
            },
            user,
        }
    }
}
