//! The example server (`examples/server.rs`) as its users run it: the binary `cargo test` built,
//! started on a database of the test's own, driven over raw TCP and by a headless browser, and
//! stopped by a signal. With the `smtp` feature, the browser also follows the links the server
//! mails through a real SMTP server.
//!
//! [`ExampleServer`] is the harness; its interface is the example's: `DATABASE_URL`, `PORT=0`,
//! `SMTP_PORT`, `METRICS`, and the address it prints on stdout.

mod bounds;
mod browser;
#[cfg(feature = "smtp")]
mod links;
mod metrics;
mod process;
mod routes;
mod two_factor;

pub(crate) use process::ExampleServer;
