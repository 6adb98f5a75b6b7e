//! Listing and ending a user's sessions, and the change of password that ends them: a store
//! capability.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{EndSessions, Session};

#[cfg(doc)]
use super::Store;

/// A user's sessions as a set: listing them, ending one, all or all but one, capping their
/// number, and the change of password that ends them in the same transaction. The engine needs it
/// for the session-management methods of [`Auth`](crate::Auth) (and their routes), for
/// [`Options::max_sessions_per_user`](crate::Options::max_sessions_per_user) and for a change of
/// password; a store offers it through [`Store::session_management`].
#[async_trait]
pub trait SessionManagement: Send + Sync {
    /// The user's sessions that can still be used (refresh token unexpired, within the absolute
    /// lifetime), most recently used first ([`Session::last_used_at`]).
    ///
    /// # Errors
    /// On database failure.
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError>;

    /// Deletes the session `session_id` if it belongs to `user_id`; says whether this call deleted
    /// one. Another user's session id is treated as unknown: `false`, nothing deleted.
    ///
    /// # Errors
    /// On database failure.
    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes every session of `user_id` but `keep`; returns how many went. With `keep` `None`
    /// (every session ends) the user's one-time tokens go too, in the same transaction: a link
    /// mailed before a "sign out everywhere" no longer works after it.
    ///
    /// # Errors
    /// On database failure; then nothing was deleted.
    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// Deletes the sessions of `user_id` beyond its `keep` most recently used ones; returns how
    /// many went.
    ///
    /// # Errors
    /// On database failure.
    async fn evict_sessions(&self, user_id: &str, keep: u32) -> Result<u64, StoreError>;

    /// Replaces the password hash of `user_id` (and its `updated_at`) with `password_hash` only
    /// while it is still `expected`, the hash the current password was verified against (a
    /// compare-and-set), and in the same transaction deletes its sessions as `end` says and every
    /// one-time token of the user; says whether it did (`false`: no such user, or its password
    /// changed since `expected` was read, e.g. by a reset, which then stands).
    ///
    /// # Errors
    /// On database failure; then nothing changed.
    async fn set_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        password_hash: &str,
        end: EndSessions<'_>,
    ) -> Result<bool, StoreError>;
}
