//! Input rules, checked before any database or hashing work.

use super::error::AuthError;
use crate::error::InputReason;

/// The longest email or name, in characters (the columns are `VARCHAR(255)`).
pub(crate) const MAX_FIELD_CHARS: usize = 255;

fn invalid(field: &'static str, reason: InputReason) -> AuthError {
    AuthError::InvalidInput { field, reason }
}

/// `raw` trimmed, if it holds no NUL byte, is not empty, is at most [`MAX_FIELD_CHARS`]
/// characters and holds no control character.
fn trimmed_text<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, AuthError> {
    if raw.contains('\0') {
        return Err(invalid(field, InputReason::NulByte));
    }
    let text = raw.trim();
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

/// The email as it is stored and looked up: trimmed and lower-cased.
pub(crate) fn email(raw: &str) -> Result<String, AuthError> {
    const FIELD: &str = "email";
    let email = trimmed_text(FIELD, raw)?.to_lowercase();
    if email.chars().any(char::is_whitespace) {
        return Err(invalid(FIELD, InputReason::Whitespace));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => Err(invalid(FIELD, InputReason::NotAnEmail)),
    }
}

/// The display name, trimmed.
pub(crate) fn name(raw: &str) -> Result<String, AuthError> {
    trimmed_text("name", raw).map(str::to_owned)
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
        let long = format!("{}@x.io", "a".repeat(251));
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
