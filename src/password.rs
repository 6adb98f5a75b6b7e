//! Password hashing: argon2id PHC strings by default, behind a trait so that a deployment can
//! verify hashes of another format (a database adopted from the Go library holds bcrypt).
//!
//! Hashing is CPU-bound by design; the engine runs every call on threads of its own at the
//! lowest scheduling priority, never on an async worker.

use std::fmt;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use rand::TryRngCore as _;
use rand::rngs::OsRng;

use crate::error::BoxError;

/// Why hashing or verifying failed (not a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct PasswordError(#[source] pub BoxError);

/// Turns passwords into stored hashes and checks them. The engine calls it on its hashing
/// threads, never on an async worker.
pub trait PasswordHasher: Send + Sync + 'static {
    /// A new hash of `password`, as stored in `users.password_hash` (at most 255 characters).
    ///
    /// # Errors
    /// When the hash cannot be computed (parameters, randomness).
    fn hash(&self, password: &str) -> Result<String, PasswordError>;

    /// Whether `password` matches `hash`; `Ok(false)` for a mismatch.
    ///
    /// # Errors
    /// When `hash` cannot be read.
    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError>;
}

/// argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB. Default 19456 (19 MiB, OWASP's recommendation).
    pub memory_kib: u32,
    /// Passes. Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// The default [`PasswordHasher`]: argon2id, PHC strings with a 16-byte random salt.
#[derive(Clone)]
pub struct Argon2id {
    argon2: Argon2<'static>,
}

impl fmt::Debug for Argon2id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2id")
            .field("params", self.argon2.params())
            .finish()
    }
}

impl Argon2id {
    /// A hasher with `params`.
    ///
    /// # Errors
    /// When argon2 refuses the parameters (e.g. memory below 8 KiB per lane).
    pub fn new(params: Argon2Params) -> Result<Self, PasswordError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|err| PasswordError(Box::new(err)))?;
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        })
    }
}

impl PasswordHasher for Argon2id {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|err| PasswordError(Box::new(err)))?;
        let salt = SaltString::encode_b64(&salt).map_err(|err| PasswordError(Box::new(err)))?;
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| PasswordError(Box::new(err)))
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let parsed = PasswordHash::new(hash).map_err(|err| PasswordError(Box::new(err)))?;
        // The hash's own parameters are used, so hashes made under older settings still verify.
        match self.argon2.verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(err) => Err(PasswordError(Box::new(err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Argon2id {
        Argon2id::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hash_verifies_and_wrong_password_does_not() {
        let hasher = fast();
        let hash = hasher.hash("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher.verify("correct horse", &hash).unwrap());
        assert!(!hasher.verify("correct horsf", &hash).unwrap());
        assert_ne!(hasher.hash("correct horse").unwrap(), hash, "salted");
    }

    #[test]
    fn default_parameters_are_owasp_and_fit_the_column() {
        let hash = Argon2id::new(Argon2Params::default())
            .unwrap()
            .hash("x")
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hash.len() <= 255);
    }

    #[test]
    fn unreadable_hash_is_an_error() {
        assert!(fast().verify("x", "$2a$10$bcrypt").is_err());
    }
}
