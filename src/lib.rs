#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod model;
pub mod postgres;
pub mod store;
pub mod token;

pub use model::{Session, SessionRotation, SessionWithUser, User};
pub use store::{InvalidReason, Store, StoreError};
