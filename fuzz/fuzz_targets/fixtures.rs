//! What every input starts from, written into a `MemoryStore` through the `Store` trait: two
//! accounts (one with a hash the hasher cannot read) and three sessions of the first (live, one
//! whose access token has expired, one whose tokens both have), with fixed tokens the inputs can
//! present; and the store fault an input can ask for.

use authingo::memory::{Fault, MemoryStore};
use authingo::token::{Token, TokenDigest, TokenKind};
use authingo::{Session, Store as _, User};
use chrono::{TimeDelta, Utc};

/// Access and refresh tokens of the fixture sessions, in the shape the crate issues.
pub const LIVE_ACCESS: &str = "LiveAccessToken0123456789_-abcdefghijklmnop";
pub const LIVE_REFRESH: &str =
    "LiveRefreshToken0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
pub const STALE_ACCESS: &str = "StaleAccessToken0123456789_-abcdefghijklmno";
pub const STALE_REFRESH: &str =
    "StaleRefreshToken0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
pub const DEAD_ACCESS: &str = "DeadAccessToken0123456789_-abcdefghijklmnop";
pub const DEAD_REFRESH: &str =
    "DeadRefreshToken0123456789_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The fixture account and its password; a second account holds a hash the hasher cannot read.
pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery";
pub const FOREIGN_EMAIL: &str = "bcrypt@example.com";
pub const FOREIGN_HASH: &str = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

/// Which way a failing store call fails.
#[derive(Debug, Clone, Copy, arbitrary::Arbitrary)]
pub enum FaultKind {
    Unavailable,
    Database,
}

impl From<FaultKind> for Fault {
    fn from(kind: FaultKind) -> Self {
        match kind {
            FaultKind::Unavailable => Fault::Unavailable,
            FaultKind::Database => Fault::Database,
        }
    }
}

fn digest(token: &str, kind: TokenKind) -> TokenDigest {
    Token::parse(token, kind)
        .expect("fixture tokens have the issued shape")
        .digest()
}

/// Empties `store` and writes the fixtures, the account's password hashed as `password_hash`.
pub async fn seed(store: &MemoryStore, password_hash: &str) {
    store.clear();
    let now = Utc::now();
    let user = |id: &str, email: &str, hash: &str| User {
        id: id.to_owned(),
        email: email.to_owned(),
        name: "Ada".to_owned(),
        password_hash: hash.to_owned(),
        email_verified: false,
        created_at: Some(now),
        updated_at: Some(now),
    };
    let session =
        |id: &str, access: &str, refresh: &str, access_in: i64, refresh_in: i64| Session {
            id: id.to_owned(),
            user_id: "usr_ada".to_owned(),
            token: digest(access, TokenKind::Access),
            refresh_token: digest(refresh, TokenKind::Refresh),
            expires_at: now + TimeDelta::minutes(access_in),
            refresh_expires_at: now + TimeDelta::minutes(refresh_in),
            created_at: Some(now),
            rotated_at: None,
            absolute_expires_at: None,
            persistent: true,
            user_agent: None,
            ip_address: None,
        };
    for account in [
        user("usr_ada", EMAIL, password_hash),
        user("usr_go", FOREIGN_EMAIL, FOREIGN_HASH),
    ] {
        store
            .create_user(&account)
            .await
            .expect("a fixture account");
    }
    for fixture in [
        session("ses_live", LIVE_ACCESS, LIVE_REFRESH, 15, 60),
        session("ses_stale", STALE_ACCESS, STALE_REFRESH, -1, 60),
        session("ses_dead", DEAD_ACCESS, DEAD_REFRESH, -60, -1),
    ] {
        store
            .create_session(&fixture)
            .await
            .expect("a fixture session");
    }
}
