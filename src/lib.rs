#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
pub mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
pub mod limits;
pub mod mail;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod memory;
pub mod model;
pub mod password;
pub mod postgres;
pub mod store;
pub mod telemetry;
pub mod token;

pub use auth::{
    Auth, AuthError, ConfigError, DeviceCookie, DeviceTrust, EncryptionKey, ForwardedHeader,
    HttpOptions, IssuedTokens, KeyError, Options, RecoveryCodes, RequestContext, SecondFactorCode,
    SignIn, SignUp, SignedIn, TotpEnrolment, TwoFactorChallenge, TwoFactorProof, TwoFactorStatus,
};
pub use error::{BoxError, InputReason};
/// The CIDR range type [`HttpOptions::trusted_proxies`] takes, from the `ipnet` crate.
pub use ipnet::IpNet;
pub use limits::{RateLimit, RateLimits, SignInThrottle};
pub use model::{
    EndSessions, OneTimeToken, RefreshOutcome, SecondFactorProof, Session, SessionRotation,
    SessionWithUser, SignInChallenge, TokenPurpose, TokenUse, TotpSecret, TrustedDevice, UsedToken,
    User,
};
pub use store::{
    AbuseCounters, Capability, CleanupPace, OneTimeTokens, SecondFactors, SessionManagement, Store,
    StoreError,
};
