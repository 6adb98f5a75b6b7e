//! Extractors: the anti-CSRF header, JSON bodies in the crate's error format, and the signed-in
//! user.

use std::fmt;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

use super::cookies::RequestCookies;
use super::error::ApiError;
use crate::auth::{Auth, AuthError};
use crate::model::SessionWithUser;

/// The anti-CSRF header every request from the client carries: browsers do not let another
/// site's page add it without a CORS preflight.
pub(crate) const CLIENT_HEADER: &str = "x-authingo-client";

pub(crate) fn has_client_header(parts: &Parts) -> bool {
    parts
        .headers
        .get(CLIENT_HEADER)
        .is_some_and(|value| value.as_bytes() == b"true")
}

/// Requires `X-Authingo-Client: true` (exactly), else 403.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientHeader;

impl<S: Send + Sync> FromRequestParts<S> for ClientHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if has_client_header(parts) {
            Ok(Self)
        } else {
            Err(ApiError::MissingClientHeader)
        }
    }
}

/// `axum::Json`, with its rejections in the crate's error format, for a body that must be one
/// JSON object whose objects, at any depth, name each key once.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // Through a checked document first: a derived `Deserialize` would also take an array,
        // and would let a key it ignores (or one inside an ignored value) appear twice.
        match axum::Json::<Checked>::from_request(req, state).await {
            Ok(axum::Json(Checked {
                duplicate_key: true,
                ..
            })) => Err(ApiError::DuplicateKey),
            Ok(axum::Json(Checked {
                value: object @ Value::Object(_),
                ..
            })) => T::deserialize(object)
                .map(Self)
                .map_err(|_| ApiError::MalformedJson),
            Ok(_) => Err(ApiError::MalformedJson),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(err))
                if err.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::PayloadTooLarge)
            }
            // Syntax and shape errors alike; serde's message is not echoed, since it can quote
            // the request's values.
            Err(_) => Err(ApiError::MalformedJson),
        }
    }
}

/// A JSON document, and whether an object in it names a key twice. JSON leaves duplicate names
/// to the reader (RFC 8259, 4): `serde_json` keeps the last, other parsers the first, so a proxy
/// that checks one value and this crate that acts on another would disagree about the request.
/// Names are compared after their escapes are decoded (`"em\u0061il"` is `"email"`).
struct Checked {
    value: Value,
    duplicate_key: bool,
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut duplicate_key = false;
        let value = deserializer.deserialize_any(CheckedValue {
            duplicate_key: &mut duplicate_key,
        })?;
        Ok(Self {
            value,
            duplicate_key,
        })
    }
}

/// Reads one value as `serde_json::Value` does, noting any duplicate key on the way. Depth is
/// bounded by `serde_json`'s recursion limit, as for `Value`.
struct CheckedValue<'a> {
    duplicate_key: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for CheckedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CheckedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so the parser never gives one.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(CheckedValue {
            duplicate_key: &mut *self.duplicate_key,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(CheckedValue {
                duplicate_key: &mut *self.duplicate_key,
            })?;
            if object.contains_key(&key) {
                *self.duplicate_key = true;
            } else {
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }
}

/// The signed-in user and their session, for a handler that requires one: the engine's
/// [`SessionWithUser`], as an extractor.
///
/// Extracting it enforces `X-Authingo-Client: true` (403) and a valid session cookie (401),
/// unless [`RequireAuth`](super::RequireAuthLayer) already did for this request. The router's
/// state must give an [`Auth`] (`Auth: FromRef<S>`).
pub type CurrentUser = SessionWithUser;

/// Checks a request's header and session cookie.
pub(crate) async fn authenticate(auth: &Auth, parts: &Parts) -> Result<CurrentUser, ApiError> {
    if !has_client_header(parts) {
        return Err(ApiError::MissingClientHeader);
    }
    let cookies = RequestCookies::from_headers(&parts.headers);
    let token = cookies
        .get(&auth.http_options().session_cookie)
        .ok_or(ApiError::NoSession)?;
    auth.get_session(token)
        .await?
        .ok_or(ApiError::Auth(AuthError::InvalidSession))
}

impl<S> FromRequestParts<S> for SessionWithUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(user) = parts.extensions.get::<Self>() {
            return Ok(user.clone());
        }
        let user = authenticate(&Auth::from_ref(state), parts).await?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// `Option<CurrentUser>` as an extractor: `None` for a request without the header, without a
/// cookie, or with an unknown or expired session. A store failure is still an error (503), not
/// an anonymous request.
impl<S> OptionalFromRequestParts<S> for SessionWithUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(
                ApiError::MissingClientHeader
                | ApiError::NoSession
                | ApiError::Auth(AuthError::InvalidSession),
            ) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A [`CurrentUser`] whose session signed in within
/// [`Options::fresh_age`](crate::Options::fresh_age), for a handler of a sensitive operation:
/// an older session gets 403 `reauthentication_required` (sign in again), besides the 403 and 401
/// of [`CurrentUser`].
#[derive(Debug, Clone)]
pub struct FreshUser(pub CurrentUser);

impl<S> FromRequestParts<S> for FreshUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let current =
            <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        Auth::from_ref(state).require_fresh(&current.session)?;
        Ok(Self(current))
    }
}
