//! Request decoding: arbitrary requests (method, path below the mount point, `Cookie`,
//! `Content-Type`, `X-Authingo-Client` and other headers, body; see `input.rs`) through
//! `auth.router()`, a few per input, over a `MemoryStore` seeded with fixtures before each input,
//! so that a sign-up or a refresh can be followed by requests carrying the cookies it set.
//!
//! Checked for every answer: no panic; a status from the README's table (or 200, 404, 405) with
//! the code that table gives it, as a JSON body; `Cache-Control: no-store`; cookies set or
//! cleared only by a 200 or a 401, and only ever to a token of the right shape; 503 only when the
//! store was made unavailable, with `Retry-After`; 500 only for a store failure of the other
//! kind; no token and no password hash in any body.

#![no_main]

mod fixtures;
mod input;

use std::sync::{Arc, OnceLock};

use authingo::memory::MemoryStore;
use authingo::password::{PasswordError, PasswordHasher};
use authingo::token::{Token, TokenKind};
use authingo::{Auth, HttpOptions, Options};
use axum::Router;
use axum::http::{HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use fixtures::*;
use input::{Input, Issued, MethodChoice, Req, body, request};

const MOUNT: &str = "/api/auth";
/// Small, so that the fuzzer reaches the 413 answer with inputs of its usual size.
const MAX_BODY_BYTES: usize = 512;
const MAX_REQUESTS: usize = 4;

/// A hasher that costs nothing: argon2's milliseconds would bound the fuzzer to a few hundred
/// executions a second, and its work is not what is fuzzed here.
struct CheapHasher;

const CHEAP_PREFIX: &str = "cheap$";

fn cheap_hash(password: &str) -> String {
    // FNV-1a: stable, and enough to tell passwords apart in a harness.
    let hash = password
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{CHEAP_PREFIX}{hash:016x}")
}

impl PasswordHasher for CheapHasher {
    fn hash(&self, password: &str) -> Result<String, PasswordError> {
        Ok(cheap_hash(password))
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        if !hash.starts_with(CHEAP_PREFIX) {
            return Err(PasswordError("not a hash of this hasher".into()));
        }
        Ok(cheap_hash(password) == hash)
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    store: Arc<MemoryStore>,
    password_hash: String,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let store = Arc::new(MemoryStore::new());
        // The default rate limits and sign-in throttle stay on: the store keeps their counters,
        // and a 429 is an answer the README documents.
        let options = Options::with_shared_store(store.clone())
            .cleanup_interval(None)
            .password_hasher(Arc::new(CheapHasher))
            .max_concurrent_hashes(1)
            .http(HttpOptions::default().max_body_bytes(MAX_BODY_BYTES));
        let auth = {
            let _entered = runtime.enter();
            Auth::new(options).expect("valid options")
        };
        runtime.block_on(auth.ready()).expect("the dummy hash");
        let router = Router::new().nest(MOUNT, auth.router());
        Harness {
            runtime,
            router,
            store,
            password_hash: cheap_hash(PASSWORD),
        }
    })
}

/// The codes the README's table gives each status.
fn codes(status: u16) -> Option<&'static [&'static str]> {
    Some(match status {
        400 => &[
            "invalid_input",
            "malformed_json",
            "invalid_token",
            "password_too_common",
        ],
        401 => &["invalid_credentials", "no_session", "invalid_session"],
        403 => &[
            "missing_client_header",
            "reauthentication_required",
            "email_not_verified",
        ],
        404 => &["not_found", "session_not_found"],
        405 => &["method_not_allowed"],
        409 => &["email_taken"],
        413 => &["payload_too_large"],
        415 => &["unsupported_media_type"],
        500 => &["internal"],
        429 => &["too_many_requests", "account_locked"],
        503 => &["unavailable", "busy"],
        _ => return None,
    })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn run(harness: &Harness, req: &Req, issued: &mut Issued) {
    match req.fault {
        Some((call, kind)) => harness.store.fail_call(usize::from(call % 4), kind.into()),
        None => harness.store.clear_fault(),
    }
    let is_head = matches!(req.method, MethodChoice::Head);
    let request = request(req, issued);
    let sent = body(&req.body);
    // axum's `nest` hands the routes `/api/auth` and `/api/auth/…` but not `/api/auth/`, whose
    // answer is the application's own fallback (here axum's empty 404).
    let routed = request.uri().path() != format!("{MOUNT}/");
    let response = harness
        .runtime
        .block_on(harness.router.clone().oneshot(request))
        .expect("the router is infallible");
    let status = response.status().as_u16();
    if !routed {
        assert_eq!(status, 404);
        return;
    }
    let headers = response.headers().clone();
    let body = harness
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
        .expect("a response body in memory");
    let fault = harness
        .store
        .fault_fired()
        .then_some(req.fault.map(|(_, kind)| kind));

    assert_eq!(
        headers
            .get(header::CACHE_CONTROL)
            .map(HeaderValue::as_bytes),
        Some(&b"no-store"[..]),
        "{status} without Cache-Control: no-store"
    );
    let set_cookie = headers.get_all(header::SET_COOKIE).iter().count();
    assert!(
        set_cookie == 0 || matches!(status, 200 | 401),
        "{status} that sets or clears a cookie"
    );
    match status {
        200 => {}
        503 => {
            assert!(
                matches!(fault, Some(Some(FaultKind::Unavailable))) || contains(&body, "\"busy\""),
                "503 without an unavailable store or a full hashing queue"
            );
            assert!(
                headers.contains_key(header::RETRY_AFTER),
                "503 without Retry-After"
            );
        }
        500 => assert!(
            matches!(fault, Some(Some(FaultKind::Database))),
            "500 without a failing store: {}",
            String::from_utf8_lossy(&body)
        ),
        _ => assert!(codes(status).is_some(), "undocumented status {status}"),
    }
    if !is_head {
        let json: Value = serde_json::from_slice(&body).unwrap_or_else(|err| {
            panic!("{status} with a body that is not JSON ({err}): {body:?}")
        });
        if status == 200 {
            assert!(
                json.get("user").is_some() || json.get("success") == Some(&json!(true)),
                "200 with {json}"
            );
        } else {
            let code = json.get("error").and_then(Value::as_str);
            assert!(
                code.is_some_and(|code| codes(status).is_some_and(|codes| codes.contains(&code))),
                "{status} with {json}"
            );
        }
    }
    for cookie in headers.get_all(header::SET_COOKIE) {
        let cookie = cookie.to_str().expect("our cookies are ASCII");
        let pair = cookie.split(';').next().unwrap_or_default();
        let (name, value) = pair.split_once('=').expect("a cookie is name=value");
        // The device cookie a sign-in gives: signed, HttpOnly, never a session token.
        if name == "authingo_device" {
            assert!(
                cookie.contains("HttpOnly"),
                "a device cookie scripts can read: {cookie}"
            );
            assert!(
                value.starts_with("v1.") && value.split('.').count() == 4,
                "a device cookie of another shape: {cookie}"
            );
            continue;
        }
        let (slot, kind) = match name {
            "authingo_session" => (&mut issued.access, TokenKind::Access),
            "authingo_refresh" => (&mut issued.refresh, TokenKind::Refresh),
            _ => panic!("an unknown cookie set: {cookie}"),
        };
        assert!(
            value.is_empty() || Token::parse(value, kind).is_some(),
            "a cookie that is not a token: {cookie}"
        );
        // An expired (emptied) cookie is one the browser drops.
        *slot = (!value.is_empty()).then(|| value.to_owned());
    }
    for secret in [
        LIVE_ACCESS,
        LIVE_REFRESH,
        STALE_ACCESS,
        STALE_REFRESH,
        DEAD_ACCESS,
        DEAD_REFRESH,
        harness.password_hash.as_str(),
        FOREIGN_HASH,
    ]
    .into_iter()
    .chain(issued.access.as_deref())
    .chain(issued.refresh.as_deref())
    {
        // A value the request itself sent (a name, say) may come back.
        assert!(
            contains(&sent, secret) || !contains(&body, secret),
            "a secret in a {status} body"
        );
    }
}

fuzz_target!(|input: Input| {
    let harness = harness();
    harness
        .runtime
        .block_on(seed(&harness.store, &harness.password_hash));
    let mut issued = Issued::default();
    for req in input.requests.iter().take(MAX_REQUESTS) {
        run(harness, req, &mut issued);
    }
});
