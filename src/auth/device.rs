//! Device cookies (OWASP's defence against lockout as a weapon): the signed proof, kept by a
//! browser, that it signed in to an email before, which lets its attempts be counted on their own.
//!
//! A cookie is `v1.<nonce>.<issued>.<mac>`: 16 random bytes and the HMAC-SHA-256 tag in URL-safe
//! base64 without padding, the issue time in Unix seconds. The MAC covers the version, the nonce,
//! the issue time and the SHA-256 of the normalised email it was issued for, which the cookie does
//! not carry: it is trusted only for the email it came with, and only as long as it lives.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac as _};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::Sha256;

use crate::limits::{DeviceDigest, EmailDigest};

/// The shortest key accepted, in bytes: HMAC-SHA-256's output length.
pub(super) const MIN_KEY_BYTES: usize = 32;

/// Random bytes identifying one device.
const NONCE_BYTES: usize = 16;

/// The longest value worth parsing: the version, 22 + 43 base64 characters, a 20-digit time and
/// three dots.
const MAX_COOKIE_CHARS: usize = 2 + 22 + 43 + 20 + 3;

/// How far in the future an issue time may be (another instance's clock a little ahead).
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The key device cookies are signed with. `Debug` shows nothing of it.
#[derive(Clone)]
pub(super) struct DeviceKey(Hmac<Sha256>);

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

/// A device cookie for the client to keep, with its expiry: the value a later sign-in presents
/// in [`RequestContext::device`](super::RequestContext::device). `Debug` shows no value.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCookie {
    value: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    persistent: bool,
}

impl DeviceCookie {
    /// The cookie's value, for the client alone.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// When it was issued (the sign-in's time).
    pub fn issued_at(&self) -> DateTime<Utc> {
        self.issued_at
    }

    /// When the engine stops trusting it.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Whether the client keeps it beyond the browser session: as the session it came with
    /// ("remember me").
    pub fn persistent(&self) -> bool {
        self.persistent
    }
}

impl fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCookie")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("persistent", &self.persistent)
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// A key from the application's secret, at least [`MIN_KEY_BYTES`] long (checked by the
    /// options).
    pub(super) fn new(secret: &[u8]) -> Self {
        // HMAC takes a key of any length: this cannot fail.
        Self(Hmac::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// A key of the operating system's randomness, for a process without a configured one.
    pub(super) fn random() -> Result<Self, rand::rand_core::OsError> {
        let mut secret = [0; MIN_KEY_BYTES];
        OsRng.try_fill_bytes(&mut secret)?;
        Ok(Self::new(&secret))
    }

    /// A new cookie for `email`, issued `now`, trusted for `lifetime`.
    pub(super) fn issue(
        &self,
        email: &EmailDigest,
        now: DateTime<Utc>,
        lifetime: TimeDelta,
        persistent: bool,
    ) -> Result<DeviceCookie, rand::rand_core::OsError> {
        let mut nonce = [0; NONCE_BYTES];
        OsRng.try_fill_bytes(&mut nonce)?;
        let payload = format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(nonce), now.timestamp());
        let tag = self.tag(&payload, email).finalize().into_bytes();
        Ok(DeviceCookie {
            value: format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)),
            issued_at: now,
            expires_at: now + lifetime,
            persistent,
        })
    }

    /// The device a cookie names, if this key signed it for `email` and it is alive at `now`;
    /// `None` for anything else, whatever its shape.
    pub(super) fn verify(
        &self,
        cookie: &str,
        email: &EmailDigest,
        now: DateTime<Utc>,
        lifetime: TimeDelta,
    ) -> Option<DeviceDigest> {
        if cookie.len() > MAX_COOKIE_CHARS {
            return None;
        }
        let (payload, tag) = cookie.rsplit_once('.')?;
        let mut parts = payload.split('.');
        let (version, nonce, issued) = (parts.next()?, parts.next()?, parts.next()?);
        if version != "v1" || parts.next().is_some() {
            return None;
        }
        let nonce = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if nonce.len() != NONCE_BYTES || !issued.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Compared in constant time.
        self.tag(payload, email).verify_slice(&tag).ok()?;
        let issued = DateTime::from_timestamp(issued.parse().ok()?, 0)?;
        let alive = issued <= now + CLOCK_SKEW && now < issued.checked_add_signed(lifetime)?;
        alive.then(|| DeviceDigest::of(&nonce))
    }

    /// The MAC of `payload` for `email`, before finalisation.
    fn tag(&self, payload: &str, email: &EmailDigest) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(payload.as_bytes());
        mac.update(b".");
        mac.update(email.as_str().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: TimeDelta = TimeDelta::days(365);

    fn ada() -> EmailDigest {
        EmailDigest::of("ada@example.com")
    }

    #[test]
    fn a_cookie_is_trusted_for_its_email_while_it_lives_and_under_its_key_only() {
        let key = DeviceKey::new(&[7; 32]);
        let now = Utc::now();
        let cookie = key.issue(&ada(), now, YEAR, true).unwrap();
        assert_eq!(cookie.expires_at(), now + YEAR);
        let value = cookie.expose();
        assert!(value.len() <= MAX_COOKIE_CHARS, "{value}");
        let device = key.verify(value, &ada(), now, YEAR).unwrap();
        // Every cookie names a device of its own.
        let other = key.issue(&ada(), now, YEAR, true).unwrap();
        assert_ne!(key.verify(other.expose(), &ada(), now, YEAR), Some(device));

        let bob = EmailDigest::of("bob@example.com");
        assert_eq!(key.verify(value, &bob, now, YEAR), None);
        assert_eq!(
            DeviceKey::new(&[8; 32]).verify(value, &ada(), now, YEAR),
            None
        );
        let later = now + YEAR;
        assert_eq!(key.verify(value, &ada(), later, YEAR), None);
        assert!(
            key.verify(value, &ada(), later - TimeDelta::seconds(1), YEAR)
                .is_some()
        );
        // Issued by an instance whose clock is far ahead: refused.
        let ahead = key
            .issue(&ada(), now + TimeDelta::hours(1), YEAR, true)
            .unwrap();
        assert_eq!(key.verify(ahead.expose(), &ada(), now, YEAR), None);
        assert!(format!("{cookie:?}").find(value).is_none());
        assert_eq!(format!("{key:?}"), "DeviceKey(..)");
    }

    #[test]
    fn any_change_to_a_cookie_is_refused() {
        let key = DeviceKey::new(&[7; 32]);
        let now = Utc::now();
        let value = key
            .issue(&ada(), now, YEAR, true)
            .unwrap()
            .expose()
            .to_owned();
        for at in 0..value.len() {
            for replacement in [b'A', b'0', b'.', b'_'] {
                let mut changed = value.clone().into_bytes();
                if changed[at] == replacement {
                    continue;
                }
                changed[at] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                assert_eq!(key.verify(&changed, &ada(), now, YEAR), None, "{changed}");
            }
        }
        for garbage in [
            "",
            ".",
            "v1...",
            "v1.a.1.b",
            &format!("{value}.x"),
            &"v".repeat(4096),
        ] {
            assert_eq!(
                key.verify(garbage, &ada(), now, YEAR),
                None,
                "{garbage:.20}"
            );
        }
    }
}
