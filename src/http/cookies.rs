//! The cookies: the session's two (what they carry, their attributes, their removal) and the
//! device cookie a sign-in leaves.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use cookie::time::{Duration, OffsetDateTime};

use crate::auth::{Auth, DeviceCookie, DeviceTrust, HttpOptions, IssuedTokens, TwoFactorChallenge};

/// The cookies a request carries, from every `Cookie` header.
///
/// Browsers send cookie values that are not ASCII (a site's `pref=café`, raw UTF-8). A header
/// holding one is read lossily rather than dropped whole, so an unrelated cookie never hides the
/// session's; ours are ASCII and come through unchanged. Values are not percent-decoded: ours
/// never need it. Of two cookies with one name, the first wins (browsers send the one with the
/// longest path first).
#[derive(Debug, Default)]
pub(crate) struct RequestCookies(Vec<Cookie<'static>>);

impl RequestCookies {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|value| {
                let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
                Cookie::split_parse(text)
                    .filter_map(Result::ok)
                    .map(Cookie::into_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        Self(cookies)
    }

    /// The non-empty value of the cookie `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|cookie| cookie.name() == name)
            .map(Cookie::value)
            .filter(|value| !value.is_empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestCookies {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// Where a request was routed: its full path and the part below the routes' mount point.
#[derive(Debug)]
pub(crate) struct Mount {
    original: Uri,
    routed: Uri,
}

impl Mount {
    /// The cookies for this mount point, under `auth`'s settings.
    pub(crate) fn cookies<'a>(&self, auth: &'a Auth) -> Cookies<'a> {
        Cookies::new(auth.http_options(), &self.original, &self.routed)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Mount {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Outside a nested router there is no OriginalUri: the routed path is the whole path.
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
        Ok(Self {
            original,
            routed: parts.uri.clone(),
        })
    }
}

/// The cookies of one request, with the refresh and device cookies' paths resolved.
pub(crate) struct Cookies<'a> {
    options: &'a HttpOptions,
    refresh_path: String,
    device_path: String,
    two_factor_path: String,
}

impl<'a> Cookies<'a> {
    /// `original` is the full request path, `routed` the part below where the routes are
    /// mounted; the difference is the mount prefix the refresh and device cookies' paths follow.
    pub(crate) fn new(options: &'a HttpOptions, original: &Uri, routed: &Uri) -> Self {
        let prefix = original
            .path()
            .strip_suffix(routed.path())
            .unwrap_or_default();
        let below = |path: &Option<String>, route: &str| {
            path.clone().unwrap_or_else(|| format!("{prefix}/{route}"))
        };
        Self {
            options,
            refresh_path: below(&options.refresh_path, "refresh"),
            device_path: options.device_path.clone().unwrap_or_else(|| {
                if prefix.is_empty() {
                    "/".to_owned()
                } else {
                    prefix.to_owned()
                }
            }),
            two_factor_path: format!("{prefix}/two-factor"),
        }
    }

    pub(crate) fn session_token<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.session_cookie)
    }

    pub(crate) fn refresh_token<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.refresh_cookie)
    }

    pub(crate) fn device<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.device_cookie)
    }

    pub(crate) fn trusted_device<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.trusted_device_cookie)
    }

    pub(crate) fn two_factor<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.two_factor_cookie)
    }

    /// The cookie of a sign-in waiting for its second factor: HttpOnly, SameSite=Strict, sent
    /// to the `/two-factor` routes only, gone with the challenge (5 minutes) or the browser
    /// session.
    pub(crate) fn add_two_factor(&self, challenge: &TwoFactorChallenge) -> CookieJar {
        let mut cookie = self
            .base(
                self.options.two_factor_cookie.clone(),
                challenge.expose().to_owned(),
            )
            .path(self.two_factor_path.clone())
            .same_site(SameSite::Strict)
            .build()
            .into_owned();
        let seconds = (challenge.expires_at() - chrono::Utc::now()).num_seconds();
        cookie.set_max_age(Duration::seconds(seconds.max(0)));
        CookieJar::new().add(cookie)
    }

    /// Expires the challenge cookie (answered, or dead).
    pub(crate) fn expire_two_factor(&self, jar: CookieJar) -> CookieJar {
        let mut cookie = self
            .base(self.options.two_factor_cookie.clone(), String::new())
            .path(self.two_factor_path.clone())
            .same_site(SameSite::Strict)
            .build()
            .into_owned();
        cookie.make_removal();
        jar.add(cookie)
    }

    /// Adds the trusted-device cookie to `jar`: HttpOnly, SameSite=Strict, on the device path,
    /// until the trust ends.
    pub(crate) fn add_trusted_device(&self, jar: CookieJar, trust: &DeviceTrust) -> CookieJar {
        let mut cookie = self
            .base(
                self.options.trusted_device_cookie.clone(),
                trust.expose().to_owned(),
            )
            .path(self.device_path.clone())
            .same_site(SameSite::Strict)
            .build()
            .into_owned();
        let expires_at = trust.expires_at();
        cookie.set_expires(
            OffsetDateTime::from_unix_timestamp(expires_at.timestamp())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        cookie.set_max_age(Duration::seconds(
            (expires_at - chrono::Utc::now()).num_seconds().max(0),
        ));
        jar.add(cookie)
    }

    /// Adds the device cookie to `jar`: HttpOnly, SameSite=Strict (only the application's own
    /// sign-in form needs it), on the sign-in route's path, living as long as the engine trusts
    /// it, or the browser session if the session it came with is not remembered.
    pub(crate) fn add_device(&self, jar: CookieJar, device: &DeviceCookie) -> CookieJar {
        let mut cookie = self
            .base(
                self.options.device_cookie.clone(),
                device.expose().to_owned(),
            )
            .path(self.device_path.clone())
            .same_site(SameSite::Strict)
            .build()
            .into_owned();
        if device.persistent() {
            let expires_at = device.expires_at();
            cookie.set_expires(
                OffsetDateTime::from_unix_timestamp(expires_at.timestamp())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            );
            cookie.set_max_age(Duration::seconds(
                (expires_at - device.issued_at()).num_seconds().max(0),
            ));
        }
        jar.add(cookie)
    }

    /// Sets both cookies for `tokens`. Both live as long as the refresh token: the server alone
    /// enforces the access token's shorter life, and sign-out can then always find the session.
    /// Their lifetime counts from when the pair was issued, so that every answer carrying one
    /// pair (a refresh and its retries within the grace window) sets byte-identical cookies. A
    /// session without "remember me" gets browser-session cookies: no `Expires`, no `Max-Age`.
    pub(crate) fn issue(&self, tokens: &IssuedTokens) -> CookieJar {
        let jar = CookieJar::new();
        let lifetime = tokens.persistent.then(|| {
            let expires =
                OffsetDateTime::from_unix_timestamp(tokens.refresh_expires_at.timestamp())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let max_age = Duration::seconds(
                (tokens.refresh_expires_at - tokens.issued_at)
                    .num_seconds()
                    .max(0),
            );
            (expires, max_age)
        });
        let lasting = |mut cookie: Cookie<'static>| {
            if let Some((expires, max_age)) = lifetime {
                cookie.set_expires(expires);
                cookie.set_max_age(max_age);
            }
            cookie
        };
        jar.add(lasting(
            self.session_cookie(tokens.access_token.expose().to_owned()),
        ))
        .add(lasting(
            self.refresh_cookie(tokens.refresh_token.expose().to_owned()),
        ))
    }

    /// Expires both cookies, with the same attributes they were set with.
    pub(crate) fn expire(&self) -> CookieJar {
        let jar = CookieJar::new();
        let gone = |mut cookie: Cookie<'static>| {
            cookie.make_removal();
            cookie
        };
        jar.add(gone(self.session_cookie(String::new())))
            .add(gone(self.refresh_cookie(String::new())))
    }

    fn session_cookie(&self, value: String) -> Cookie<'static> {
        self.base(self.options.session_cookie.clone(), value)
            .path("/")
            .same_site(SameSite::Lax)
            .build()
            .into_owned()
    }

    fn refresh_cookie(&self, value: String) -> Cookie<'static> {
        self.base(self.options.refresh_cookie.clone(), value)
            .path(self.refresh_path.clone())
            .same_site(SameSite::Strict)
            .build()
            .into_owned()
    }

    fn base(&self, name: String, value: String) -> cookie::CookieBuilder<'static> {
        let builder = Cookie::build((name, value))
            .http_only(true)
            .secure(self.options.secure);
        match &self.options.domain {
            Some(domain) => builder.domain(domain.clone()),
            None => builder,
        }
    }
}

#[cfg(test)]
mod properties {
    //! Request cookies under any header bytes: no panic, and the session cookie is found
    //! whatever surrounds it.

    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    const SESSION: &str = "authingo_session";

    /// A byte a `Cookie` header can carry on the wire (what `HeaderValue` and hyper accept):
    /// visible ASCII, space, tab and any byte from 0x80 up, so raw UTF-8 and invalid UTF-8;
    /// the separators are drawn more often than the rest.
    fn header_byte() -> impl Strategy<Value = u8> {
        let mut bytes: Vec<u8> = (0x20..=0x7e).chain(0x80..=0xff).chain([b'\t']).collect();
        bytes.extend(b";=\" ,".repeat(8));
        prop::sample::select(bytes)
    }

    fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(header_byte(), 0..max)
    }

    fn headers(values: &[Vec<u8>]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            let value = HeaderValue::from_bytes(value).expect("only header bytes are generated");
            headers.append(header::COOKIE, value);
        }
        headers
    }

    /// A name that is ours to the eye but not to a browser, or any other.
    fn other_name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            header_bytes(20),
            prop::sample::select(vec![
                "authingo_sessio",
                "authingo_session_",
                "xauthingo_session",
                "Authingo_Session",
                "AUTHINGO_SESSION",
                "authingo_refresh",
                "authingo%5Fsession",
                "pref",
                "",
            ])
            .prop_map(|name| name.as_bytes().to_vec()),
        ]
    }

    /// Another cookie, as a browser or a hostile client might send it: any name but ours, and a
    /// value of any header bytes, `;` and `=` included.
    fn other_cookie() -> impl Strategy<Value = Vec<u8>> {
        (other_name(), header_bytes(40))
            .prop_map(|(mut name, value)| {
                name.push(b'=');
                name.extend(value);
                name
            })
            .prop_filter("names our cookie", |cookie| !names_ours(cookie))
    }

    /// Whether `cookie`'s bytes, split where the parser splits them, hold a pair it names as ours.
    /// It trims names of Unicode whitespace, so `\u{a0}authingo_session` is ours to it though
    /// not to a browser; whoever can set that cookie can as well set one named exactly like ours.
    fn names_ours(cookie: &[u8]) -> bool {
        String::from_utf8_lossy(cookie).split(';').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(name, _)| name.trim() == SESSION)
        })
    }

    fn token() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect();
        prop::collection::vec(prop::sample::select(alphabet), 43).prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_cookie_header_bytes_are_read_without_panic(
            values in prop::collection::vec(header_bytes(200), 0..4),
        ) {
            let cookies = RequestCookies::from_headers(&headers(&values));
            for name in [SESSION, "authingo_refresh", "", "pref"] {
                if let Some(value) = cookies.get(name) {
                    prop_assert!(!value.is_empty());
                }
            }
        }

        #[test]
        fn the_session_cookie_is_found_whatever_surrounds_it(
            token in token(),
            before in prop::collection::vec(other_cookie(), 0..4),
            after in prop::collection::vec(other_cookie(), 0..4),
            separate_headers in any::<bool>(),
            separator in prop::sample::select(vec!["; ", ";", ";  ", " ; "]),
        ) {
            let ours = format!("{SESSION}={token}").into_bytes();
            let values: Vec<Vec<u8>> = if separate_headers {
                before.iter().chain([&ours]).chain(&after).cloned().collect()
            } else {
                let all: Vec<&[u8]> = before
                    .iter()
                    .chain([&ours])
                    .chain(&after)
                    .map(Vec::as_slice)
                    .collect();
                vec![all.join(separator.as_bytes())]
            };
            let cookies = RequestCookies::from_headers(&headers(&values));
            prop_assert_eq!(
                cookies.get(SESSION),
                Some(token.as_str()),
                "{:?}",
                values.iter().map(|v| String::from_utf8_lossy(v)).collect::<Vec<_>>()
            );
        }
    }
}
