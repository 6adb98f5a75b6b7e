//! The account lifecycle under attack: what a stolen session, an old password or an old link can
//! still do after a change of email, a reset, a change of password or a sign-out everywhere.
//! Mail is captured in memory (`CapturingMailer`); expiry is written into the past; races are
//! held at a Barrier.

mod email_change;
mod races;
mod tokens;
mod verification;

use authingo::token::{Token, TokenKind};
use authingo::{Auth, OneTimeToken, TokenPurpose, User};
use chrono::{Duration, Utc};

use crate::support::{TestDb, count};

/// Stores a one-time token of `purpose` for `user` (for the address `email`), valid an hour, and
/// returns it raw, as a mail would carry it.
pub(crate) async fn issue(
    auth: &Auth,
    user: &User,
    purpose: TokenPurpose,
    email: Option<&str>,
) -> String {
    let token = Token::generate(TokenKind::OneTime).unwrap();
    auth.store()
        .clone()
        .one_time_tokens()
        .unwrap()
        .issue_token(&OneTimeToken {
            token: token.digest(),
            user_id: user.id.clone(),
            purpose,
            email: email.map(str::to_owned),
            expires_at: Utc::now() + Duration::hours(1),
        })
        .await
        .unwrap();
    token.expose().to_owned()
}

/// How many one-time tokens `user` holds.
pub(crate) async fn tokens_of(db: &TestDb, user: &User) -> i64 {
    count(
        db,
        &format!(
            "SELECT count(*) AS n FROM one_time_tokens WHERE user_id = '{}'",
            user.id
        ),
    )
    .await
}
