//! Records for tests, with expiries relative to now.

use authingo::token::{Token, TokenKind, new_id};
use authingo::{Session, User};
use chrono::{Duration, Utc};

/// A user with a unique id and `email`.
pub(crate) fn user(email: &str) -> User {
    User {
        id: new_id("usr_").unwrap(),
        email: email.to_owned(),
        name: "Ada".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
            .to_owned(),
        email_verified: false,
        created_at: None,
        updated_at: None,
    }
}

/// The raw tokens of a session, as a client would hold them.
pub(crate) struct Tokens {
    pub(crate) access: Token,
    pub(crate) refresh: Token,
}

/// A session of `user` whose access token expires `access_in` from now and refresh token
/// `refresh_in` from now (negative: already expired), with its raw tokens.
pub(crate) fn session(user: &User, access_in: Duration, refresh_in: Duration) -> (Session, Tokens) {
    let tokens = Tokens {
        access: Token::generate(TokenKind::Access).unwrap(),
        refresh: Token::generate(TokenKind::Refresh).unwrap(),
    };
    let now = Utc::now();
    let session = Session {
        id: new_id("ses_").unwrap(),
        user_id: user.id.clone(),
        token: tokens.access.digest(),
        refresh_token: tokens.refresh.digest(),
        expires_at: now + access_in,
        refresh_expires_at: now + refresh_in,
        created_at: None,
    };
    (session, tokens)
}

/// A live session: access valid 15 minutes, refresh 30 days.
pub(crate) fn live_session(user: &User) -> (Session, Tokens) {
    session(user, Duration::minutes(15), Duration::days(30))
}
