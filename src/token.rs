//! Secret tokens, their SHA-256 digests, and record ids.
//!
//! A [`Token`] is what the client holds; the database only ever sees its [`TokenDigest`]. Both
//! print nothing secret through `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};

/// Random bytes in an access token.
pub const ACCESS_TOKEN_BYTES: usize = 32;
/// Random bytes in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 64;
/// Characters in a [`TokenDigest`]: SHA-256 as lower-case hex.
pub const DIGEST_LEN: usize = 64;

/// Which of the two tokens of a session a value is; they differ only in length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The short-lived token presented on every request.
    Access,
    /// The long-lived token exchanged for a new pair.
    Refresh,
}

impl TokenKind {
    /// How many random bytes a token of this kind carries.
    pub const fn byte_len(self) -> usize {
        match self {
            Self::Access => ACCESS_TOKEN_BYTES,
            Self::Refresh => REFRESH_TOKEN_BYTES,
        }
    }

    /// Length of the URL-safe, unpadded base64 encoding of such a token.
    pub const fn encoded_len(self) -> usize {
        (self.byte_len() * 4).div_ceil(3)
    }
}

/// A raw session token, as only the client holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Draws a new token of `kind` from the operating system's random source.
    ///
    /// # Errors
    /// When the operating system cannot provide randomness.
    pub fn generate(kind: TokenKind) -> Result<Self, rand::rand_core::OsError> {
        let mut bytes = vec![0u8; kind.byte_len()];
        OsRng.try_fill_bytes(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts `value` as a token of `kind` if it has the shape we issue (length and URL-safe
    /// alphabet), so that a value that cannot be ours costs no database work.
    pub fn parse(value: &str, kind: TokenKind) -> Option<Self> {
        let shaped = value.len() == kind.encoded_len()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| Self(value.to_owned()))
    }

    /// The token's text, for the cookie or the response that hands it to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest under which the store keeps this token.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The SHA-256 digest of a [`Token`], in lower-case hex: the only form a token reaches the store in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenDigest(String);

impl TokenDigest {
    /// Wraps a digest read back from storage. No check is made: a value that is not a digest
    /// simply matches no token.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The hex text, as stored in the `token` and `refresh_token` columns.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

/// A new record id: `prefix` followed by 32 hex characters of OS randomness (`usr_…`, `ses_…`).
///
/// # Errors
/// When the operating system cannot provide randomness.
pub fn new_id(prefix: &str) -> Result<String, rand::rand_core::OsError> {
    let mut bytes = [0u8; 16];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let token = Token::generate(kind).unwrap();
            assert_eq!(token.expose().len(), kind.encoded_len());
            assert_eq!(Token::parse(token.expose(), kind), Some(token.clone()));
            assert_ne!(Token::generate(kind).unwrap(), token);
        }
        assert_eq!(TokenKind::Access.encoded_len(), 43);
        assert_eq!(TokenKind::Refresh.encoded_len(), 86);
    }

    #[test]
    fn parse_refuses_wrong_length_and_alphabet() {
        let access = Token::generate(TokenKind::Access).unwrap();
        assert!(Token::parse(access.expose(), TokenKind::Refresh).is_none());
        assert!(Token::parse(&access.expose()[1..], TokenKind::Access).is_none());
        let mut bad = access.expose().to_owned();
        bad.replace_range(0..1, "+");
        assert!(Token::parse(&bad, TokenKind::Access).is_none());
        assert!(Token::parse("", TokenKind::Access).is_none());
    }

    #[test]
    fn digest_is_sha256_hex_and_debug_redacts() {
        let token = Token::parse(&"a".repeat(43), TokenKind::Access).unwrap();
        let digest = token.digest();
        assert_eq!(digest.as_str().len(), DIGEST_LEN);
        assert_eq!(
            digest.as_str(),
            hex::encode(Sha256::digest("a".repeat(43).as_bytes()))
        );
        assert!(!format!("{token:?}{digest:?}").contains("aaa"));
        assert!(!format!("{digest:?}").contains(&digest.as_str()[..8]));
    }

    #[test]
    fn ids_carry_prefix_and_32_hex() {
        let id = new_id("usr_").unwrap();
        assert!(id.starts_with("usr_"));
        assert_eq!(id.len(), 36);
        assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
