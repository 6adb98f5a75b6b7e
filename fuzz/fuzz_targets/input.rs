//! What a fuzz input decodes to: a few requests, each a method, a path below the mount point,
//! the headers that matter (and any others), a body, and a store fault; and the request built
//! from one.

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use serde_json::{Map, Value, json};

use crate::MOUNT;
use crate::fixtures::*;

// Each enum lists first the choice of a well-formed request (what bytes of zero decode to), so
// that mutations start from requests the routes accept and reach what lies behind them.

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub requests: Vec<Req>,
}

#[derive(Arbitrary, Debug)]
pub struct Req {
    pub method: MethodChoice,
    pub path: PathChoice,
    pub query: Option<String>,
    pub client: ClientChoice,
    pub content_type: ContentType,
    pub cookie_headers: Vec<Vec<CookiePart>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: BodyChoice,
    /// The store call (counted from 0 within this request) that fails, and how.
    pub fault: Option<(u8, FaultKind)>,
}

#[derive(Arbitrary, Debug)]
pub enum MethodChoice {
    Post,
    Get,
    Put,
    Delete,
    Head,
    Options,
    Patch,
    Other(String),
}

#[derive(Arbitrary, Debug)]
pub enum PathChoice {
    SignUp,
    SignIn,
    Session,
    SignOut,
    Refresh,
    Root,
    /// Anything after the mount point.
    Other(String),
}

#[derive(Arbitrary, Debug)]
pub enum ClientChoice {
    True,
    Absent,
    Other(Vec<u8>),
    /// `true` and another value, in two headers.
    Twice(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub enum ContentType {
    Json,
    JsonCharset,
    VendorJson,
    Text,
    Absent,
    Other(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub enum Fixture {
    Live,
    Stale,
    Dead,
}

#[derive(Arbitrary, Debug)]
pub enum CookiePart {
    /// A token set by an earlier answer to this input, under its own cookie's name.
    Issued {
        refresh: bool,
    },
    Session(Fixture),
    Refresh(Fixture),
    /// A fixture's token under the other cookie's name.
    Swapped(Fixture),
    /// A value under one of our names: shaped like a token or not.
    Ours {
        refresh: bool,
        value: Vec<u8>,
    },
    Named {
        name: String,
        value: Vec<u8>,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub enum BodyChoice {
    /// `{"email", "password", "name"}` as sign-up and sign-in expect them.
    Account {
        email: EmailField,
        password: PasswordField,
        name: NameField,
    },
    Fields(Vec<(FieldName, Field)>),
    Raw(Vec<u8>),
    Empty,
}

#[derive(Arbitrary, Debug)]
pub enum EmailField {
    /// `local@domain`: mostly a well-formed, new address.
    Address {
        local: String,
        domain: String,
    },
    /// The fixture account's, in upper case.
    Fixture,
    /// The account whose hash the hasher cannot read.
    Foreign,
    Missing,
    Other(Field),
}

#[derive(Arbitrary, Debug)]
pub enum PasswordField {
    Fixture,
    Missing,
    Other(Field),
}

#[derive(Arbitrary, Debug)]
pub enum NameField {
    Fixture,
    Missing,
    Other(Field),
}

#[derive(Arbitrary, Debug)]
pub enum FieldName {
    Email,
    Password,
    Name,
    Other(String),
}

#[derive(Arbitrary, Debug)]
pub enum Field {
    Text(String),
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Array(Vec<String>),
    Object(Vec<(String, String)>),
}

fn tokens(fixture: &Fixture) -> (&'static str, &'static str) {
    match fixture {
        Fixture::Live => (LIVE_ACCESS, LIVE_REFRESH),
        Fixture::Stale => (STALE_ACCESS, STALE_REFRESH),
        Fixture::Dead => (DEAD_ACCESS, DEAD_REFRESH),
    }
}

/// The tokens the last answer that set cookies set: what a browser would send next.
#[derive(Default)]
pub struct Issued {
    pub access: Option<String>,
    pub refresh: Option<String>,
}

fn cookie_bytes(part: &CookiePart, issued: &Issued) -> Vec<u8> {
    let pair = |name: &str, value: &[u8]| [name.as_bytes(), b"=", value].concat();
    match part {
        CookiePart::Session(fixture) => pair("authingo_session", tokens(fixture).0.as_bytes()),
        CookiePart::Refresh(fixture) => pair("authingo_refresh", tokens(fixture).1.as_bytes()),
        CookiePart::Swapped(fixture) => {
            let (access, refresh) = tokens(fixture);
            [
                pair("authingo_session", refresh.as_bytes()),
                b"; ".to_vec(),
                pair("authingo_refresh", access.as_bytes()),
            ]
            .concat()
        }
        CookiePart::Ours { refresh, value } => {
            let name = if *refresh {
                "authingo_refresh"
            } else {
                "authingo_session"
            };
            pair(name, value)
        }
        CookiePart::Named { name, value } => pair(name, value),
        CookiePart::Raw(bytes) => bytes.clone(),
        CookiePart::Issued { refresh: false } => pair(
            "authingo_session",
            issued.access.as_deref().unwrap_or("").as_bytes(),
        ),
        CookiePart::Issued { refresh: true } => pair(
            "authingo_refresh",
            issued.refresh.as_deref().unwrap_or("").as_bytes(),
        ),
    }
}

fn field(value: &Field) -> Value {
    match value {
        Field::Text(text) => Value::String(text.clone()),
        Field::Null => Value::Null,
        Field::Bool(b) => json!(b),
        Field::Int(n) => json!(n),
        Field::Float(x) => json!(x),
        Field::Array(items) => json!(items),
        Field::Object(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

pub fn body(choice: &BodyChoice) -> Vec<u8> {
    match choice {
        BodyChoice::Empty => Vec::new(),
        BodyChoice::Raw(bytes) => bytes.clone(),
        BodyChoice::Account {
            email,
            password,
            name,
        } => {
            let mut object = Map::new();
            let email = match email {
                EmailField::Address { local, domain } => Some(json!(format!("{local}@{domain}"))),
                EmailField::Fixture => Some(json!(EMAIL.to_uppercase())),
                EmailField::Foreign => Some(json!(FOREIGN_EMAIL)),
                EmailField::Missing => None,
                EmailField::Other(value) => Some(field(value)),
            };
            let password = match password {
                PasswordField::Fixture => Some(json!(PASSWORD)),
                PasswordField::Missing => None,
                PasswordField::Other(value) => Some(field(value)),
            };
            let name = match name {
                NameField::Fixture => Some(json!("Ada")),
                NameField::Missing => None,
                NameField::Other(value) => Some(field(value)),
            };
            for (key, value) in [("email", email), ("password", password), ("name", name)] {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            serde_json::to_vec(&object).expect("a map of JSON values serialises")
        }
        BodyChoice::Fields(fields) => {
            let object: Map<String, Value> = fields
                .iter()
                .map(|(name, value)| {
                    let name = match name {
                        FieldName::Email => "email".to_owned(),
                        FieldName::Password => "password".to_owned(),
                        FieldName::Name => "name".to_owned(),
                        FieldName::Other(name) => name.clone(),
                    };
                    (name, field(value))
                })
                .collect();
            serde_json::to_vec(&object).expect("a map of JSON values serialises")
        }
    }
}

pub fn request(req: &Req, issued: &Issued) -> Request<Body> {
    let method = match &req.method {
        MethodChoice::Get => Method::GET,
        MethodChoice::Post => Method::POST,
        MethodChoice::Put => Method::PUT,
        MethodChoice::Delete => Method::DELETE,
        MethodChoice::Head => Method::HEAD,
        MethodChoice::Options => Method::OPTIONS,
        MethodChoice::Patch => Method::PATCH,
        MethodChoice::Other(name) => Method::from_bytes(name.as_bytes()).unwrap_or(Method::POST),
    };
    let route = match &req.path {
        PathChoice::SignUp => "/sign-up".to_owned(),
        PathChoice::SignIn => "/sign-in".to_owned(),
        PathChoice::Session => "/session".to_owned(),
        PathChoice::SignOut => "/sign-out".to_owned(),
        PathChoice::Refresh => "/refresh".to_owned(),
        PathChoice::Root => String::new(),
        // Below the mount point: `/api/authx` is another application's path.
        PathChoice::Other(rest) => format!("/{rest}"),
    };
    let query = req
        .query
        .as_deref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    // What a server could not have parsed never reaches the router: fall back to the mount.
    let uri = Uri::try_from(format!("{MOUNT}{route}{query}"))
        .or_else(|_| Uri::try_from(format!("{MOUNT}{route}")))
        .unwrap_or_else(|_| Uri::from_static(MOUNT));

    let mut builder = Request::builder().method(method).uri(uri);
    let headers = builder.headers_mut().expect("a valid builder so far");
    let mut append = |name: HeaderName, value: &[u8]| {
        // Bytes a header cannot carry on the wire are refused by the server before any router.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    };
    match &req.client {
        ClientChoice::Absent => {}
        ClientChoice::True => append(HeaderName::from_static("x-authingo-client"), b"true"),
        ClientChoice::Other(value) => append(HeaderName::from_static("x-authingo-client"), value),
        ClientChoice::Twice(value) => {
            append(HeaderName::from_static("x-authingo-client"), b"true");
            append(HeaderName::from_static("x-authingo-client"), value);
        }
    }
    let content_type: Option<&[u8]> = match &req.content_type {
        ContentType::Json => Some(b"application/json"),
        ContentType::JsonCharset => Some(b"application/json; charset=utf-8"),
        ContentType::VendorJson => Some(b"application/vnd.api+json"),
        ContentType::Text => Some(b"text/plain"),
        ContentType::Absent => None,
        ContentType::Other(value) => Some(value),
    };
    if let Some(value) = content_type {
        append(header::CONTENT_TYPE, value);
    }
    for parts in &req.cookie_headers {
        let value = parts
            .iter()
            .map(|part| cookie_bytes(part, issued))
            .collect::<Vec<_>>()
            .join(&b"; "[..]);
        append(header::COOKIE, &value);
    }
    for (name, value) in &req.headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            append(name, value);
        }
    }
    builder
        .body(Body::from(body(&req.body)))
        .expect("method, URI and headers are valid")
}
