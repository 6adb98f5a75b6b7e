//! Integration tests against a real PostgreSQL: one binary, a module per layer.

#![allow(clippy::unwrap_used, reason = "tests")]

mod auth;
mod db;
mod example;
mod fixtures;
mod http;
mod migrations;
mod pgbouncer;
mod rotation;
mod sessions;
mod store;
