//! [`SessionManagement`] in memory: a user's sessions as a set, and the change of password that
//! ends them.

use std::cmp::Reverse;

use async_trait::async_trait;

use super::{MemoryStore, State, check_text, now, storable};
use crate::model::{EndSessions, Session};
use crate::store::{SessionManagement, StoreError};

impl State {
    /// The sessions of `user_id`, most recently used first (a session never used, with neither
    /// time, last), then by id: the order of `evict_sessions.sql`.
    fn sessions_by_use(&self, user_id: &str) -> Vec<&Session> {
        let mut sessions: Vec<&Session> = self
            .sessions
            .values()
            .map(|row| &row.session)
            .filter(|session| session.user_id == user_id)
            .collect();
        // `Some` sorts after `None`: reversed, the latest time comes first and `None` last.
        sessions.sort_by(|a, b| {
            Reverse(a.last_used_at())
                .cmp(&Reverse(b.last_used_at()))
                .then_with(|| a.id.cmp(&b.id))
        });
        sessions
    }
}

#[async_trait]
impl SessionManagement for MemoryStore {
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        if !storable(user_id) {
            return Ok(Vec::new());
        }
        let state = self.enter()?;
        let now = now();
        Ok(state
            .sessions_by_use(user_id)
            .into_iter()
            .filter(|session| {
                session.refresh_expires_at > now
                    && session.absolute_expires_at.is_none_or(|at| at > now)
            })
            .cloned()
            .collect())
    }

    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        if !storable(user_id) || !storable(session_id) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        let theirs = state
            .sessions
            .get(session_id)
            .is_some_and(|row| row.session.user_id == user_id);
        let deleted = theirs && state.sessions.remove(session_id).is_some();
        if deleted {
            // As PgStore: a revoked session's user's trusted browsers end with it.
            state.delete_trusted_devices_of(user_id);
        }
        Ok(deleted)
    }

    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        if !storable(user_id) {
            return Ok(0);
        }
        let mut state = self.enter()?;
        let deleted = state.delete_sessions_of(user_id, keep);
        if keep.is_none() {
            // Every session ends: the links mailed before end with them.
            state.delete_tokens_of(user_id);
        }
        Ok(deleted)
    }

    async fn evict_sessions(&self, user_id: &str, keep: u32) -> Result<u64, StoreError> {
        if !storable(user_id) {
            return Ok(0);
        }
        let mut state = self.enter()?;
        // Every session of the user counts, an expired one too, as in `evict_sessions.sql`.
        let evicted: Vec<String> = state
            .sessions_by_use(user_id)
            .into_iter()
            .skip(usize::try_from(keep).unwrap_or(usize::MAX))
            .map(|session| session.id.clone())
            .collect();
        for id in &evicted {
            state.sessions.remove(id);
        }
        Ok(evicted.len() as u64)
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
        end: EndSessions<'_>,
    ) -> Result<bool, StoreError> {
        check_text("password_hash", password_hash)?;
        if !storable(user_id) || !storable(expected) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        if !state.replace_hash(user_id, expected, password_hash) {
            return Ok(false);
        }
        match end {
            EndSessions::None => {}
            EndSessions::AllBut(keep) => {
                state.delete_sessions_of(user_id, Some(keep));
            }
            EndSessions::All => {
                state.delete_sessions_of(user_id, None);
            }
        }
        state.delete_tokens_of(user_id);
        Ok(true)
    }
}
