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

/// `raw` trimmed, lower-cased when `lower` (before the normalisation, since lower-casing can
/// undo it), and in Unicode normal form C (so that one text typed two ways is one value), if it
/// holds no NUL byte, is not empty, is at most [`MAX_FIELD_CHARS`] characters as stored and
/// holds no control character.
fn trimmed_text(field: &'static str, raw: &str, lower: bool) -> Result<String, AuthError> {
    if raw.contains('\0') {
        return Err(invalid(field, InputReason::NulByte));
    }
    let trimmed = raw.trim();
    let text: String = if lower {
        trimmed.to_lowercase().nfc().collect()
    } else {
        trimmed.nfc().collect()
    };
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
    let email = trimmed_text(FIELD, raw, true)?;
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
    let name = trimmed_text("name", raw, false)?;
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

#[cfg(test)]
mod properties {
    //! The input rules under any text: no panic, normalisation is idempotent, what is accepted
    //! has the documented shape, and what is refused says why with a documented reason.

    use proptest::prelude::*;
    use unicode_normalization::is_nfc;

    use super::*;

    /// Characters that make the rules work: case pairs whose lower case is longer (`İ`) or has a
    /// precomposed form with a mark where the upper case has none (`J`, `W`, `Y`, `T`, `H`),
    /// singletons that normalise away (Kelvin, Ångström, Ohm signs), invisible and bidi
    /// characters, every kind of whitespace and control, NUL, the `@`.
    const TRICKY: &str = "aZ.-@@éÉßẞΣİIıJWYTHKÅΩ\u{212A}\u{212B}\u{2126}\
        \u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}\u{AD}\u{202E}\u{2067}\u{2028}\u{2029}\
        \u{85}\u{A0}\u{3000} \t\n\r\u{7}\u{1b}\u{7f}\0\u{1F469}\u{FFFD}";

    /// Combining marks, of several combining classes, that compose with some letters.
    const MARKS: &str = "\u{301}\u{30C}\u{30A}\u{308}\u{331}\u{323}\u{307}\u{345}";

    /// Letters whose case or composition is not plain, and plain ones.
    const LETTERS: &str = "abzAJWYTHKIİıÅåÉéßẞΣσΩ\u{212A}\u{212B}\u{2126}";

    fn tricky_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            2 => one_of(TRICKY),
            1 => any::<char>(),
        ]
    }

    fn one_of(chars: &str) -> impl Strategy<Value = char> + use<> {
        prop::sample::select(chars.chars().collect::<Vec<_>>())
    }

    /// `base`, sometimes followed by combining marks, so that composition is exercised.
    fn with_marks(base: impl Strategy<Value = char>) -> impl Strategy<Value = String> {
        let marks = prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec(one_of(MARKS), 1..3),
        ];
        (base, marks).prop_map(|(c, marks)| std::iter::once(c).chain(marks).collect())
    }

    fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(with_marks(tricky_char()), 0..max).prop_map(|units| units.concat())
    }

    /// Letters and marks only: text that passes the character rules, to reach the later ones.
    fn letters(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(with_marks(one_of(LETTERS)), 1..max).prop_map(|units| units.concat())
    }

    /// Address-like text, some of it just under the length limits with letters whose lower case
    /// is longer, and arbitrary text.
    fn raw_email() -> impl Strategy<Value = String> {
        let padding = prop_oneof![12 => Just("b"), 2 => Just("İ"), 1 => Just("B"), 1 => Just("é")];
        prop_oneof![
            any::<String>(),
            text(40),
            (text(70), text(200), text(3))
                .prop_map(|(local, domain, tail)| { format!("{local}@{domain}{tail}") }),
            (letters(30), letters(30)).prop_map(|(local, domain)| format!("{local}@{domain}")),
            (1usize..=64, prop::collection::vec(padding, 150..200))
                .prop_map(|(local, domain)| format!("{}@{}", "a".repeat(local), domain.concat())),
        ]
    }

    /// The format characters and the line and paragraph separators, by general category.
    fn is_format(c: char) -> bool {
        matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
    }

    fn reason_of(result: Result<impl std::fmt::Debug, AuthError>, field: &str) -> InputReason {
        match result {
            Err(AuthError::InvalidInput { field: f, reason }) if f == field => reason,
            other => panic!("expected a refusal of {field}, got {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn an_accepted_email_has_the_documented_shape(raw in raw_email()) {
            let Ok(email) = email(&raw) else { return Ok(()) };
            prop_assert_eq!(email.matches('@').count(), 1, "{:?}", raw);
            let (local, domain) = email.split_once('@').expect("one @");
            prop_assert!(!local.is_empty() && !domain.is_empty(), "{:?}", raw);
            prop_assert!(local.len() <= 64, "local part of {} bytes: {:?}", local.len(), raw);
            prop_assert!(!email.chars().any(char::is_whitespace), "{:?}", raw);
            prop_assert!(!email.chars().any(char::is_control), "{:?}", raw);
            prop_assert!(!email.chars().any(is_format), "{:?}", raw);
            prop_assert_eq!(&email.to_lowercase(), &email, "{:?}", raw);
        }

        #[test]
        fn an_accepted_email_is_in_nfc(raw in raw_email()) {
            if let Ok(email) = email(&raw) {
                prop_assert!(is_nfc(&email), "{:?} -> {:?}", raw, email);
            }
        }

        #[test]
        fn an_accepted_email_fits_the_column(raw in raw_email()) {
            if let Ok(email) = email(&raw) {
                let chars = email.chars().count();
                prop_assert!(chars <= MAX_FIELD_CHARS, "{} characters: {:?}", chars, raw);
            }
        }

        #[test]
        fn email_normalisation_is_idempotent(raw in raw_email()) {
            if let Ok(once) = email(&raw) {
                let twice = email(&once);
                prop_assert_eq!(
                    twice.as_ref().ok(), Some(&once), "{:?} -> {:?} -> {:?}", raw, once, twice
                );
            }
        }

        #[test]
        fn a_refused_email_says_why(raw in raw_email()) {
            if email(&raw).is_err() {
                let reason = reason_of(email(&raw), "email");
                prop_assert!(matches!(
                    reason,
                    InputReason::Empty
                        | InputReason::NulByte
                        | InputReason::TooLong { max: MAX_FIELD_CHARS, unit: "characters" }
                        | InputReason::ControlCharacter
                        | InputReason::InvisibleCharacter
                        | InputReason::Whitespace
                        | InputReason::NotAnEmail
                ), "{:?}: {:?}", raw, reason);
                if raw.contains('\0') {
                    prop_assert_eq!(reason, InputReason::NulByte);
                }
            }
        }

        #[test]
        fn an_accepted_name_is_trimmed_nfc_visible_and_stable(
            raw in prop_oneof![any::<String>(), text(300)],
        ) {
            match name(&raw) {
                Ok(accepted) => {
                    prop_assert!(!accepted.is_empty());
                    prop_assert_eq!(accepted.trim(), accepted.as_str());
                    prop_assert!(accepted.chars().count() <= MAX_FIELD_CHARS);
                    prop_assert!(!accepted.chars().any(char::is_control), "{:?}", raw);
                    let hidden = |c: char| is_format(c) && !matches!(c, '\u{200C}' | '\u{200D}');
                    prop_assert!(!accepted.chars().any(hidden), "{:?}", raw);
                    prop_assert!(is_nfc(&accepted), "{:?}", raw);
                    prop_assert_eq!(name(&accepted).ok(), Some(accepted));
                }
                Err(_) => {
                    let reason = reason_of(name(&raw), "name");
                    prop_assert!(matches!(
                        reason,
                        InputReason::Empty
                            | InputReason::NulByte
                            | InputReason::TooLong { max: MAX_FIELD_CHARS, unit: "characters" }
                            | InputReason::ControlCharacter
                            | InputReason::InvisibleCharacter
                    ), "{:?}: {:?}", raw, reason);
                }
            }
        }

        #[test]
        fn a_password_is_refused_exactly_when_a_rule_says_so(
            raw in prop_oneof![any::<String>(), text(24)],
            min_chars in 0usize..24,
            max_bytes in 0usize..120,
        ) {
            let expected = if raw.contains('\0') {
                Some(InputReason::NulByte)
            } else if raw.len() > max_bytes {
                Some(InputReason::TooLong { max: max_bytes, unit: "bytes" })
            } else if raw.is_empty() {
                Some(InputReason::Empty)
            } else if raw.chars().count() < min_chars {
                Some(InputReason::TooShort { min: min_chars })
            } else {
                None
            };
            match expected {
                None => prop_assert!(password(&raw, min_chars, max_bytes).is_ok(), "{:?}", raw),
                Some(expected) => {
                    let refused = password(&raw, min_chars, max_bytes);
                    prop_assert_eq!(reason_of(refused, "password"), expected);
                }
            }
        }
    }
}
