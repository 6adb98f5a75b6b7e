//! The account lifecycle under attack: what a stolen session, an old password or an old link can
//! still do after a change of email, a reset, a change of password or a sign-out everywhere.
//! Mail is captured in memory; expiry is written into the past; races are held at a Barrier.

mod email_change;
mod races;
mod tokens;
mod verification;

use std::sync::Mutex;

use async_trait::async_trait;
use authingo::mail::{MailError, Mailer, Message};
use authingo::token::{Token, TokenKind};
use authingo::{Auth, OneTimeToken, TokenPurpose, User};
use chrono::{Duration, Utc};

use crate::support::{TestDb, count};

/// Keeps every message the engine sends, in order.
#[derive(Default)]
pub(crate) struct Captured(Mutex<Vec<Message>>);

#[async_trait]
impl Mailer for Captured {
    async fn send(&self, message: Message) -> Result<(), MailError> {
        self.0.lock().unwrap().push(message);
        Ok(())
    }
}

impl Captured {
    /// The messages sent to `to` so far.
    pub(crate) fn to(&self, to: &str) -> Vec<Message> {
        let messages = self.0.lock().unwrap();
        messages.iter().filter(|m| m.to == to).cloned().collect()
    }

    pub(crate) fn all(&self) -> Vec<Message> {
        self.0.lock().unwrap().clone()
    }
}

/// The token of a message's link.
pub(crate) fn token_of(message: &Message) -> String {
    let link = message.link.as_deref().expect("a link");
    link.split_once("?token=").unwrap().1.to_owned()
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
