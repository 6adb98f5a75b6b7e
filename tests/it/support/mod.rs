//! What the test modules share, and the only thing they import from one another: a database of
//! the test's own (`db`), records, constants and checks (`fixtures`), statements counted by task
//! (`counting`), watched password hashers (`hashers`), the one engine builder (`engine`), and the
//! SMTP mailer of the tests that read real mail (`mail`, feature `smtp`), and TOTP codes from
//! `oathtool` (`totp`).

mod counting;
mod db;
mod engine;
mod fixtures;
mod hashers;
#[cfg(feature = "smtp")]
mod mail;
mod totp;

pub(crate) use counting::*;
pub(crate) use db::*;
pub(crate) use engine::*;
pub(crate) use fixtures::*;
pub(crate) use hashers::*;
#[cfg(feature = "smtp")]
pub(crate) use mail::*;
pub(crate) use totp::*;
