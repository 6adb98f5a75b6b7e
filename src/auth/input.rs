//! Input rules, checked before any database or hashing work.

use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

use super::error::AuthError;
use crate::error::InputReason;

/// The longest email or name, in characters (the columns are `VARCHAR(255)`).
pub(crate) const MAX_FIELD_CHARS: usize = 255;
/// The longest local part of an address, in bytes (RFC 5321, 4.5.3.1.1).
const MAX_LOCAL_PART_BYTES: usize = 64;
/// The longest domain, in bytes (RFC 5321, 4.5.3.1.2).
const MAX_DOMAIN_BYTES: usize = 255;

fn invalid(field: &'static str, reason: InputReason) -> AuthError {
    AuthError::InvalidInput { field, reason }
}

/// Whether `c` is invisible or steers the direction of text: the format characters (zero-width
/// spaces and joiners, soft hyphen, byte-order mark, bidirectional overrides and isolates) and the
/// line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The zero-width joiner and non-joiner: invisible, but part of how Persian, Indic scripts and
/// emoji sequences are written, so a display name may hold them.
fn joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// `raw` trimmed and in Unicode normal form C (so that one text typed two ways is one value), if
/// it holds no NUL byte, is not empty, is at most [`MAX_FIELD_CHARS`] characters and holds no
/// control character.
fn trimmed_text(field: &'static str, raw: &str) -> Result<String, AuthError> {
    if raw.contains('\0') {
        return Err(invalid(field, InputReason::NulByte));
    }
    let text: String = raw.trim().nfc().collect();
    if text.is_empty() {
        return Err(invalid(field, InputReason::Empty));
    }
    if text.chars().count() > MAX_FIELD_CHARS {
        return Err(invalid(
            field,
            InputReason::TooLong {
                max: MAX_FIELD_CHARS,
                unit: "characters",
            },
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, InputReason::ControlCharacter));
    }
    Ok(text)
}

/// The email as it is stored and looked up: trimmed, in normal form C and lower-cased, with no
/// invisible character at all.
pub(crate) fn email(raw: &str) -> Result<String, AuthError> {
    const FIELD: &str = "email";
    let email = trimmed_text(FIELD, raw)?.to_lowercase();
    if email.chars().any(invisible) {
        return Err(invalid(FIELD, InputReason::InvisibleCharacter));
    }
    if email.chars().any(char::is_whitespace) {
        return Err(invalid(FIELD, InputReason::Whitespace));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && local.len() <= MAX_LOCAL_PART_BYTES
                && !domain.is_empty()
                && domain.len() <= MAX_DOMAIN_BYTES
                && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => Err(invalid(FIELD, InputReason::NotAnEmail)),
    }
}

/// The display name, trimmed and in normal form C, with no invisible character but the joiners.
pub(crate) fn name(raw: &str) -> Result<String, AuthError> {
    let name = trimmed_text("name", raw)?;
    if name.chars().any(|c| invisible(c) && !joiner(c)) {
        return Err(invalid("name", InputReason::InvisibleCharacter));
    }
    Ok(name)
}

/// A password as given, within `min_chars` characters and `max_bytes` bytes. Sign-in passes
/// `min_chars = 0`: a raised minimum must not lock out accounts made under an older one.
pub(crate) fn password(raw: &str, min_chars: usize, max_bytes: usize) -> Result<(), AuthError> {
    const FIELD: &str = "password";
    if raw.contains('\0') {
        return Err(invalid(FIELD, InputReason::NulByte));
    }
    if raw.len() > max_bytes {
        return Err(invalid(
            FIELD,
            InputReason::TooLong {
                max: max_bytes,
                unit: "bytes",
            },
        ));
    }
    if raw.is_empty() {
        return Err(invalid(FIELD, InputReason::Empty));
    }
    if raw.chars().count() < min_chars {
        return Err(invalid(FIELD, InputReason::TooShort { min: min_chars }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<impl std::fmt::Debug, AuthError>) -> InputReason {
        match result {
            Err(AuthError::InvalidInput { reason, .. }) => reason,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(email("  Ada@Example.COM \n").unwrap(), "ada@example.com");
    }

    #[test]
    fn email_rules() {
        assert_eq!(reason(email("")), InputReason::Empty);
        assert_eq!(reason(email("   ")), InputReason::Empty);
        assert_eq!(reason(email("a\0@x.io")), InputReason::NulByte);
        assert_eq!(reason(email("a b@x.io")), InputReason::Whitespace);
        assert_eq!(reason(email("a\u{7}b@x.io")), InputReason::ControlCharacter);
        assert_eq!(reason(email("ax.io")), InputReason::NotAnEmail);
        assert_eq!(reason(email("@x.io")), InputReason::NotAnEmail);
        assert_eq!(reason(email("a@")), InputReason::NotAnEmail);
        assert_eq!(reason(email("a@b@x.io")), InputReason::NotAnEmail);
        for hidden in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{202E}',
            '\u{202D}', '\u{2067}', '\u{2028}',
        ] {
            assert_eq!(
                reason(email(&format!("ad{hidden}a@x.io"))),
                InputReason::InvisibleCharacter,
                "{:?}",
                hidden
            );
        }
        // RFC 5321: at most 64 bytes before the @.
        assert!(email(&format!("{}@x.io", "a".repeat(64))).is_ok());
        assert_eq!(
            reason(email(&format!("{}@x.io", "a".repeat(65)))),
            InputReason::NotAnEmail
        );
        let long = format!("{}@{}.io", "a".repeat(60), "b".repeat(192));
        assert_eq!(
            reason(email(&long)),
            InputReason::TooLong {
                max: 255,
                unit: "characters"
            }
        );
        assert!(email(&long[1..]).is_ok());
    }

    #[test]
    fn one_address_typed_composed_or_decomposed_is_one_email() {
        // "é" as one code point (NFC) and as "e" plus a combining acute accent (NFD).
        assert_eq!(
            email("jos\u{e9}@x.io").unwrap(),
            email("jose\u{301}@x.io").unwrap()
        );
        assert_eq!(name("Jose\u{301}").unwrap(), "Jos\u{e9}");
    }

    #[test]
    fn name_rules() {
        assert_eq!(name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
        assert_eq!(reason(name(" ")), InputReason::Empty);
        assert_eq!(reason(name("A\0")), InputReason::NulByte);
        assert_eq!(reason(name("A\u{1b}[31m")), InputReason::ControlCharacter);
        assert!(matches!(
            reason(name(&"é".repeat(256))),
            InputReason::TooLong { max: 255, .. }
        ));
        assert!(name(&"é".repeat(255)).is_ok());
        assert_eq!(
            reason(name("Ada\u{202E}ecalevoL")),
            InputReason::InvisibleCharacter
        );
        assert_eq!(reason(name("A\u{200B}da")), InputReason::InvisibleCharacter);
        // Joiners write Persian and emoji sequences.
        assert!(name("\u{645}\u{6cc}\u{200C}\u{62e}\u{648}\u{627}\u{647}\u{645}").is_ok());
        assert!(name("Ada \u{1F469}\u{200D}\u{1F4BB}").is_ok());
    }

    #[test]
    fn password_rules() {
        assert!(password("12345678", 8, 1024).is_ok());
        assert_eq!(
            reason(password("1234567", 8, 1024)),
            InputReason::TooShort { min: 8 }
        );
        // Counted in characters, not bytes.
        assert!(password("éééééééé", 8, 1024).is_ok());
        assert_eq!(
            reason(password(&"a".repeat(1025), 8, 1024)),
            InputReason::TooLong {
                max: 1024,
                unit: "bytes"
            }
        );
        assert_eq!(
            reason(password("12345678\0", 8, 1024)),
            InputReason::NulByte
        );
        assert_eq!(reason(password("", 0, 1024)), InputReason::Empty);
        assert!(password("short", 0, 1024).is_ok());
    }
}
