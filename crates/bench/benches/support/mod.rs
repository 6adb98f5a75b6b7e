//! The pieces of the store bench; `benches/store.rs` puts them together, one function per
//! section.

pub(crate) mod baseline;
pub(crate) mod cli;
pub(crate) mod cpu;
pub(crate) mod db;
pub(crate) mod figures;
pub(crate) mod flood;
pub(crate) mod generator;
pub(crate) mod measure;
pub(crate) mod peers;
pub(crate) mod pgbench;
pub(crate) mod report;
pub(crate) mod signup;
pub(crate) mod web;
pub(crate) mod workload;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub(crate) type Result<T, E = BoxError> = std::result::Result<T, E>;
