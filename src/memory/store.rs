//! [`Store`] in memory: users, and sessions through their whole life.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::{MemoryStore, SessionRow, State, check_text, later, now, storable, stored, violation};
use crate::model::{RefreshOutcome, Session, SessionRotation, SessionWithUser, User};
use crate::store::{
    AbuseCounters, CleanupPace, OneTimeTokens, SecondFactors, SessionManagement, Store, StoreError,
};
use crate::token::TokenDigest;

fn check_user(user: &User) -> Result<(), StoreError> {
    check_text("id", &user.id)?;
    check_text("email", &user.email)?;
    check_text("name", &user.name)?;
    check_text("password_hash", &user.password_hash)
}

pub(super) fn check_session(session: &Session) -> Result<(), StoreError> {
    check_text("id", &session.id)?;
    check_text("user_id", &session.user_id)?;
    check_text("token", session.token.as_str())?;
    check_text("refresh_token", session.refresh_token.as_str())?;
    if let Some(user_agent) = &session.user_agent {
        check_text("user_agent", user_agent)?;
    }
    if let Some(ip_address) = &session.ip_address {
        check_text("ip_address", ip_address)?;
    }
    Ok(())
}

/// `user` as the insert stores it: times in microseconds, a missing one as now (the columns'
/// default).
fn new_user(user: &User, now: DateTime<Utc>) -> User {
    User {
        created_at: Some(user.created_at.map_or(now, stored)),
        updated_at: Some(user.updated_at.map_or(now, stored)),
        ..user.clone()
    }
}

/// `session` as the insert stores it, with no rotation yet.
pub(super) fn new_session(session: &Session, now: DateTime<Utc>) -> SessionRow {
    SessionRow {
        session: Session {
            expires_at: stored(session.expires_at),
            refresh_expires_at: stored(session.refresh_expires_at),
            created_at: Some(session.created_at.map_or(now, stored)),
            rotated_at: session.rotated_at.map(stored),
            absolute_expires_at: session.absolute_expires_at.map(stored),
            ..session.clone()
        },
        previous_refresh_token: None,
        previous_token: None,
        refresh_family: None,
        rotation_secret: None,
    }
}

impl State {
    /// The keys of `users`: the id first, then the email (as the primary key's index is
    /// checked before the email's).
    fn check_new_user(&self, user: &User) -> Result<(), StoreError> {
        if self.users.contains_key(&user.id) {
            return Err(violation("a user with this id exists (users_pkey)"));
        }
        if self.user_by_email(&user.email).is_some() {
            return Err(StoreError::DuplicateEmail);
        }
        Ok(())
    }

    /// The keys of `sessions` and its reference to `users`.
    pub(super) fn check_new_session(&self, session: &Session) -> Result<(), StoreError> {
        if self.sessions.contains_key(&session.id) {
            return Err(violation("a session with this id exists (sessions_pkey)"));
        }
        self.check_free_digests(&session.token, &session.refresh_token, None)?;
        if !self.users.contains_key(&session.user_id) {
            return Err(violation("no user has the session's user_id (foreign key)"));
        }
        Ok(())
    }

    /// The unique digests of `sessions`: no session but `except` holds `token` or `refresh`.
    fn check_free_digests(
        &self,
        token: &TokenDigest,
        refresh: &TokenDigest,
        except: Option<&str>,
    ) -> Result<(), StoreError> {
        let taken = self.sessions.iter().any(|(id, row)| {
            Some(id.as_str()) != except
                && (&row.session.token == token || &row.session.refresh_token == refresh)
        });
        if taken {
            return Err(violation("a session holds this token digest (unique key)"));
        }
        Ok(())
    }

    fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users.values().find(|user| user.email == email)
    }

    /// The row of `session_id` with its user, as the statements that join them return it.
    fn with_user(&self, session_id: &str) -> Option<SessionWithUser> {
        let row = self.sessions.get(session_id)?;
        let user = self.users.get(&row.session.user_id)?;
        Some(SessionWithUser {
            session: row.session.clone(),
            user: user.clone(),
        })
    }

    /// Deletes the sessions `remove` picks; says whether any went.
    fn delete_sessions_where(&mut self, remove: impl Fn(&SessionRow) -> bool) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|_, row| !remove(row));
        self.sessions.len() < before
    }
}

/// The end of a session's lifetime: its absolute expiry or, without one, its creation (else
/// now) plus `max_lifetime`; `None`: unbounded.
fn lifetime_cap(
    session: &Session,
    max_lifetime: Option<TimeDelta>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    session.absolute_expires_at.or_else(|| {
        max_lifetime.map(|lifetime| {
            later(
                session.created_at.unwrap_or(now),
                lifetime.max(TimeDelta::zero()),
            )
        })
    })
}

/// `at`, no later than `cap`.
fn capped(at: DateTime<Utc>, cap: Option<DateTime<Utc>>) -> DateTime<Utc> {
    cap.map_or(at, |cap| at.min(cap))
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        let mut state = self.enter()?;
        state.check_new_user(user)?;
        state.users.insert(user.id.clone(), new_user(user, now()));
        Ok(())
    }

    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        if !storable(email) {
            return Ok(None);
        }
        Ok(self.enter()?.user_by_email(email).cloned())
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        check_session(session)?;
        let mut state = self.enter()?;
        state.check_new_session(session)?;
        state
            .sessions
            .insert(session.id.clone(), new_session(session, now()));
        Ok(())
    }

    async fn create_session_verified(
        &self,
        session: &Session,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        check_session(session)?;
        if !storable(verified_hash) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        let verified = state
            .users
            .get(&session.user_id)
            .is_some_and(|user| user.password_hash == verified_hash);
        if !verified {
            return Ok(false);
        }
        state.check_new_session(session)?;
        state
            .sessions
            .insert(session.id.clone(), new_session(session, now()));
        Ok(true)
    }

    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError> {
        check_user(user)?;
        check_session(session)?;
        let mut state = self.enter()?;
        state.check_new_user(user)?;
        let now = now();
        state.users.insert(user.id.clone(), new_user(user, now));
        // Both or neither: a session that cannot be stored takes its user back out.
        if let Err(err) = state.check_new_session(session) {
            state.users.remove(&user.id);
            return Err(err);
        }
        state
            .sessions
            .insert(session.id.clone(), new_session(session, now));
        Ok(())
    }

    async fn get_session(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<SessionWithUser>, StoreError> {
        let state = self.enter()?;
        let now = now();
        Ok(state
            .sessions
            .iter()
            .find(|(_, row)| &row.session.token == token && row.session.expires_at > now)
            .and_then(|(id, _)| state.with_user(id)))
    }

    async fn delete_session(&self, token: &TokenDigest) -> Result<bool, StoreError> {
        let mut state = self.enter()?;
        Ok(state.delete_sessions_where(|row| {
            &row.session.token == token
                || &row.session.refresh_token == token
                || row.previous_refresh_token.as_ref() == Some(token)
        }))
    }

    async fn refresh_session(
        &self,
        refresh_token: &TokenDigest,
        rotation: &SessionRotation,
    ) -> Result<RefreshOutcome, StoreError> {
        check_text("token", rotation.token.as_str())?;
        check_text("refresh_token", rotation.refresh_token.as_str())?;
        let mut state = self.enter()?;
        let now = now();

        // The current token of a session within its lifetime: rotate.
        let current = state.sessions.iter().find_map(|(id, row)| {
            let session = &row.session;
            let live = &session.refresh_token == refresh_token
                && session.refresh_expires_at > now
                && lifetime_cap(session, rotation.max_lifetime, now).is_none_or(|cap| cap > now);
            live.then(|| id.clone())
        });
        if let Some(id) = current {
            state.check_free_digests(&rotation.token, &rotation.refresh_token, Some(&id))?;
            if let Some(row) = state.sessions.get_mut(&id) {
                let cap = lifetime_cap(&row.session, rotation.max_lifetime, now);
                let session = &mut row.session;
                row.previous_refresh_token = Some(session.refresh_token.clone());
                row.previous_token = Some(session.token.clone());
                row.refresh_family = Some(rotation.family.clone());
                row.rotation_secret = Some(rotation.secret.clone());
                session.token = rotation.token.clone();
                session.refresh_token = rotation.refresh_token.clone();
                session.expires_at = capped(stored(rotation.expires_at), cap);
                session.refresh_expires_at = capped(stored(rotation.refresh_expires_at), cap);
                session.absolute_expires_at = cap;
                session.rotated_at = Some(now);
            }
            return Ok(state
                .with_user(&id)
                .map_or(RefreshOutcome::Invalid, RefreshOutcome::Rotated));
        }

        // Not a current token: one the session issued before (its family, or the token replaced
        // last by a rotation made before families were recorded), while the session lives?
        let earlier = state.sessions.iter().find_map(|(id, row)| {
            let session = &row.session;
            let ours = row.refresh_family.as_ref() == Some(&rotation.family)
                || row.previous_refresh_token.as_ref() == Some(refresh_token);
            (ours && &session.refresh_token != refresh_token && session.refresh_expires_at > now)
                .then(|| id.clone())
        });
        let Some(id) = earlier else {
            return Ok(RefreshOutcome::Invalid);
        };
        let Some(row) = state.sessions.get(&id) else {
            return Ok(RefreshOutcome::Invalid);
        };
        let grace = rotation.reuse_grace.max(TimeDelta::zero());
        let replaced_last = row.previous_refresh_token.as_ref() == Some(refresh_token);
        let within_grace = replaced_last
            && row
                .session
                .rotated_at
                .is_some_and(|at| at > later(now, -grace));
        if replaced_last && rotation.reuse_grace <= TimeDelta::zero() {
            // Without a window the loser of a race is told no, and nothing ends.
            return Ok(RefreshOutcome::Invalid);
        }
        if within_grace {
            let secret = row.rotation_secret.clone();
            return Ok(match (secret, state.with_user(&id)) {
                (Some(secret), Some(found)) => RefreshOutcome::Replayed { found, secret },
                _ => RefreshOutcome::Invalid,
            });
        }
        // Issued before, presented after the window or more than one rotation ago: whoever holds
        // it is not the client the rotations answered.
        let user_id = row.session.user_id.clone();
        state.sessions.remove(&id);
        Ok(RefreshOutcome::Reused {
            session_id: id,
            user_id,
        })
    }

    async fn delete_rotated_session(
        &self,
        token: &TokenDigest,
        grace: TimeDelta,
    ) -> Result<bool, StoreError> {
        if grace <= TimeDelta::zero() {
            return Ok(false);
        }
        let mut state = self.enter()?;
        let since = later(now(), -grace);
        Ok(state.delete_sessions_where(|row| {
            row.previous_token.as_ref() == Some(token)
                && row.session.rotated_at.is_some_and(|at| at > since)
        }))
    }

    async fn clear_rotation_secrets(&self, grace: TimeDelta) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let before = later(now(), -grace.max(TimeDelta::zero()));
        let mut cleared = 0;
        for row in state.sessions.values_mut() {
            let spent = row.session.rotated_at.is_some_and(|at| at < before);
            if spent && row.rotation_secret.take().is_some() {
                cleared += 1;
            }
        }
        Ok(cleared)
    }

    async fn replace_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        check_text("password_hash", password_hash)?;
        if !storable(user_id) || !storable(expected) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        Ok(state.replace_hash(user_id, expected, password_hash))
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        if !storable(user_id) {
            return Ok(None);
        }
        Ok(self.enter()?.users.get(user_id).cloned())
    }

    /// Deletes every dead session at once: a sweep of memory blocks nobody, so `pace` is not
    /// needed.
    async fn cleanup_expired_sessions_paced(&self, _pace: CleanupPace) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let now = now();
        let before = state.sessions.len();
        state.sessions.retain(|_, row| {
            row.session.expires_at >= now || row.session.refresh_expires_at >= now
        });
        Ok((before - state.sessions.len()) as u64)
    }

    fn session_management(self: Arc<Self>) -> Option<Arc<dyn SessionManagement>> {
        Some(self)
    }

    fn one_time_tokens(self: Arc<Self>) -> Option<Arc<dyn OneTimeTokens>> {
        Some(self)
    }

    fn abuse_counters(self: Arc<Self>) -> Option<Arc<dyn AbuseCounters>> {
        Some(self)
    }

    fn second_factors(self: Arc<Self>) -> Option<Arc<dyn SecondFactors>> {
        Some(self)
    }
}

impl State {
    /// The compare-and-set of a password hash: `user_id`'s hash becomes `password_hash` only
    /// while it is `expected`; says whether it did.
    pub(super) fn replace_hash(
        &mut self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> bool {
        match self.users.get_mut(user_id) {
            Some(user) if user.password_hash == expected => {
                user.password_hash = password_hash.to_owned();
                user.updated_at = Some(now());
                true
            }
            _ => false,
        }
    }
}
