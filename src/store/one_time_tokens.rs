//! Single-use tokens mailed as links (verification, reset, change of email and its cancel): a
//! store capability.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{OneTimeToken, TokenPurpose, TokenUse, UsedToken};
use crate::token::TokenDigest;

#[cfg(doc)]
use super::Store;

/// Single-use tokens, stored as digests, consumed by the statement that reads them. The engine
/// needs it for email verification, password reset and change of email (and so for
/// [`Options::require_email_verification`](crate::Options::require_email_verification)); a store
/// offers it through [`Store::one_time_tokens`].
#[async_trait]
pub trait OneTimeTokens: Send + Sync {
    /// Stores `token`, replacing the user's earlier tokens of the same purpose, in one
    /// transaction.
    ///
    /// # Errors
    /// On database failure, including an unknown user.
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), StoreError>;

    /// Stores `token` as [`issue_token`](Self::issue_token) does, only while the session
    /// `session_id` of its user exists and the user's password hash is still `verified_hash`
    /// (the one the request's password was checked against), all in one transaction; says
    /// whether it did. So a link asked by a session that a reset, a change of password or the
    /// end of every session ended meanwhile is never issued after the links were deleted.
    ///
    /// # Errors
    /// On database failure, including an unknown user; then nothing was stored.
    async fn issue_token_for_session(
        &self,
        token: &OneTimeToken,
        session_id: &str,
        verified_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Whether `token` is an unexpired token of `purpose`, without consuming it: what a
    /// reset asks before it spends a password hash on the new password, so that random tokens
    /// cost one indexed read each. [`use_token`](Self::use_token) still decides.
    ///
    /// # Errors
    /// On database failure.
    async fn token_is_live(
        &self,
        token: &TokenDigest,
        purpose: TokenPurpose,
    ) -> Result<bool, StoreError>;

    /// Consumes the unexpired token `token` of the purpose `use_` needs and applies `use_`, in
    /// one transaction: the token is deleted by the statement that reads it, so of concurrent
    /// calls with one token at most one gets `Some`. `Ok(None)` for an unknown, expired, used or
    /// other-purpose token (an other-purpose one is left as it is), and for a verification, a
    /// reset or a cancel link of an address the user no longer has (a token without an address
    /// included).
    ///
    /// A reset (it also marks the address verified, since the link reached it) and a change of
    /// email delete every other one-time token of the user in the same transaction; a cancel of a
    /// change of email deletes the user's change-of-email and cancel tokens.
    ///
    /// # Errors
    /// [`StoreError::DuplicateEmail`] when a change of email meets an address taken meanwhile
    /// (then nothing changed and the token stays); otherwise on database failure.
    async fn use_token(
        &self,
        token: &TokenDigest,
        use_: TokenUse<'_>,
    ) -> Result<Option<UsedToken>, StoreError>;

    /// Deletes, in bounded batches, every one-time token past its expiry; returns how many went.
    ///
    /// # Errors
    /// On database failure; batches already deleted stay deleted.
    async fn cleanup_expired_tokens(&self) -> Result<u64, StoreError>;
}
