//! [`OneTimeTokens`] in memory: links consumed by the call that reads them, which puts them back
//! when it has nothing to apply them to.

use async_trait::async_trait;

use super::{MemoryStore, State, check_text, now, storable, stored, violation};
use crate::model::{OneTimeToken, TokenPurpose, TokenUse, UsedToken};
use crate::store::{OneTimeTokens, StoreError};
use crate::token::TokenDigest;

fn check_token(token: &OneTimeToken) -> Result<(), StoreError> {
    check_text("user_id", &token.user_id)?;
    if let Some(email) = &token.email {
        check_text("email", email)?;
    }
    Ok(())
}

impl State {
    /// Stores `token`, voiding the user's earlier tokens of its purpose; nothing changes when
    /// its user does not exist or its digest is taken.
    fn insert_token(&mut self, token: &OneTimeToken) -> Result<(), StoreError> {
        if !self.users.contains_key(&token.user_id) {
            return Err(violation("no user has the token's user_id (foreign key)"));
        }
        let taken = self
            .tokens
            .get(&token.token)
            .is_some_and(|other| other.user_id != token.user_id || other.purpose != token.purpose);
        if taken {
            return Err(violation(
                "a one-time token has this digest (one_time_tokens_pkey)",
            ));
        }
        self.tokens
            .retain(|_, t| !(t.user_id == token.user_id && t.purpose == token.purpose));
        let stored_token = OneTimeToken {
            expires_at: stored(token.expires_at),
            ..token.clone()
        };
        self.tokens.insert(token.token.clone(), stored_token);
        Ok(())
    }

    /// Consumes `digest` for `use_` and applies it; `Ok(None)`, with the token left as it was,
    /// when there is nothing to apply it to.
    fn use_token(
        &mut self,
        digest: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError> {
        let now = now();
        let live = self
            .tokens
            .get(digest)
            .filter(|token| token.purpose == use_.purpose() && token.expires_at > now)
            .cloned();
        let Some(token) = live else {
            return Ok(None);
        };
        let Some(before) = self.users.get(&token.user_id).cloned() else {
            return Ok(None);
        };
        let user_id = before.id.clone();
        let previous_email = before.email.clone();
        // Links mailed to an address work only while it is the user's.
        let for_current_address = token.email.as_deref() == Some(previous_email.as_str());
        let mut user = before.clone();
        match use_ {
            TokenUse::VerifyEmail if for_current_address => {
                user.email_verified = true;
                user.updated_at = Some(now);
            }
            TokenUse::ResetPassword { password_hash } if for_current_address => {
                // The link reached the address: it is verified too.
                user.password_hash = password_hash.to_owned();
                user.email_verified = true;
                user.updated_at = Some(now);
                self.delete_sessions_of(&user_id, None);
                self.delete_tokens_of(&user_id);
            }
            TokenUse::ChangeEmail => {
                let Some(new_email) = token.email.clone() else {
                    return Ok(None);
                };
                let taken = self
                    .users
                    .values()
                    .any(|other| other.email == new_email && other.id != user_id);
                if taken {
                    // Nothing changes, and the token stays usable.
                    return Err(StoreError::DuplicateEmail);
                }
                user.email = new_email;
                user.email_verified = true;
                user.updated_at = Some(now);
                self.delete_tokens_of(&user_id);
            }
            TokenUse::RemoveTwoFactor if for_current_address => {
                self.delete_second_factor_of(&user_id);
                self.delete_sessions_of(&user_id, None);
                self.delete_tokens_of(&user_id);
            }
            TokenUse::CancelEmailChange if for_current_address => {
                self.tokens.retain(|_, t| {
                    t.user_id != user_id
                        || !matches!(
                            t.purpose,
                            TokenPurpose::ChangeEmail | TokenPurpose::CancelEmailChange
                        )
                });
            }
            // A link for an address the user no longer has.
            _ => return Ok(None),
        }
        self.tokens.remove(digest);
        self.users.insert(user_id, user.clone());
        Ok(Some(UsedToken {
            user,
            previous_email,
        }))
    }
}

#[async_trait]
impl OneTimeTokens for MemoryStore {
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), StoreError> {
        check_token(token)?;
        self.enter()?.insert_token(token)
    }

    async fn issue_token_for_session(
        &self,
        token: &OneTimeToken,
        session_id: &str,
        verified_hash: &str,
    ) -> Result<bool, StoreError> {
        check_token(token)?;
        if !storable(session_id) || !storable(verified_hash) {
            return Ok(false);
        }
        let mut state = self.enter()?;
        let verified = state
            .users
            .get(&token.user_id)
            .is_some_and(|user| user.password_hash == verified_hash);
        let live = state
            .sessions
            .get(session_id)
            .is_some_and(|row| row.session.user_id == token.user_id);
        if !verified || !live {
            return Ok(false);
        }
        state.insert_token(token).map(|()| true)
    }

    async fn token_is_live(
        &self,
        token: &TokenDigest,
        purpose: TokenPurpose,
    ) -> Result<bool, StoreError> {
        let state = self.enter()?;
        let now = now();
        Ok(state
            .tokens
            .get(token)
            .is_some_and(|token| token.purpose == purpose && token.expires_at > now))
    }

    async fn use_token(
        &self,
        token: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError> {
        if let TokenUse::ResetPassword { password_hash } = use_ {
            check_text("password_hash", password_hash)?;
        }
        self.enter()?.use_token(token, use_)
    }

    async fn cleanup_expired_tokens(&self) -> Result<u64, StoreError> {
        let mut state = self.enter()?;
        let now = now();
        let before = state.tokens.len();
        state.tokens.retain(|_, token| token.expires_at >= now);
        Ok((before - state.tokens.len()) as u64)
    }
}
