//! The two cookies: what they carry, their attributes, and their removal.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use cookie::time::{Duration, OffsetDateTime};

use crate::auth::{Auth, HttpOptions, IssuedTokens};

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

/// The cookies of one request, with the refresh cookie's path resolved.
pub(crate) struct Cookies<'a> {
    options: &'a HttpOptions,
    refresh_path: String,
}

impl<'a> Cookies<'a> {
    /// `original` is the full request path, `routed` the part below where the routes are
    /// mounted; the difference is the mount prefix the refresh cookie's path follows.
    pub(crate) fn new(options: &'a HttpOptions, original: &Uri, routed: &Uri) -> Self {
        let refresh_path = options.refresh_path.clone().unwrap_or_else(|| {
            let prefix = original
                .path()
                .strip_suffix(routed.path())
                .unwrap_or_default();
            format!("{prefix}/refresh")
        });
        Self {
            options,
            refresh_path,
        }
    }

    pub(crate) fn session_token<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.session_cookie)
    }

    pub(crate) fn refresh_token<'r>(&self, request: &'r RequestCookies) -> Option<&'r str> {
        request.get(&self.options.refresh_cookie)
    }

    /// Sets both cookies for `tokens`. Both live as long as the refresh token: the server alone
    /// enforces the access token's shorter life, and sign-out can then always find the session.
    pub(crate) fn issue(&self, tokens: &IssuedTokens) -> CookieJar {
        let jar = CookieJar::new();
        let expires = OffsetDateTime::from_unix_timestamp(tokens.refresh_expires_at.timestamp())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let max_age = Duration::seconds(
            (tokens.refresh_expires_at - chrono::Utc::now())
                .num_seconds()
                .max(0),
        );
        let lasting = |mut cookie: Cookie<'static>| {
            cookie.set_expires(expires);
            cookie.set_max_age(max_age);
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
