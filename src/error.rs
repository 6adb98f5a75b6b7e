//! What the layers' errors share: a boxed source, and what is wrong with a refused value.

use std::error::Error as StdError;

/// A boxed error kept as the source of another.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What is wrong with a value that was refused before anything was stored.
///
/// The engine's input rules and the store's column checks report with the same type, so a
/// refusal reads the same whichever layer made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputReason {
    /// Empty, or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// Shorter than allowed.
    #[error("must be at least {min} characters")]
    TooShort {
        /// The minimum, in characters.
        min: usize,
    },
    /// Longer than allowed.
    #[error("must be at most {max} {unit}")]
    TooLong {
        /// The maximum.
        max: usize,
        /// `"characters"` or `"bytes"`.
        unit: &'static str,
    },
    /// Contains a NUL byte, which PostgreSQL text cannot hold.
    #[error("must not contain a NUL byte")]
    NulByte,
    /// Contains a control character.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Contains an invisible or bidirectional-control character (a zero-width space, a soft
    /// hyphen, a right-to-left override…): two such values could look the same and differ.
    #[error("must not contain invisible or bidirectional-control characters")]
    InvisibleCharacter,
    /// Contains whitespace where none is allowed.
    #[error("must not contain whitespace")]
    Whitespace,
    /// One of the most common passwords, which attackers try first (see
    /// [`is_common_password`](crate::auth::is_common_password)).
    #[error("must not be one of the most common passwords")]
    TooCommon,
    /// Not of the form `local@domain`, or a part longer than RFC 5321 allows (64 bytes before
    /// the `@`, 255 after).
    #[error("must be an address of the form name@domain")]
    NotAnEmail,
    /// The part of an address before the `@` is not a dot-atom (RFC 5322): only letters,
    /// digits, ``!#$%&'*+-/=?^_`{|}~`` and single dots between them; no quoted string, comment,
    /// bracket or list separator.
    #[error(
        "must hold before the @ only letters, digits, the characters !#$%&'*+-/=?^_`{{|}}~ and \
         single dots between them"
    )]
    EmailLocalPart,
    /// The part of an address after the `@` is not a domain name: at least two labels of
    /// letters, digits and inner hyphens (or an internationalised domain name that UTS #46
    /// accepts), each at most 63 bytes, the top one not all digits, no trailing dot.
    #[error("must have after the @ a domain name such as example.com")]
    EmailDomain,
    /// Letters of several writing systems mixed in a way that can imitate another address (a
    /// Cyrillic `а` among Latin letters), by Unicode TS #39's restriction levels.
    #[error(
        "must not mix writing systems (such as Latin and Cyrillic letters) in a way that can \
         imitate another address"
    )]
    MixedScripts,
}
