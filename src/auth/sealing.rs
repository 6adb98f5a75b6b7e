//! Secrets at rest: the encryption keys of [`Options`](super::Options) and the AES-256-GCM sealing
//! of second-factor secrets under them (the newest key seals, every configured key opens).

use std::fmt;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};

/// Bytes of an AES-256 key.
const KEY_BYTES: usize = 32;
/// Bytes of an AES-GCM nonce, drawn at random for every sealing.
const NONCE_BYTES: usize = 12;

/// A 256-bit key that seals second-factor secrets at rest (AES-256-GCM). Its id, stored beside
/// each ciphertext, is derived from the key itself (`k` and 16 hex characters of a SHA-256 over
/// it), so that rotating keys needs no naming: configure the new key with
/// [`Options::encryption_key`](super::Options::encryption_key) and keep the old ones with
/// [`Options::old_encryption_keys`](super::Options::old_encryption_keys) until every secret has
/// been sealed again. `Debug` shows the id only.
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    key: [u8; KEY_BYTES],
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a text is not an [`EncryptionKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not base64 (standard or URL-safe alphabet).
    #[error("the encryption key is not base64")]
    NotBase64,
    /// Not 32 bytes once decoded.
    #[error("the encryption key must be 32 bytes (44 base64 characters), not {0}")]
    WrongLength(usize),
    /// The operating system gave no randomness.
    #[error("no randomness for a new encryption key")]
    NoRandomness,
}

impl EncryptionKey {
    /// The key of these 32 bytes.
    pub fn new(key: [u8; KEY_BYTES]) -> Self {
        let fingerprint = Sha256::new()
            .chain_update(b"authingo encryption key id\0")
            .chain_update(key)
            .finalize();
        Self {
            id: format!("k{}", hex::encode(&fingerprint[..8])),
            key,
        }
    }

    /// The key whose 32 bytes `encoded` holds in base64 (standard or URL-safe, padded or not),
    /// as `openssl rand -base64 32` prints one. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`KeyError::NotBase64`] or [`KeyError::WrongLength`].
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let encoded = encoded.trim();
        let bytes = STANDARD
            .decode(encoded)
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
            .map_err(|_| KeyError::NotBase64)?;
        let key: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(Self::new(key))
    }

    /// A new random key, from the operating system's random source.
    ///
    /// # Errors
    /// [`KeyError::NoRandomness`].
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = [0u8; KEY_BYTES];
        OsRng
            .try_fill_bytes(&mut key)
            .map_err(|_| KeyError::NoRandomness)?;
        Ok(Self::new(key))
    }

    /// The key in standard base64, to keep where the application keeps its secrets.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    /// The key's id, as stored beside what it sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.key))
    }
}

/// The engine's keys: the newest seals, all open.
#[derive(Debug, Clone, Default)]
pub(super) struct Keyring {
    /// The sealing key first, then the older ones.
    keys: Vec<EncryptionKey>,
}

/// A secret sealed under a key of the [`Keyring`].
#[derive(Debug)]
pub(super) struct Sealed {
    pub(super) key_id: String,
    pub(super) ciphertext: Vec<u8>,
}

/// Why a sealed secret could not be opened or a secret sealed.
#[derive(Debug, thiserror::Error)]
pub(super) enum SealError {
    #[error("no encryption key is configured")]
    NoKey,
    #[error("the secret was sealed under key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the sealed secret does not open under its key (altered, or of another user)")]
    Corrupt,
    #[error("no randomness for a nonce")]
    NoRandomness,
}

impl Keyring {
    pub(super) fn new(current: Option<EncryptionKey>, old: Vec<EncryptionKey>) -> Self {
        Self {
            keys: current.into_iter().chain(old).collect(),
        }
    }

    /// Whether a key seals: without one, no second factor can be enrolled.
    pub(super) fn can_seal(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The id of the sealing key.
    pub(super) fn sealing_id(&self) -> Option<&str> {
        self.keys.first().map(EncryptionKey::id)
    }

    /// Seals `secret` for `owner` (bound into the ciphertext, so that it opens for no one else)
    /// under the newest key, with a fresh random nonce.
    pub(super) fn seal(&self, owner: &str, secret: &[u8]) -> Result<Sealed, SealError> {
        let key = self.keys.first().ok_or(SealError::NoKey)?;
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| SealError::NoRandomness)?;
        let aad = associated_data(owner);
        let sealed = key
            .cipher()
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend(sealed);
        Ok(Sealed {
            key_id: key.id.clone(),
            ciphertext,
        })
    }

    /// Opens what [`seal`](Self::seal) sealed for `owner` under the key `key_id`.
    pub(super) fn open(
        &self,
        owner: &str,
        key_id: &str,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let key = self
            .keys
            .iter()
            .find(|key| key.id == key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let (nonce, sealed) = ciphertext
            .split_at_checked(NONCE_BYTES)
            .ok_or(SealError::Corrupt)?;
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Corrupt)?;
        let aad = associated_data(owner);
        key.cipher()
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Corrupt)
    }
}

/// What a ciphertext is bound to besides its key: its purpose and its owner, so that a row moved
/// to another user (by whoever can write the database) does not open.
fn associated_data(owner: &str) -> Vec<u8> {
    let mut aad = b"authingo totp secret v1\0".to_vec();
    aad.extend(owner.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_for_its_owner_under_any_configured_key_and_for_nobody_else() {
        let old = EncryptionKey::generate().unwrap();
        let new = EncryptionKey::generate().unwrap();
        let before = Keyring::new(Some(old.clone()), Vec::new());
        let sealed = before.seal("usr_a", b"twenty bytes secret!").unwrap();
        assert_eq!(sealed.key_id, old.id());
        assert!(
            !sealed
                .ciphertext
                .windows(20)
                .any(|w| w == b"twenty bytes secret!")
        );

        let rotated = Keyring::new(Some(new.clone()), vec![old.clone()]);
        assert_eq!(
            rotated
                .open("usr_a", &sealed.key_id, &sealed.ciphertext)
                .unwrap(),
            b"twenty bytes secret!"
        );
        assert_eq!(rotated.seal("usr_a", b"x").unwrap().key_id, new.id());
        assert!(matches!(
            rotated.open("usr_b", &sealed.key_id, &sealed.ciphertext),
            Err(SealError::Corrupt)
        ));
        let mut altered = sealed.ciphertext.clone();
        altered[NONCE_BYTES] ^= 1;
        assert!(matches!(
            rotated.open("usr_a", &sealed.key_id, &altered),
            Err(SealError::Corrupt)
        ));
        let without_old = Keyring::new(Some(new), Vec::new());
        assert!(matches!(
            without_old.open("usr_a", &sealed.key_id, &sealed.ciphertext),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_read_from_base64_keep_their_id_and_refuse_other_lengths() {
        let key = EncryptionKey::generate().unwrap();
        let again = EncryptionKey::from_base64(&format!(" {}\n", key.to_base64())).unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(again.id().len(), 17);
        assert!(!format!("{again:?}").contains(&key.to_base64()));
        assert_eq!(
            EncryptionKey::from_base64("c2hvcnQ=").unwrap_err(),
            KeyError::WrongLength(5)
        );
        assert_eq!(
            EncryptionKey::from_base64("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
    }
}
