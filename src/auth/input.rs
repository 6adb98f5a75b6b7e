//! Input rules, checked before any database or hashing work.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection as _};

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
/// invisible character at all, and a strict addr-spec that every reader takes for one mailbox:
/// a dot-atom before the `@` ([`local_part`]), a domain name after it, in its Unicode form
/// ([`domain_name`]).
pub(crate) fn email(raw: &str) -> Result<String, AuthError> {
    const FIELD: &str = "email";
    let email = trimmed_text(FIELD, raw, true)?;
    if email.chars().any(invisible) {
        return Err(invalid(FIELD, InputReason::InvisibleCharacter));
    }
    if email.chars().any(char::is_whitespace) {
        return Err(invalid(FIELD, InputReason::Whitespace));
    }
    let (local, domain) = match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && local.len() <= MAX_LOCAL_PART_BYTES
                && !domain.is_empty()
                && domain.len() <= MAX_DOMAIN_BYTES
                && !domain.contains('@') =>
        {
            (local, domain)
        }
        _ => return Err(invalid(FIELD, InputReason::NotAnEmail)),
    };
    local_part(local).map_err(|reason| invalid(FIELD, reason))?;
    let domain = domain_name(domain).map_err(|reason| invalid(FIELD, reason))?;
    let email = format!("{local}@{domain}");
    // UTS #46 can map one character to several (a ligature to its letters).
    if email.chars().count() > MAX_FIELD_CHARS {
        return Err(invalid(
            FIELD,
            InputReason::TooLong {
                max: MAX_FIELD_CHARS,
                unit: "characters",
            },
        ));
    }
    Ok(email)
}

/// The characters besides ASCII letters and digits that RFC 5322's `atext` allows.
const ATEXT_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";

/// Checks a local part: a dot-atom (RFC 5322 3.4.1, with RFC 6531's non-ASCII letters), so no
/// quoted string, comment, bracket, separator or `\`, and dots only single and inside. A
/// non-ASCII character must be one UTS #39 allows in identifiers (letters and marks of the
/// recommended scripts, in their NFKC form: a full-width `＠` is not one), and the letters must
/// not mix scripts beyond what TS #39 calls highly restrictive.
fn local_part(local: &str) -> Result<(), InputReason> {
    let atext = |c: char| {
        c.is_ascii_alphanumeric()
            || ATEXT_SYMBOLS.contains(c)
            || (!c.is_ascii() && GeneralSecurityProfile::identifier_allowed(c))
    };
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    {
        return Err(InputReason::EmailLocalPart);
    }
    if mixes_scripts(local) {
        return Err(InputReason::MixedScripts);
    }
    Ok(())
}

/// The domain in its Unicode form, if it is a domain name: UTS #46 processing (case and width
/// mapped, A-labels decoded, so that one domain has one spelling) with the STD3 rules (letters,
/// digits and hyphens only, no hyphen first or last in a label) and the DNS lengths (labels of
/// 1 to 63 bytes, 253 in all, no trailing dot); then at least two labels, a top-level label not
/// all digits (`1.2.3.4` is no host name), and each label's letters allowed in identifiers and
/// in one script as for [`local_part`].
fn domain_name(domain: &str) -> Result<String, InputReason> {
    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| InputReason::EmailDomain)?;
    match ascii.rsplit_once('.') {
        Some((_, top)) if !top.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return Err(InputReason::EmailDomain),
    }
    let (unicode, decoded) = uts46.to_unicode(
        ascii.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
    );
    decoded.map_err(|_| InputReason::EmailDomain)?;
    for label in unicode.split('.') {
        if label
            .chars()
            .any(|c| !c.is_ascii() && !GeneralSecurityProfile::identifier_allowed(c))
        {
            return Err(InputReason::EmailDomain);
        }
        if mixes_scripts(label) {
            return Err(InputReason::MixedScripts);
        }
    }
    Ok(unicode.into_owned())
}

/// Whether the letters and digits of `text` mix scripts beyond UTS #39's "highly restrictive"
/// level: one script, or Latin with Han and the Japanese kana, with Han and Bopomofo or with Han
/// and Hangul. Latin with Cyrillic or Greek (`pаypal`) is refused: it is how one address is made
/// to look like another. ASCII punctuation is left out: it belongs to no script.
fn mixes_scripts(text: &str) -> bool {
    let letters: String = text
        .chars()
        .filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
        .collect();
    letters.as_str().detect_restriction_level() > RestrictionLevel::HighlyRestrictive
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
        // 255 characters in all is the most; labels of at most 63 bytes.
        let label = "b".repeat(63);
        let long = format!("{}@{label}.{label}.{label}.io", "a".repeat(61));
        assert_eq!(
            reason(email(&long)),
            InputReason::TooLong {
                max: 255,
                unit: "characters"
            }
        );
        assert!(email(&long[1..]).is_ok());
        assert_eq!(
            reason(email(&format!("a@{}.io", "b".repeat(64)))),
            InputReason::EmailDomain
        );
    }

    #[test]
    fn accepted_addresses_and_how_they_are_stored() {
        for (raw, stored) in [
            ("ada@example.com", "ada@example.com"),
            ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
            (
                "o'brien+news@mail.example.co.uk",
                "o'brien+news@mail.example.co.uk",
            ),
            (
                "!#$%&'*+-/=?^_`{|}~@example.com",
                "!#$%&'*+-/=?^_`{|}~@example.com",
            ),
            ("a@b.co", "a@b.co"),
            ("user@sub-domain.example", "user@sub-domain.example"),
            ("user@123.example", "user@123.example"),
            ("user@example.xn--p1ai", "user@example.\u{440}\u{444}"),
            // An internationalised domain, in any spelling, is stored in its Unicode form.
            (
                "jos\u{e9}@b\u{fc}cher.example",
                "jos\u{e9}@b\u{fc}cher.example",
            ),
            (
                "jos\u{e9}@xn--bcher-kva.example",
                "jos\u{e9}@b\u{fc}cher.example",
            ),
            (
                "jos\u{e9}@XN--BCHER-KVA.example",
                "jos\u{e9}@b\u{fc}cher.example",
            ),
            (
                "jos\u{e9}@\u{ff42}\u{fc}cher.example",
                "jos\u{e9}@b\u{fc}cher.example",
            ),
            // One script other than Latin, before and after the @.
            (
                "\u{441}\u{435}\u{440}\u{433}\u{435}\u{439}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
                "\u{441}\u{435}\u{440}\u{433}\u{435}\u{439}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
            ),
            (
                "\u{3b1}\u{3bb}\u{3ad}\u{3be}\u{3b7}\u{3c2}@example.gr",
                "\u{3b1}\u{3bb}\u{3ad}\u{3be}\u{3b7}\u{3c2}@example.gr",
            ),
            // Latin with Han and kana is "highly restrictive" in TS #39, and allowed.
            (
                "taro\u{7530}\u{4e2d}@example.jp",
                "taro\u{7530}\u{4e2d}@example.jp",
            ),
            (
                "\u{7530}\u{4e2d}\u{305f}\u{308d}\u{3046}@\u{4f8b}\u{3048}.jp",
                "\u{7530}\u{4e2d}\u{305f}\u{308d}\u{3046}@\u{4f8b}\u{3048}.jp",
            ),
        ] {
            assert_eq!(email(raw).ok().as_deref(), Some(stored), "{raw:?}");
        }
    }

    #[test]
    fn refused_addresses_and_why() {
        use InputReason::*;
        for (raw, why) in [
            // Read by a mailbox parser as ada@evil.example, or as two recipients.
            ("ada@evil.example>.corp.example", EmailDomain),
            ("a@b.example,c@d.example", NotAnEmail),
            ("a@b.example, c@d.example", Whitespace),
            ("a@b.example;c@d.example", NotAnEmail),
            ("a@b.example,c.example", EmailDomain),
            ("Eve <eve@example.com>", Whitespace),
            ("Eve<eve@example.com>", EmailLocalPart),
            ("<ada@example.com>", EmailLocalPart),
            // Quoted strings, comments, escapes, address literals.
            ("\"ada\"@example.com", EmailLocalPart),
            ("\"ada@corp\"@example.com", NotAnEmail),
            ("ada(corp)@example.com", EmailLocalPart),
            ("ada@example.com(corp)", EmailDomain),
            ("ada\\@example.com", EmailLocalPart),
            ("ada@[127.0.0.1]", EmailDomain),
            ("ada@[ipv6:::1]", EmailDomain),
            ("ada:x@example.com", EmailLocalPart),
            ("ada@example.com:25", EmailDomain),
            // Dots.
            (".ada@example.com", EmailLocalPart),
            ("ada.@example.com", EmailLocalPart),
            ("a..da@example.com", EmailLocalPart),
            ("ada@.example.com", EmailDomain),
            ("ada@example..com", EmailDomain),
            ("ada@example.com.", EmailDomain),
            // Not host names.
            ("ada@localhost", EmailDomain),
            ("ada@-example.com", EmailDomain),
            ("ada@example-.com", EmailDomain),
            ("ada@exa_mple.com", EmailDomain),
            ("ada@1.2.3.4", EmailDomain),
            ("ada@xn--zz.example", EmailDomain),
            ("ada@\u{2665}.example", EmailDomain),
            // Look-alikes: symbols and compatibility forms are no letters.
            ("ada\u{ff20}evil.example@example.com", EmailLocalPart),
            ("ada\u{fe6b}evil.example@example.com", EmailLocalPart),
            ("\u{ff41}da@example.com", EmailLocalPart),
            ("ada\u{2024}x@example.com", EmailLocalPart),
            ("ada\u{2764}@example.com", EmailLocalPart),
            // Scripts mixed to imitate another address.
            ("p\u{430}ypal@example.com", MixedScripts),
            ("\u{3bf}mega@example.com", MixedScripts),
            ("ada@p\u{430}ypal.com", MixedScripts),
            ("ada@xn--pypal-4ve.com", MixedScripts),
        ] {
            assert_eq!(reason(email(raw)), why, "{raw:?}");
        }
    }

    #[test]
    fn every_refusal_of_an_address_names_its_reason() {
        for why in [
            InputReason::EmailLocalPart,
            InputReason::EmailDomain,
            InputReason::MixedScripts,
        ] {
            let text = why.to_string();
            assert!(text.starts_with("must "), "{text}");
        }
        assert!(InputReason::EmailDomain.to_string().contains("domain"));
        assert!(
            InputReason::MixedScripts
                .to_string()
                .contains("writing systems")
        );
        assert!(
            InputReason::EmailLocalPart
                .to_string()
                .contains("before the @")
        );
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

    /// Characters that decide how an address is read: its separators and brackets, the
    /// `atext` symbols, look-alikes of them, and letters of several scripts.
    const ADDRESS: &str = "aZ09.-_+'!#$%&*/=?^`{|}~@<>()[]\\,;:\" \u{FF20}\u{FE6B}\u{FF0E}\u{3002}\
        \u{430}\u{43E}\u{3B1}\u{3BF}\u{7530}\u{305F}\u{FF41}\u{2665}éß";

    /// Dot-separated labels of `label` characters, up to `labels` of them.
    fn dotted(
        label: impl Strategy<Value = char> + Clone,
        labels: usize,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::collection::vec(label, 1..12)
                .prop_map(|chars| chars.into_iter().collect::<String>()),
            1..labels,
        )
        .prop_map(|labels| labels.join("."))
    }

    /// Address-like text: dotted labels of letters and of the characters that decide how an
    /// address is read, some of it just under the length limits with letters whose lower case is
    /// longer, and arbitrary text.
    fn raw_email() -> impl Strategy<Value = String> {
        let padding = prop_oneof![12 => Just("b"), 2 => Just("İ"), 1 => Just("B"), 1 => Just("é")];
        let label = prop::collection::vec(padding, 40..63).prop_map(|chars| chars.concat());
        let address_char = prop_oneof![3 => prop::char::range('a', 'z'), 1 => one_of(ADDRESS)];
        prop_oneof![
            any::<String>(),
            text(40),
            (text(70), text(200), text(3))
                .prop_map(|(local, domain, tail)| { format!("{local}@{domain}{tail}") }),
            (letters(30), letters(30)).prop_map(|(local, domain)| format!("{local}@{domain}.io")),
            (dotted(address_char.clone(), 4), dotted(address_char, 5))
                .prop_map(|(local, domain)| format!("{local}@{domain}")),
            (1usize..=64, prop::collection::vec(label, 2..5)).prop_map(|(local, labels)| format!(
                "{}@{}",
                "a".repeat(local),
                labels.join(".")
            )),
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
            // A dot-atom before the @: no character that quotes, comments, brackets or lists.
            prop_assert!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
            prop_assert!(!email.contains(['<', '>', '(', ')', ',', ';', ':', '"', '[', ']', '\\']));
            // A domain name of two labels or more, the same when converted to ASCII and back.
            let ascii = idna::domain_to_ascii_strict(domain);
            prop_assert!(ascii.is_ok(), "{:?}", raw);
            let ascii = ascii.unwrap_or_default();
            prop_assert!(ascii.contains('.'), "{:?}", raw);
            prop_assert_eq!(idna::domain_to_unicode(&ascii).0, domain, "{:?}", raw);
        }

        /// What the engine stores is what the SMTP mailer agrees to send to.
        #[cfg(feature = "smtp")]
        #[test]
        fn an_accepted_email_is_one_mailbox_for_the_mailer(raw in raw_email()) {
            if let Ok(email) = email(&raw) {
                let mailbox = email.parse::<lettre::message::Mailbox>();
                prop_assert!(mailbox.is_ok(), "{:?}", email);
                let mailbox = mailbox.expect("checked");
                prop_assert!(mailbox.name.is_none());
                prop_assert_eq!(mailbox.email.to_string(), email);
            }
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
                        | InputReason::EmailLocalPart
                        | InputReason::EmailDomain
                        | InputReason::MixedScripts
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
