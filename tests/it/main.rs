//! Integration tests against a real PostgreSQL: one binary, a module per layer; what they share is
//! in `support`. Mail is captured in memory (`authingo::mail::CapturingMailer`) but in the tests
//! of the real SMTP path (`mail`, and the HTTP and example tests that read real mail), which need
//! the feature `smtp` and start their own aiosmtpd.

#![allow(clippy::unwrap_used, reason = "tests")]

mod auth;
#[cfg(feature = "bcrypt")]
mod bcrypt;
mod capabilities;
#[cfg(feature = "cli")]
mod cli;
mod contract;
mod copy;
mod example;
mod http;
mod lifecycle;
mod limits;
#[cfg(feature = "smtp")]
mod mail;
mod migrations;
mod pgbouncer;
mod pool;
mod recovery;
mod rotation;
mod schema;
mod sessions;
mod sign_up;
mod store;
mod support;
mod telemetry;
mod tls;
mod two_factor;
