//! The two cookies: what they carry, their attributes, and their removal.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::Uri;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use cookie::time::{Duration, OffsetDateTime};

use crate::auth::{Auth, HttpOptions, IssuedTokens};

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
    type Rejection = std::convert::Infallible;

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

    pub(crate) fn session_token<'j>(&self, jar: &'j CookieJar) -> Option<&'j str> {
        jar.get(&self.options.session_cookie)
            .map(Cookie::value)
            .filter(|value| !value.is_empty())
    }

    pub(crate) fn refresh_token<'j>(&self, jar: &'j CookieJar) -> Option<&'j str> {
        jar.get(&self.options.refresh_cookie)
            .map(Cookie::value)
            .filter(|value| !value.is_empty())
    }

    /// Sets both cookies for `tokens`. Both live as long as the refresh token: the server alone
    /// enforces the access token's shorter life, and sign-out can then always find the session.
    pub(crate) fn issue(&self, jar: CookieJar, tokens: &IssuedTokens) -> CookieJar {
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
    pub(crate) fn expire(&self, jar: CookieJar) -> CookieJar {
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
