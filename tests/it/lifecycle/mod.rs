//! The account lifecycle under attack: what a stolen session, an old password or an old link can
//! still do after a change of email, a reset, a change of password or a sign-out everywhere.
//! Races are held at a Barrier.

mod races;

use authingo::token::{Token, TokenKind};
use authingo::{Auth, OneTimeToken, SessionWithUser, SignedIn, TokenPurpose, User};
use chrono::{Duration, Utc};

pub(crate) fn current(signed_in: &SignedIn) -> SessionWithUser {
    SessionWithUser {
        session: signed_in.session.clone(),
        user: signed_in.user.clone(),
    }
}

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
