//! Integration tests against a real PostgreSQL: one binary, a module per layer.

#![allow(clippy::unwrap_used, reason = "tests")]

mod auth;
#[cfg(feature = "bcrypt")]
mod bcrypt;
mod capabilities;
mod contract;
mod copy;
mod counting;
mod db;
mod example;
mod fixtures;
mod http;
mod lifecycle;
mod limits;
#[cfg(feature = "smtp")]
mod mail;
mod migrations;
mod pgbouncer;
mod pool;
#[cfg(feature = "smtp")]
mod recovery;
mod rotation;
mod schema;
mod sessions;
#[cfg(feature = "smtp")]
mod sign_up;
mod store;
mod tls;
