//! Secret tokens, their SHA-256 digests, and record ids.
//!
//! A [`Token`] is what the client holds; the database only ever sees its [`TokenDigest`]. Both
//! print nothing secret through `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};

/// Random bytes in an access token.
pub const ACCESS_TOKEN_BYTES: usize = 32;
/// Random bytes in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 64;
/// Leading bytes of a refresh token that every refresh token of one session shares: its family
/// (see [`Token::family`]).
pub const REFRESH_FAMILY_BYTES: usize = 16;
/// Random bytes in a one-time token (a verification, reset or change-of-email link): 256 bits.
pub const ONE_TIME_TOKEN_BYTES: usize = 32;
/// Characters in a [`TokenDigest`]: SHA-256 as lower-case hex.
pub const DIGEST_LEN: usize = 64;

/// Which kind of token a value is: one of the two of a session, or one sent by mail. They differ
/// only in length (and an access token and a one-time token not even in that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The short-lived token presented on every request.
    Access,
    /// The long-lived token exchanged for a new pair.
    Refresh,
    /// A token sent by mail, used once.
    OneTime,
}

impl TokenKind {
    /// How many random bytes a token of this kind carries.
    pub const fn byte_len(self) -> usize {
        match self {
            Self::Access => ACCESS_TOKEN_BYTES,
            Self::Refresh => REFRESH_TOKEN_BYTES,
            Self::OneTime => ONE_TIME_TOKEN_BYTES,
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

    /// The digest of the refresh token's family: its first [`REFRESH_FAMILY_BYTES`] bytes,
    /// drawn at sign-in and kept by every rotation ([`Token::derive`]), so that one column
    /// recognises every refresh token a session ever issued, however many rotations ago. Only a
    /// holder of one of the session's refresh tokens knows it.
    pub fn family(&self) -> TokenDigest {
        TokenDigest(hex::encode(Sha256::digest(self.family_bytes())))
    }

    /// The first [`REFRESH_FAMILY_BYTES`] bytes of the token. The first 24 characters are whole
    /// base64 groups (18 bytes); a token too short or not base64 has a family of zeros, which
    /// no token of ours has.
    fn family_bytes(&self) -> [u8; REFRESH_FAMILY_BYTES] {
        let mut family = [0u8; REFRESH_FAMILY_BYTES];
        let decoded = self
            .0
            .get(..24)
            .and_then(|prefix| URL_SAFE_NO_PAD.decode(prefix).ok());
        if let Some(decoded) = decoded {
            family.copy_from_slice(&decoded[..REFRESH_FAMILY_BYTES]);
        }
        family
    }
}

impl Token {
    /// The token of `kind` that the rotation with `secret` issues in exchange for `previous`:
    /// HKDF-SHA-256 with the secret as salt, the previous token as input keying material, and
    /// the kind as info.
    ///
    /// This is what makes a refresh idempotent without storing a raw token. The rotation draws a
    /// fresh secret, derives the new pair from the presented refresh token, and stores only the
    /// secret and the new pair's digests. A retry within the grace window presents the same old
    /// token; the same derivation gives the same pair, which is checked against the stored digests.
    /// Reproducing the pair takes both the old raw token (only the client ever held it) and the
    /// row's secret: a leaked database alone, or a leaked old token alone, gives nothing.
    ///
    /// A refresh token keeps the previous one's family (its first [`REFRESH_FAMILY_BYTES`]
    /// bytes) and derives the rest.
    pub fn derive(kind: TokenKind, secret: &RotationSecret, previous: &Token) -> Self {
        let info: &[u8] = match kind {
            TokenKind::Access => b"authingo rotation: access token",
            TokenKind::Refresh => b"authingo rotation: refresh token",
            TokenKind::OneTime => b"authingo rotation: one-time token",
        };
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        let bytes = &mut bytes[..kind.byte_len()];
        let derived = match kind {
            TokenKind::Refresh => {
                let (family, rest) = bytes.split_at_mut(REFRESH_FAMILY_BYTES);
                family.copy_from_slice(&previous.family_bytes());
                rest
            }
            TokenKind::Access | TokenKind::OneTime => bytes,
        };
        Hkdf::<Sha256>::new(Some(&secret.0), previous.0.as_bytes())
            .expand(info, derived)
            .expect("at most 64 bytes, far below HKDF-SHA-256's limit of 255 blocks of 32");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// The random secret of one rotation (32 bytes), kept in the session's row so that a retry of
/// that rotation within the grace window gets the same pair (see [`Token::derive`]). `Debug`
/// shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct RotationSecret([u8; 32]);

impl RotationSecret {
    /// Draws a new secret from the operating system's random source.
    ///
    /// # Errors
    /// When the operating system cannot provide randomness.
    pub fn generate() -> Result<Self, rand::rand_core::OsError> {
        let mut bytes = [0u8; 32];
        OsRng.try_fill_bytes(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The secret as stored (64 lower-case hex characters).
    pub fn to_stored(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a secret back from storage; `None` for a value that is not one.
    pub fn from_stored(value: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(value, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for RotationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotationSecret(<redacted>)")
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
    fn a_refresh_token_keeps_its_family_through_every_rotation() {
        let first = Token::generate(TokenKind::Refresh).unwrap();
        let mut current = first.clone();
        for _ in 0..5 {
            let secret = RotationSecret::generate().unwrap();
            let next = Token::derive(TokenKind::Refresh, &secret, &current);
            assert_eq!(next.family(), first.family());
            assert_ne!(next, current);
            current = next;
        }
        assert_eq!(current.expose()[..21], first.expose()[..21]);
        let other = Token::generate(TokenKind::Refresh).unwrap();
        assert_ne!(other.family(), first.family());
        assert_ne!(first.family(), first.digest());
        assert_eq!(first.family().as_str().len(), DIGEST_LEN);
        // Not base64 in its first groups: a family no token of ours has.
        let odd = Token("*".repeat(86));
        assert_eq!(odd.family(), Token("!".repeat(86)).family());
    }

    #[test]
    fn derived_tokens_depend_on_both_secret_and_previous_token() {
        let previous = Token::generate(TokenKind::Refresh).unwrap();
        let secret = RotationSecret::generate().unwrap();
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let derived = Token::derive(kind, &secret, &previous);
            assert_eq!(Token::parse(derived.expose(), kind), Some(derived.clone()));
            assert_eq!(
                Token::derive(kind, &secret, &previous),
                derived,
                "repeatable"
            );
            let other_secret = RotationSecret::generate().unwrap();
            assert_ne!(Token::derive(kind, &other_secret, &previous), derived);
            let other_previous = Token::generate(TokenKind::Refresh).unwrap();
            assert_ne!(Token::derive(kind, &secret, &other_previous), derived);
        }
        assert_ne!(
            Token::derive(TokenKind::Access, &secret, &previous).expose(),
            &Token::derive(TokenKind::Refresh, &secret, &previous).expose()[..43]
        );
        let stored = secret.to_stored();
        assert_eq!(stored.len(), 64);
        assert_eq!(RotationSecret::from_stored(&stored), Some(secret.clone()));
        assert_eq!(RotationSecret::from_stored("not hex"), None);
        assert!(!format!("{secret:?}").contains(&stored[..8]));
    }

    #[test]
    fn ids_carry_prefix_and_32_hex() {
        let id = new_id("usr_").unwrap();
        assert!(id.starts_with("usr_"));
        assert_eq!(id.len(), 36);
        assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

#[cfg(test)]
mod properties {
    //! Token parsing under any input: the shape we issue is accepted, nothing else is.

    use proptest::prelude::*;

    use super::*;

    /// URL-safe base64, written out here rather than taken from the parser under test.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn kind() -> impl Strategy<Value = TokenKind> {
        prop_oneof![
            Just(TokenKind::Access),
            Just(TokenKind::Refresh),
            Just(TokenKind::OneTime)
        ]
    }

    fn our_shape(value: &str, kind: TokenKind) -> bool {
        value.len() == kind.encoded_len() && value.chars().all(|c| ALPHABET.contains(c))
    }

    /// The text of a token of `kind` made from arbitrary bytes, as `generate` encodes them.
    fn issued(kind: TokenKind) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<u8>(), kind.byte_len())
            .prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
    }

    fn alphabet_char() -> impl Strategy<Value = char> {
        prop::sample::select(ALPHABET.chars().collect::<Vec<_>>())
    }

    /// Any character, or one of the ASCII ones other base64 alphabets and encodings use.
    fn near_miss() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>(),
            prop::sample::select("+/=.~%! \"".chars().collect::<Vec<_>>()),
        ]
    }

    fn either_issued() -> impl Strategy<Value = String> {
        kind().prop_flat_map(issued)
    }

    /// Strings near the shape as well as far from it: random text almost never has our length.
    fn candidate() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::collection::vec(alphabet_char(), 0..100).prop_map(String::from_iter),
            either_issued(),
            (either_issued(), any::<prop::sample::Index>(), near_miss()).prop_map(
                |(token, at, c)| {
                    let mut chars: Vec<char> = token.chars().collect();
                    let at = at.index(chars.len());
                    chars[at] = c;
                    String::from_iter(chars)
                }
            ),
            (either_issued(), any::<String>()).prop_map(|(token, tail)| token + &tail),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_accepts_exactly_our_shape(value in candidate(), kind in kind()) {
            let parsed = Token::parse(&value, kind);
            prop_assert_eq!(parsed.is_some(), our_shape(&value, kind), "{:?}", value);
            if let Some(token) = parsed {
                prop_assert_eq!(token.expose(), value.as_str());
            }
        }

        #[test]
        fn every_issued_token_parses_back_to_itself(
            (kind, text) in kind().prop_flat_map(|kind| (Just(kind), issued(kind)))
        ) {
            let token = Token::parse(&text, kind);
            prop_assert_eq!(token.as_ref().map(Token::expose), Some(text.as_str()));
            // The refresh token's length is its own; access and one-time tokens share theirs.
            let other = match kind {
                TokenKind::Access | TokenKind::OneTime => TokenKind::Refresh,
                TokenKind::Refresh => TokenKind::Access,
            };
            prop_assert!(Token::parse(&text, other).is_none());
        }

        #[test]
        fn generated_tokens_parse_back_to_themselves(kind in kind()) {
            let token = Token::generate(kind).expect("OS randomness");
            prop_assert_eq!(Token::parse(token.expose(), kind), Some(token));
        }

        #[test]
        fn another_length_is_refused(
            kind in kind(),
            chars in prop::collection::vec(alphabet_char(), 0..200),
        ) {
            prop_assume!(chars.len() != kind.encoded_len());
            prop_assert!(Token::parse(&String::from_iter(chars), kind).is_none());
        }

        #[test]
        fn another_character_is_refused(
            (kind, text) in kind().prop_flat_map(|kind| (Just(kind), issued(kind))),
            at in any::<prop::sample::Index>(),
            c in near_miss().prop_filter("outside the alphabet", |c| !ALPHABET.contains(*c)),
        ) {
            let mut chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len());
            chars[at] = c;
            let bad = String::from_iter(chars);
            // A multi-byte character also changes the length; a one-byte one keeps it.
            prop_assert!(Token::parse(&bad, kind).is_none(), "{:?}", bad);
            prop_assert!(Token::parse(&bad, TokenKind::Access).is_none());
            prop_assert!(Token::parse(&bad, TokenKind::Refresh).is_none());
        }

        #[test]
        fn digests_are_64_lower_hex_stable_and_distinct(
            (kind, a, b) in kind().prop_flat_map(|kind| (Just(kind), issued(kind), issued(kind)))
        ) {
            let token = Token::parse(&a, kind).expect("issued shape");
            let digest = token.digest();
            prop_assert_eq!(digest.as_str().len(), DIGEST_LEN);
            prop_assert!(
                digest.as_str().bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{}", digest.as_str()
            );
            prop_assert_eq!(&token.digest(), &digest);
            let again = Token::parse(&a, kind).expect("issued shape").digest();
            prop_assert_eq!(&again, &digest);
            let other = Token::parse(&b, kind).expect("issued shape").digest();
            prop_assert_eq!(other == digest, a == b);
        }
    }
}
