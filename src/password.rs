//! Password hashing: argon2id PHC strings by default, behind a trait so that a deployment can
//! verify hashes of another format. A database adopted from the Go library holds bcrypt: with
//! the `bcrypt` feature (on by default) the default hasher, [`WithBcrypt`], verifies those too
//! and asks for them to be replaced by argon2id at the first sign-in.
//!
//! Hashing is CPU-bound by design; the engine runs every call on threads of its own at the
//! lowest scheduling priority, never on an async worker.

use std::fmt;
use std::sync::Arc;

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

    /// Whether `hash`, which [`verify`](Self::verify) has just accepted, should be replaced by a
    /// new [`hash`](Self::hash) of the same password: a hash of a format this hasher reads but
    /// does not make, such as the Go library's bcrypt. The engine then stores the new hash during
    /// that sign-in, keeping the user's sessions. Called on the async runtime, so it must be
    /// cheap (a look at the prefix). The default: never.
    fn needs_rehash(&self, hash: &str) -> bool {
        let _ = hash;
        false
    }
}

/// The hasher [`Options`](crate::Options) uses unless given another: argon2id with `params`,
/// inside [`WithBcrypt`] when the `bcrypt` feature is on (the default).
///
/// # Errors
/// When argon2 refuses the parameters.
pub fn default_hasher(params: Argon2Params) -> Result<Arc<dyn PasswordHasher>, PasswordError> {
    let argon2 = Argon2id::new(params)?;
    #[cfg(feature = "bcrypt")]
    let hasher = WithBcrypt::new(argon2);
    #[cfg(not(feature = "bcrypt"))]
    let hasher = argon2;
    Ok(Arc::new(hasher))
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

/// A hasher that makes `inner`'s hashes and also verifies bcrypt hashes (`$2a$`, `$2b$`, `$2y$`),
/// the Go library's format, asking for each one it accepted to be re-hashed by `inner`. The
/// default hasher with the `bcrypt` feature (on by default), over [`Argon2id`].
///
/// A bcrypt verification costs about what an argon2id one does at the default parameters (see
/// the README), so a wrong password against a bcrypt hash costs one bcrypt verification and no
/// argon2. As with the Go library, only a password's first 72 bytes count against a bcrypt hash;
/// the argon2id hash that replaces it covers the whole password. `$2x$` (hashes of the buggy
/// crypt_blowfish) is not read.
#[cfg(feature = "bcrypt")]
#[cfg_attr(docsrs, doc(cfg(feature = "bcrypt")))]
#[derive(Debug, Clone)]
pub struct WithBcrypt<H = Argon2id> {
    inner: H,
}

#[cfg(feature = "bcrypt")]
impl<H> WithBcrypt<H> {
    /// `inner`, also verifying bcrypt hashes.
    pub fn new(inner: H) -> Self {
        Self { inner }
    }

    /// The hasher that makes new hashes.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

#[cfg(feature = "bcrypt")]
fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

#[cfg(feature = "bcrypt")]
impl<H: PasswordHasher> PasswordHasher for WithBcrypt<H> {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.inner.hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        if is_bcrypt(hash) {
            bcrypt::verify(password, hash).map_err(|err| PasswordError(Box::new(err)))
        } else {
            self.inner.verify(password, hash)
        }
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        is_bcrypt(hash) || self.inner.needs_rehash(hash)
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

    #[cfg(feature = "bcrypt")]
    #[test]
    fn with_bcrypt_verifies_each_go_prefix_and_asks_for_a_rehash() {
        let hasher = WithBcrypt::new(fast());
        let made = bcrypt::hash_with_result("correct horse", 4).unwrap();
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let hash = made.format_for_version(version);
            assert!(hasher.verify("correct horse", &hash).unwrap(), "{hash}");
            assert!(!hasher.verify("correct horsf", &hash).unwrap(), "{hash}");
            assert!(hasher.needs_rehash(&hash), "{hash}");
        }
        let twox = made.format_for_version(bcrypt::Version::TwoX);
        assert!(hasher.verify("correct horse", &twox).is_err(), "not read");
        assert!(hasher.verify("x", "$2a$10$bcrypt").is_err(), "malformed");

        let argon2 = hasher.hash("correct horse").unwrap();
        assert!(argon2.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", &argon2).unwrap());
        assert!(!hasher.needs_rehash(&argon2));
    }

    #[test]
    fn the_default_hasher_reads_bcrypt_with_the_feature_only() {
        let hasher = default_hasher(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let go = "$2a$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert_eq!(hasher.verify("x", go).is_ok(), cfg!(feature = "bcrypt"));
        assert_eq!(hasher.needs_rehash(go), cfg!(feature = "bcrypt"));
    }
}
