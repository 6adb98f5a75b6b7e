//! Upgrading a password hash at sign-in: a hash the hasher reads but would not make (the Go
//! library's bcrypt) is replaced by a new one of the same password, during that sign-in.

use crate::model::User;

use super::Auth;

impl Auth {
    /// Called once `password` has matched `user`'s hash. When the hasher asks for it, hashes the
    /// password anew (on the hashing threads) and stores the hash unless the password changed
    /// meanwhile, keeping the user's sessions; returns the user with the hash it now has. A failure leaves the old hash, which still
    /// verifies and is upgraded at the next sign-in: it is logged, and the sign-in goes on.
    pub(super) async fn upgrade_password_hash(&self, mut user: User, password: &str) -> User {
        let hashing = &self.inner.hashing;
        if !hashing.needs_rehash(&user.password_hash) {
            return user;
        }
        let hash = match hashing.hash(password).await {
            Ok(hash) => hash,
            Err(err) => {
                tracing::warn!(error = %err, "cannot re-hash the password; kept the old hash");
                return user;
            }
        };
        // Only over the hash this sign-in verified: a password changed or reset meanwhile stays.
        match self
            .inner
            .store
            .replace_password_hash(&user.id, &user.password_hash, &hash)
            .await
        {
            Ok(true) => {
                user.password_hash = hash;
                tracing::info!("password re-hashed with the current hasher");
            }
            // Changed since it was read (kept), or the user deleted (the sign-in then fails at
            // its next write).
            Ok(false) => {
                tracing::info!("password changed during the sign-in; not re-hashed");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the re-hashed password; kept the old hash");
            }
        }
        user
    }
}
