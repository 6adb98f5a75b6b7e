//! What the server sent back: a reply's status, JSON and `Set-Cookie`s, checked the way the
//! tests need them, and the tokens a client keeps from them.

use std::collections::BTreeSet;

use authingo::token::{Token, TokenKind};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// The default name of the access-token cookie.
pub(super) const SESSION: &str = "authingo_session";
/// The default name of the refresh-token cookie.
pub(super) const REFRESH: &str = "authingo_refresh";
/// The default name of the device cookie.
pub(super) const DEVICE: &str = "authingo_device";
const THIRTY_DAYS: i64 = 30 * 24 * 60 * 60;

/// The keys of the JSON object `value`.
pub(super) fn key_set(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// A whole reply, read.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    /// `METHOD /path`, for messages.
    pub(super) request: String,
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) cookies: Vec<SetCookie>,
    pub(super) body: String,
}

impl Reply {
    /// Asserts a 200.
    #[track_caller]
    pub(super) fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}: {}",
            self.request,
            self.body
        );
        self
    }

    /// Asserts that the reply sets no cookie.
    #[track_caller]
    pub(super) fn assert_no_cookies(&self) {
        assert!(
            self.cookies.is_empty(),
            "{}: {:?}",
            self.request,
            self.cookies
        );
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("{}: not JSON ({err}): {:?}", self.request, self.body))
    }

    /// The id of the user a sign-up, sign-in or refresh answered with.
    pub(super) fn user_id(&self) -> Value {
        self.json()["user"]["id"].clone()
    }

    /// The two tokens the reply set, checked to be tokens of their kinds.
    pub(super) fn tokens(&self) -> Tokens {
        Tokens::of(self)
    }

    pub(super) fn cookie(&self, name: &str) -> &SetCookie {
        self.cookies
            .iter()
            .find(|cookie| cookie.name == name)
            .unwrap_or_else(|| panic!("no Set-Cookie {name} in {:?}", self.cookies))
    }

    /// Asserts an error reply: `status`, a JSON content type, and the body
    /// `{"error": code, "message": text}` (plus `"field"` for invalid input). Returns the body.
    #[track_caller]
    pub(super) fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}: {}", self.request, self.body);
        let content_type = self.headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap());
        assert_eq!(content_type, Some("application/json"), "{}", self.body);
        let body = self.json();
        assert_eq!(body["error"], code, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no message in {body}");
        let keys = key_set(&body);
        let allowed: BTreeSet<&str> = ["error", "message", "field"].into();
        assert!(keys.is_subset(&allowed), "{body}");
        body
    }

    /// Asserts a 503 `unavailable` that tells when to retry (a positive `Retry-After`, in
    /// seconds) and sets or clears no cookie.
    #[track_caller]
    pub(super) fn assert_unavailable(&self) {
        self.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        let retry_after = self
            .headers
            .get(RETRY_AFTER)
            .unwrap_or_else(|| panic!("{}: no Retry-After in {:?}", self.request, self.headers));
        let seconds: u64 = retry_after.to_str().unwrap().parse().unwrap();
        assert!(seconds > 0, "{}: Retry-After {seconds}", self.request);
        self.assert_no_cookies();
    }

    /// Asserts that the reply expires both cookies with the attributes they were set with.
    #[track_caller]
    pub(super) fn assert_expires_both(&self, refresh_path: &str) {
        assert_eq!(
            self.cookies.len(),
            2,
            "{}: {:?}",
            self.request,
            self.cookies
        );
        let session = self.cookie(SESSION);
        session.assert_removal();
        session.assert_attributes("/", "Lax", true);
        let refresh = self.cookie(REFRESH);
        refresh.assert_removal();
        refresh.assert_attributes(refresh_path, "Strict", true);
    }
}

/// One `Set-Cookie` header: name, value, and attributes (names lower-cased).
#[derive(Debug, Clone)]
pub(super) struct SetCookie {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub(super) fn parse(header: &str) -> Self {
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .unwrap_or_else(|| panic!("malformed Set-Cookie {header:?}"));
        let attributes = parts
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('=') {
                Some((key, value)) => (key.trim().to_lowercase(), Some(value.trim().to_owned())),
                None => (part.to_lowercase(), None),
            })
            .collect();
        Self {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        }
    }

    /// The value of attribute `name`; `Some(None)` for a flag, `None` when absent.
    pub(super) fn attr(&self, name: &str) -> Option<Option<&str>> {
        let found: Vec<_> = self
            .attributes
            .iter()
            .filter(|(key, _)| key == name)
            .collect();
        assert!(found.len() <= 1, "{name} given twice in {self:?}");
        found.first().map(|(_, value)| value.as_deref())
    }

    pub(super) fn value_of(&self, name: &str) -> Option<&str> {
        self.attr(name).flatten()
    }

    pub(super) fn attribute_names(&self) -> BTreeSet<&str> {
        self.attributes
            .iter()
            .map(|(key, _)| key.as_str())
            .collect()
    }

    pub(super) fn max_age(&self) -> Option<i64> {
        self.value_of("max-age").map(|v| v.parse().unwrap())
    }

    pub(super) fn expires(&self) -> Option<DateTime<Utc>> {
        self.value_of("expires").map(|v| {
            DateTime::parse_from_rfc2822(v)
                .unwrap_or_else(|err| panic!("Expires={v}: {err}"))
                .with_timezone(&Utc)
        })
    }

    /// Path, SameSite, HttpOnly, Secure (or not) and no Domain.
    #[track_caller]
    pub(super) fn assert_attributes(&self, path: &str, same_site: &str, secure: bool) {
        assert_eq!(self.value_of("path"), Some(path), "{self:?}");
        assert_eq!(self.value_of("samesite"), Some(same_site), "{self:?}");
        assert_eq!(self.attr("httponly"), Some(None), "{self:?}");
        if secure {
            assert_eq!(self.attr("secure"), Some(None), "{self:?}");
        } else {
            assert_eq!(self.attr("secure"), None, "{self:?}");
        }
        assert_eq!(self.attr("domain"), None, "{self:?}");
    }

    /// Lives as long as a refresh token issued between `before` and `after`: 30 days.
    #[track_caller]
    pub(super) fn assert_lasts_thirty_days(&self, before: DateTime<Utc>, after: DateTime<Utc>) {
        let max_age = self
            .max_age()
            .unwrap_or_else(|| panic!("no Max-Age: {self:?}"));
        assert!(
            (THIRTY_DAYS - 60..=THIRTY_DAYS).contains(&max_age),
            "Max-Age={max_age}"
        );
        let expires = self
            .expires()
            .unwrap_or_else(|| panic!("no Expires: {self:?}"));
        let thirty = Duration::seconds(THIRTY_DAYS);
        assert!(
            expires >= before + thirty - Duration::seconds(1) && expires <= after + thirty,
            "Expires={expires}, issued between {before} and {after}"
        );
    }

    /// An emptied value that the browser drops at once.
    #[track_caller]
    pub(super) fn assert_removal(&self) {
        assert_eq!(self.value, "", "{self:?}");
        let max_age = self.max_age();
        let expires = self.expires();
        assert!(max_age.is_some() || expires.is_some(), "{self:?}");
        if let Some(max_age) = max_age {
            assert_eq!(max_age, 0, "{self:?}");
        }
        if let Some(expires) = expires {
            assert!(expires < Utc::now(), "{self:?}");
        }
    }
}

/// The two raw tokens a client holds after a sign-up, sign-in or refresh.
#[derive(Debug, Clone)]
pub(super) struct Tokens {
    pub(super) access: String,
    pub(super) refresh: String,
}

impl Tokens {
    /// The tokens `reply` set in the default cookies.
    #[track_caller]
    pub(super) fn of(reply: &Reply) -> Self {
        let access = reply.cookie(SESSION).value.clone();
        let refresh = reply.cookie(REFRESH).value.clone();
        assert!(
            Token::parse(&access, TokenKind::Access).is_some(),
            "{access}"
        );
        assert!(
            Token::parse(&refresh, TokenKind::Refresh).is_some(),
            "{refresh}"
        );
        Self { access, refresh }
    }

    /// `authingo_session=<access token>`.
    pub(super) fn access_cookie(&self) -> String {
        format!("{SESSION}={}", self.access)
    }

    /// `authingo_refresh=<refresh token>`.
    pub(super) fn refresh_cookie(&self) -> String {
        format!("{REFRESH}={}", self.refresh)
    }

    /// Both cookies, as a browser on the refresh path sends them.
    pub(super) fn both(&self) -> String {
        format!("{}; {}", self.access_cookie(), self.refresh_cookie())
    }
}

/// A token-shaped refresh token the server never issued.
pub(super) fn unknown_refresh_token() -> String {
    Token::generate(TokenKind::Refresh)
        .unwrap()
        .expose()
        .to_owned()
}

/// A token-shaped access token the server never issued.
pub(super) fn unknown_access_token() -> String {
    Token::generate(TokenKind::Access)
        .unwrap()
        .expose()
        .to_owned()
}
