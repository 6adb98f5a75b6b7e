//! A `Store` in memory for the fuzz harness only: the contract of the trait (and the column
//! checks `PgStore` makes before it sends a value), fixtures to reset to before each input, and a
//! fault that makes one chosen call fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use authingo::token::{Token, TokenDigest, TokenKind};
use authingo::{
    CleanupPace, EndSessions, InputReason, OneTimeToken, OneTimeTokens, RefreshOutcome, Session,
    SessionManagement, SessionRotation, SessionWithUser, Store, StoreError, TokenPurpose, TokenUse,
    UsedToken, User,
};
use chrono::{TimeDelta, Utc};

/// Access and refresh tokens of the fixture sessions, in the shape the crate issues.
pub const LIVE_ACCESS: &str = "LiveAccessToken0123456789_-abcdefghijklmnop";
pub const LIVE_REFRESH: &str =
    "LiveRefreshToken0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
pub const STALE_ACCESS: &str = "StaleAccessToken0123456789_-abcdefghijklmno";
pub const STALE_REFRESH: &str =
    "StaleRefreshToken0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
pub const DEAD_ACCESS: &str = "DeadAccessToken0123456789_-abcdefghijklmnop";
pub const DEAD_REFRESH: &str =
    "DeadRefreshToken0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The fixture account and its password; a second account holds a hash the hasher cannot read.
pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery";
pub const FOREIGN_EMAIL: &str = "bcrypt@example.com";
pub const FOREIGN_HASH: &str = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

/// Which way the failing call fails.
#[derive(Debug, Clone, Copy, arbitrary::Arbitrary)]
pub enum FaultKind {
    Unavailable,
    Database,
}

#[derive(Debug)]
struct Fault {
    at_call: usize,
    kind: FaultKind,
}

#[derive(Default)]
struct State {
    users: HashMap<String, User>,
    sessions: Vec<Session>,
    tokens: Vec<OneTimeToken>,
    calls: usize,
    fault: Option<Fault>,
    fault_fired: bool,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

fn digest(token: &str, kind: TokenKind) -> TokenDigest {
    Token::parse(token, kind)
        .expect("fixture tokens have the issued shape")
        .digest()
}

fn check_text(field: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.contains('\0') {
        InputReason::NulByte
    } else if value.chars().count() > 255 {
        InputReason::TooLong {
            max: 255,
            unit: "characters",
        }
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidInput { field, reason })
}

fn check_user(user: &User) -> Result<(), StoreError> {
    check_text("id", &user.id)?;
    check_text("email", &user.email)?;
    check_text("name", &user.name)?;
    check_text("password_hash", &user.password_hash)
}

impl MemoryStore {
    /// Back to the fixtures: two accounts; a live session, one whose access token has expired
    /// and one whose tokens both have.
    pub fn reset(&self, password_hash: &str) {
        let now = Utc::now();
        let user = |id: &str, email: &str, hash: &str| User {
            id: id.to_owned(),
            email: email.to_owned(),
            name: "Ada".to_owned(),
            password_hash: hash.to_owned(),
            email_verified: false,
            created_at: Some(now),
            updated_at: Some(now),
        };
        let session =
            |id: &str, access: &str, refresh: &str, access_in: i64, refresh_in: i64| Session {
                id: id.to_owned(),
                user_id: "usr_ada".to_owned(),
                token: digest(access, TokenKind::Access),
                refresh_token: digest(refresh, TokenKind::Refresh),
                expires_at: now + TimeDelta::minutes(access_in),
                refresh_expires_at: now + TimeDelta::minutes(refresh_in),
                created_at: Some(now),
                rotated_at: None,
                absolute_expires_at: None,
                persistent: true,
                user_agent: None,
                ip_address: None,
            };
        let mut state = self.state.lock().expect("not poisoned");
        *state = State {
            users: HashMap::from([
                (EMAIL.to_owned(), user("usr_ada", EMAIL, password_hash)),
                (
                    FOREIGN_EMAIL.to_owned(),
                    user("usr_go", FOREIGN_EMAIL, FOREIGN_HASH),
                ),
            ]),
            sessions: vec![
                session("ses_live", LIVE_ACCESS, LIVE_REFRESH, 15, 60),
                session("ses_stale", STALE_ACCESS, STALE_REFRESH, -1, 60),
                session("ses_dead", DEAD_ACCESS, DEAD_REFRESH, -60, -1),
            ],
            ..State::default()
        };
    }

    /// Makes the call `at_call` (counted from 0 from now) fail, or none.
    pub fn arm(&self, fault: Option<(usize, FaultKind)>) {
        let mut state = self.state.lock().expect("not poisoned");
        state.calls = 0;
        state.fault = fault.map(|(at_call, kind)| Fault { at_call, kind });
        state.fault_fired = false;
    }

    /// Whether the injected fault made a call fail since the last reset.
    pub fn fault_fired(&self) -> bool {
        self.state.lock().expect("not poisoned").fault_fired
    }

    /// Counts a call, and fails it if it is the chosen one.
    fn enter(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        let mut state = self.state.lock().expect("not poisoned");
        let call = state.calls;
        state.calls += 1;
        match &state.fault {
            Some(fault) if fault.at_call == call => {
                let err: authingo::BoxError = "injected fault".into();
                let err = match fault.kind {
                    FaultKind::Unavailable => StoreError::Unavailable(err),
                    FaultKind::Database => StoreError::Database(err),
                };
                state.fault_fired = true;
                Err(err)
            }
            _ => Ok(state),
        }
    }
}

fn with_user(state: &State, session: &Session) -> Option<SessionWithUser> {
    let user = state
        .users
        .values()
        .find(|user| user.id == session.user_id)?;
    Some(SessionWithUser {
        session: session.clone(),
        user: user.clone(),
    })
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        let mut state = self.enter()?;
        if state.users.contains_key(&user.email) {
            return Err(StoreError::DuplicateEmail);
        }
        state.users.insert(user.email.clone(), user.clone());
        Ok(())
    }

    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        check_text("email", email)?;
        Ok(self.enter()?.users.get(email).cloned())
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = self.enter()?;
        if !state.users.values().any(|user| user.id == session.user_id) {
            return Err(StoreError::Database("no such user".into()));
        }
        state.sessions.push(session.clone());
        Ok(())
    }

    async fn create_session_verified(
        &self,
        session: &Session,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.enter()?;
        let verified = state
            .users
            .values()
            .any(|user| user.id == session.user_id && user.password_hash == verified_hash);
        if verified {
            state.sessions.push(session.clone());
        }
        Ok(verified)
    }

    async fn create_user_with_session(
        &self,
        user: &User,
        session: &Session,
    ) -> Result<(), StoreError> {
        check_user(user)?;
        let mut state = self.enter()?;
        if state.users.contains_key(&user.email) {
            return Err(StoreError::DuplicateEmail);
        }
        state.users.insert(user.email.clone(), user.clone());
        state.sessions.push(session.clone());
        Ok(())
    }

    async fn get_session(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<SessionWithUser>, StoreError> {
        let state = self.enter()?;
        let now = Utc::now();
        Ok(state
            .sessions
            .iter()
            .find(|session| &session.token == token && session.expires_at > now)
            .and_then(|session| with_user(&state, session)))
    }

    async fn delete_session(&self, token: &TokenDigest) -> Result<bool, StoreError> {
        let mut state = self.enter()?;
        let before = state.sessions.len();
        state
            .sessions
            .retain(|session| &session.token != token && &session.refresh_token != token);
        Ok(state.sessions.len() < before)
    }

    async fn refresh_session(
        &self,
        refresh_token: &TokenDigest,
        rotation: &SessionRotation,
    ) -> Result<RefreshOutcome, StoreError> {
        // The rotation only: replays within the grace window are the database's concern.
        let mut state = self.enter()?;
        let now = Utc::now();
        let Some(session) = state.sessions.iter_mut().find(|session| {
            &session.refresh_token == refresh_token && session.refresh_expires_at > now
        }) else {
            return Ok(RefreshOutcome::Invalid);
        };
        session.token = rotation.token.clone();
        session.refresh_token = rotation.refresh_token.clone();
        session.expires_at = rotation.expires_at;
        session.refresh_expires_at = rotation.refresh_expires_at;
        session.rotated_at = Some(now);
        let session = session.clone();
        Ok(with_user(&state, &session).map_or(RefreshOutcome::Invalid, RefreshOutcome::Rotated))
    }

    async fn delete_rotated_session(
        &self,
        _token: &TokenDigest,
        _grace: TimeDelta,
    ) -> Result<bool, StoreError> {
        // No rotation history is kept: like replays, the database's concern.
        self.enter()?;
        Ok(false)
    }

    async fn clear_rotation_secrets(&self, _grace: TimeDelta) -> Result<u64, StoreError> {
        // Rotation secrets are not kept either.
        self.enter()?;
        Ok(0)
    }

    async fn replace_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        check_text("password_hash", password_hash)?;
        let mut state = self.enter()?;
        let Some(user) = state
            .users
            .values_mut()
            .find(|user| user.id == user_id && user.password_hash == expected)
        else {
            return Ok(false);
        };
        user.password_hash = password_hash.to_owned();
        user.updated_at = Some(Utc::now());
        Ok(true)
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let state = self.enter()?;
        Ok(state
            .users
            .values()
            .find(|user| user.id == user_id)
            .cloned())
    }

    async fn cleanup_expired_sessions_paced(&self, _pace: CleanupPace) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let now = Utc::now();
        let before = state.sessions.len();
        state
            .sessions
            .retain(|session| session.expires_at >= now || session.refresh_expires_at >= now);
        Ok((before - state.sessions.len()) as u64)
    }

    fn session_management(self: Arc<Self>) -> Option<Arc<dyn SessionManagement>> {
        Some(self)
    }

    fn one_time_tokens(self: Arc<Self>) -> Option<Arc<dyn OneTimeTokens>> {
        Some(self)
    }
}

#[async_trait]
impl SessionManagement for MemoryStore {
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let state = self.enter()?;
        let now = Utc::now();
        let mut sessions: Vec<_> = state
            .sessions
            .iter()
            .filter(|session| session.user_id == user_id && session.refresh_expires_at > now)
            .cloned()
            .collect();
        sessions.sort_by(|a, b| b.last_used_at().cmp(&a.last_used_at()));
        Ok(sessions)
    }

    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.enter()?;
        let before = state.sessions.len();
        state
            .sessions
            .retain(|session| !(session.user_id == user_id && session.id == session_id));
        Ok(state.sessions.len() < before)
    }

    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let before = state.sessions.len();
        state
            .sessions
            .retain(|session| session.user_id != user_id || Some(session.id.as_str()) == keep);
        if keep.is_none() {
            state.tokens.retain(|token| token.user_id != user_id);
        }
        Ok((before - state.sessions.len()) as u64)
    }

    async fn evict_sessions(&self, user_id: &str, keep: u32) -> Result<u64, StoreError> {
        let kept: Vec<String> = self
            .list_sessions(user_id)
            .await?
            .into_iter()
            .take(keep as usize)
            .map(|session| session.id)
            .collect();
        let mut state = self.enter()?;
        let before = state.sessions.len();
        state
            .sessions
            .retain(|session| session.user_id != user_id || kept.contains(&session.id));
        Ok((before - state.sessions.len()) as u64)
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
        end: EndSessions<'_>,
    ) -> Result<bool, StoreError> {
        check_text("password_hash", password_hash)?;
        let mut state = self.enter()?;
        let Some(user) = state
            .users
            .values_mut()
            .find(|user| user.id == user_id && user.password_hash == expected)
        else {
            return Ok(false);
        };
        user.password_hash = password_hash.to_owned();
        user.updated_at = Some(Utc::now());
        match end {
            EndSessions::AllBut(keep) => state
                .sessions
                .retain(|session| session.user_id != user_id || session.id == keep),
            EndSessions::All => state.sessions.retain(|session| session.user_id != user_id),
            _ => {}
        }
        state.tokens.retain(|token| token.user_id != user_id);
        Ok(true)
    }
}

#[async_trait]
impl OneTimeTokens for MemoryStore {
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), StoreError> {
        let mut state = self.enter()?;
        state
            .tokens
            .retain(|t| !(t.user_id == token.user_id && t.purpose == token.purpose));
        state.tokens.push(token.clone());
        Ok(())
    }

    async fn issue_token_for_session(
        &self,
        token: &OneTimeToken,
        session_id: &str,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.enter()?;
        let verified = state
            .users
            .values()
            .any(|user| user.id == token.user_id && user.password_hash == verified_hash);
        let live = state
            .sessions
            .iter()
            .any(|session| session.id == session_id && session.user_id == token.user_id);
        if !verified || !live {
            return Ok(false);
        }
        state
            .tokens
            .retain(|t| !(t.user_id == token.user_id && t.purpose == token.purpose));
        state.tokens.push(token.clone());
        Ok(true)
    }

    async fn use_token(
        &self,
        token: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError> {
        let mut state = self.enter()?;
        let now = Utc::now();
        let Some(at) = state
            .tokens
            .iter()
            .position(|t| &t.token == token && t.purpose == use_.purpose() && t.expires_at > now)
        else {
            return Ok(None);
        };
        let used = state.tokens.remove(at);
        let Some(key) = state
            .users
            .iter()
            .find(|(_, user)| user.id == used.user_id)
            .map(|(key, _)| key.clone())
        else {
            return Ok(None);
        };
        let mut user = state.users[&key].clone();
        let previous_email = user.email.clone();
        let for_current_address = used.email.as_deref() == Some(previous_email.as_str());
        match use_ {
            TokenUse::ResetPassword { password_hash } if for_current_address => {
                user.password_hash = password_hash.to_owned();
                user.email_verified = true;
                state.sessions.retain(|session| session.user_id != user.id);
                state.tokens.retain(|token| token.user_id != user.id);
            }
            TokenUse::ChangeEmail => {
                let new_email = used.email.clone().unwrap_or_default();
                if state.users.contains_key(&new_email) {
                    // Nothing changed: the token stays usable.
                    state.tokens.insert(at, used);
                    return Err(StoreError::DuplicateEmail);
                }
                user.email = new_email;
                user.email_verified = true;
                state.tokens.retain(|token| token.user_id != user.id);
            }
            TokenUse::CancelEmailChange if for_current_address => {
                state.tokens.retain(|token| {
                    token.user_id != user.id
                        || !matches!(
                            token.purpose,
                            TokenPurpose::ChangeEmail | TokenPurpose::CancelEmailChange
                        )
                });
            }
            TokenUse::VerifyEmail if for_current_address => user.email_verified = true,
            // A link for an address the user no longer has: nothing applied, nothing consumed.
            _ => {
                state.tokens.insert(at, used);
                return Ok(None);
            }
        }
        state.users.remove(&key);
        state.users.insert(user.email.clone(), user.clone());
        Ok(Some(UsedToken {
            user,
            previous_email,
        }))
    }

    async fn cleanup_expired_tokens(&self) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let now = Utc::now();
        let before = state.tokens.len();
        state.tokens.retain(|token| token.expires_at >= now);
        Ok((before - state.tokens.len()) as u64)
    }
}
