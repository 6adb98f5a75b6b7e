//! The HTTP layer end to end: the router and protected routes served by `axum::serve` on an
//! ephemeral port, driven over real TCP with reqwest, on a database of the test's own.
//!
//! Cookies are read from the `Set-Cookie` headers and sent back by hand (the default cookies are
//! `Secure`, which reqwest's cookie store keeps off `http://`); one test runs a browser-like
//! cookie jar against `secure(false)`.
//!
//! `app` is the application under test, `server` the harness that serves it and sends requests
//! (`server.refresh(&tokens.refresh_cookie(), &RequestContext::default())`, `server.get("/api/me").cookie(..).send()`), and
//! `reply` what comes back, with its assertions. The other modules are the tests, by concern.

mod app;
mod reply;
mod server;

mod address;
mod cookies;
mod errors;
mod expiry;
mod faults;
mod forwarded;
mod hostile;
mod instances;
mod limits;
#[cfg(feature = "smtp")]
mod recovery;
mod refresh;
mod secrets;
mod session;
mod sessions;
mod two_factor;
