//! The second factor's arithmetic and formats: TOTP codes (RFC 6238 with the parameters every
//! authenticator app reads: SHA-1, 6 digits, 30 s), the enrolment's URI and QR code, and
//! recovery codes.

use std::fmt;

use chrono::{DateTime, Utc};
use qrcode::QrCode;
use qrcode::render::svg;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::token::TokenDigest;

/// Bytes of a TOTP secret: 160 bits, RFC 4226's recommendation.
pub(super) const SECRET_BYTES: usize = 20;
/// Seconds of a time step.
const STEP_SECS: u64 = 30;
/// Digits of a code.
const DIGITS: u8 = 6;
/// Steps accepted before and after the current one: a clock off by up to 30 s, or a code typed
/// as it changed.
const SKEW_STEPS: u16 = 1;
/// Recovery codes given at once.
pub(super) const RECOVERY_CODES: usize = 10;
/// Random bytes of a recovery code: 128 bits.
const RECOVERY_CODE_BYTES: usize = 16;

/// What an authenticator app needs to add an account, answered once at enrolment. `Debug`
/// shows none of it.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/…` URI the QR code holds.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment(<redacted>)")
    }
}

/// Recovery codes, each usable once in place of a TOTP code, shown to the user once (only their
/// digests are stored). `Debug` shows how many, not what.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCodes(pub Vec<String>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

/// The TOTP of `secret`, labelled for an app with `issuer` and `account` (a `:` in either, which
/// the URI format reserves, becomes a space).
fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, totp_rs::TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
}

/// A new secret from the operating system's random source.
pub(super) fn new_secret() -> Result<[u8; SECRET_BYTES], rand::rand_core::OsError> {
    let mut secret = [0u8; SECRET_BYTES];
    OsRng.try_fill_bytes(&mut secret)?;
    Ok(secret)
}

/// The enrolment of `secret` for `account` at `issuer`.
pub(super) fn enrolment(
    secret: &[u8],
    issuer: &str,
    account: &str,
) -> Result<TotpEnrolment, totp_rs::TotpError> {
    let totp = totp(secret, issuer, account)?;
    let otpauth_uri = totp.to_url()?;
    let qr_svg = QrCode::new(otpauth_uri.as_bytes())
        .map(|code| {
            let document = code
                .render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build();
            // The `<svg>` element alone, ready for a page's HTML: the XML declaration the
            // renderer starts with becomes a stray comment there.
            match document.find("<svg") {
                Some(start) => document[start..].to_owned(),
                None => document,
            }
        })
        .unwrap_or_default();
    Ok(TotpEnrolment {
        secret: totp.secret().to_base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// The time step, within one of `now`'s, whose code `code` is for `secret`; `None` for any other
/// code. Spaces and dashes a person types between digits are ignored; anything but six digits is
/// no code.
pub(super) fn matching_step(secret: &[u8], code: &str, now: DateTime<Utc>) -> Option<i64> {
    let digits: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let totp = totp(secret, "-", "-").ok()?;
    let now = u64::try_from(now.timestamp()).ok()?;
    let step = totp.check(&digits, now)?;
    i64::try_from(step).ok()
}

/// New recovery codes: [`RECOVERY_CODES`] of 128 random bits each, written as eight groups of
/// four hex digits, with their digests.
pub(super) fn new_recovery_codes()
-> Result<(RecoveryCodes, Vec<TokenDigest>), rand::rand_core::OsError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut digests = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; RECOVERY_CODE_BYTES];
        OsRng.try_fill_bytes(&mut bytes)?;
        let hex = hex::encode(bytes);
        let grouped = hex
            .as_bytes()
            .chunks(4)
            .map(|group| String::from_utf8_lossy(group).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        digests.push(digest_of(&hex));
        codes.push(grouped);
    }
    Ok((RecoveryCodes(codes), digests))
}

/// The digest a recovery code is stored as, from the code as a person typed it (case, dashes and
/// spaces ignored); `None` for what cannot be one.
pub(super) fn recovery_code_digest(code: &str) -> Option<TokenDigest> {
    let hex: String = code
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let shaped = hex.len() == RECOVERY_CODE_BYTES * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    shaped.then(|| digest_of(&hex))
}

fn digest_of(normalised: &str) -> TokenDigest {
    TokenDigest::from_stored(hex::encode(Sha256::digest(normalised.as_bytes())))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    /// RFC 6238's SHA-1 test secret and its first vector (59 s → 94287082, 8 digits; the 6-digit
    /// code is its last six).
    #[test]
    fn codes_follow_rfc_6238() {
        let secret = b"12345678901234567890";
        let at = Utc.timestamp_opt(59, 0).unwrap();
        assert_eq!(matching_step(secret, "287082", at), Some(1));
        assert_eq!(matching_step(secret, "287 082", at), Some(1));
        assert_eq!(matching_step(secret, "287083", at), None);
        assert_eq!(matching_step(secret, "+87082", at), None);
        assert_eq!(matching_step(secret, "2870820", at), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back_however_typed() {
        let (codes, digests) = new_recovery_codes().unwrap();
        assert_eq!(codes.0.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = digests.iter().map(|d| d.as_str()).collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let first = &codes.0[0];
        assert_eq!(first.len(), 39);
        assert_eq!(recovery_code_digest(first).as_ref(), Some(&digests[0]));
        let typed = first.to_uppercase().replace('-', " ");
        assert_eq!(recovery_code_digest(&typed).as_ref(), Some(&digests[0]));
        assert_eq!(recovery_code_digest("not-a-code"), None);
        assert!(!format!("{codes:?}").contains(first.as_str()));
    }

    #[test]
    fn the_enrolment_names_the_issuer_and_the_account() {
        let enrolment = enrolment(&[7u8; SECRET_BYTES], "Acme: Cloud", "ada@example.com").unwrap();
        assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
        assert!(enrolment.otpauth_uri.contains("ada%40example.com"));
        assert!(enrolment.otpauth_uri.contains(&enrolment.secret));
        assert!(enrolment.qr_svg.starts_with("<svg"), "{}", enrolment.qr_svg);
        assert!(enrolment.qr_svg.trim_end().ends_with("</svg>"));
        assert_eq!(format!("{enrolment:?}"), "TotpEnrolment(<redacted>)");
    }
}
