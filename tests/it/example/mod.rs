//! The example server (`examples/server.rs`) as its users run it: the binary `cargo test` built,
//! started on a database of the test's own, driven over raw TCP and by a headless browser, and
//! stopped by a signal.
//!
//! [`ExampleServer`] is the harness; its interface is the example's: `DATABASE_URL`, `PORT=0`,
//! and the address it prints on stdout.

mod bounds;
mod browser;
mod process;
mod routes;

pub(crate) use process::ExampleServer;
