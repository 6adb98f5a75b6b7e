//! A mailer for tests (feature `test-util`): it sends nothing and keeps every message.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use url::Url;

use super::{MailError, Mailer, Message};

/// A [`Mailer`] for tests: sends nothing, and keeps every message it is given, in order, for the
/// test to read (recipient, subject, text and link: each a [`Message`]).
///
/// The engine mails from tasks of its own, off the request path, so a message is not there yet
/// when the call that causes it returns. [`Auth::flush_background`](crate::Auth::flush_background)
/// waits for those tasks: after it, every message is here, and nothing needs to be polled or
/// waited for.
///
/// Hold it in an [`Arc`](std::sync::Arc) and give the engine a clone:
///
/// ```no_run
/// use std::sync::Arc;
///
/// use authingo::mail::CapturingMailer;
/// use authingo::{Auth, Options, RequestContext};
///
/// # async fn run(store: authingo::postgres::PgStore) -> Result<(), Box<dyn std::error::Error>> {
/// let mail = Arc::new(CapturingMailer::new());
/// let auth = Auth::new(Options::new(store).mailer(mail.clone()))?;
/// let client = RequestContext::default();
/// auth.sign_up("ada@example.com", "correct horse battery", "Ada", &client).await?;
/// auth.request_password_reset("ada@example.com", &client).await?;
/// auth.flush_background().await;
///
/// let reset = mail.last_to("ada@example.com").expect("a reset link");
/// assert_eq!(reset.subject, "Reset your password");
/// let token = reset.link_token().expect("a token in the link");
/// auth.reset_password(&token, "a brand new password", &client).await?;
/// # Ok(()) }
/// ```
///
/// The messages themselves, without an engine:
///
/// ```
/// use authingo::mail::{CapturingMailer, Mailer as _, Message};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authingo::mail::MailError> {
/// let mail = CapturingMailer::new();
/// mail.send(Message {
///     to: "ada@example.com".to_owned(),
///     subject: "Verify your address".to_owned(),
///     text: "Follow this link: https://app.example/verify-email?token=abc".to_owned(),
///     link: Some("https://app.example/verify-email?token=abc".to_owned()),
/// })
/// .await?;
///
/// assert_eq!(mail.len(), 1);
/// let sent = mail.last_to("ada@example.com").unwrap();
/// assert_eq!(sent.link_token().as_deref(), Some("abc"));
/// assert!(mail.sent_to("bob@example.com").is_empty());
/// assert_eq!(mail.take().len(), 1);
/// assert!(mail.is_empty());
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
#[derive(Default)]
pub struct CapturingMailer {
    sent: Mutex<Vec<Message>>,
}

impl CapturingMailer {
    /// A mailer that has kept nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message kept so far, in the order they were sent.
    pub fn sent(&self) -> Vec<Message> {
        self.messages().clone()
    }

    /// The messages to `to`, in order. The engine mails addresses as it stores them: trimmed and
    /// lower-cased.
    pub fn sent_to(&self, to: &str) -> Vec<Message> {
        self.messages()
            .iter()
            .filter(|message| message.to == to)
            .cloned()
            .collect()
    }

    /// The last message to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<Message> {
        self.messages()
            .iter()
            .rev()
            .find(|message| message.to == to)
            .cloned()
    }

    /// Every message kept so far, in order, leaving none: what the test reads next is what was
    /// sent after this call.
    pub fn take(&self) -> Vec<Message> {
        std::mem::take(&mut *self.messages())
    }

    /// Forgets every message kept so far.
    pub fn clear(&self) {
        self.messages().clear();
    }

    /// How many messages are kept.
    pub fn len(&self) -> usize {
        self.messages().len()
    }

    /// Whether no message is kept.
    pub fn is_empty(&self) -> bool {
        self.messages().is_empty()
    }

    fn messages(&self) -> MutexGuard<'_, Vec<Message>> {
        // Only whole messages are ever pushed: a panic elsewhere while the lock was held left the
        // list as it was.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CapturingMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The messages carry tokens: their number only.
        f.debug_struct("CapturingMailer")
            .field("sent", &self.len())
            .finish()
    }
}

#[async_trait]
impl Mailer for CapturingMailer {
    async fn send(&self, message: Message) -> Result<(), MailError> {
        self.messages().push(message);
        Ok(())
    }
}

impl Message {
    /// The one-time token this message's link carries (its `token` query parameter), as the
    /// recipient would submit it; `None` without a link, or with a link that has no token.
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn link_token(&self) -> Option<String> {
        // A relative link (an application URL without a host) is read against any base.
        let base = Url::parse("http://localhost/").ok()?;
        let link = base.join(self.link.as_deref()?).ok()?;
        link.query_pairs()
            .find(|(key, _)| key == "token")
            .map(|(_, token)| token.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str, link: Option<&str>) -> Message {
        Message {
            to: to.to_owned(),
            subject: "Subject".to_owned(),
            text: "Text".to_owned(),
            link: link.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn keeps_every_message_in_order_until_taken_or_cleared() {
        let mail = CapturingMailer::new();
        for (to, link) in [
            ("ada@example.com", Some("https://app.example/a?token=first")),
            ("bob@example.com", None),
            (
                "ada@example.com",
                Some("https://app.example/b?token=second"),
            ),
        ] {
            mail.send(message(to, link)).await.unwrap();
        }
        assert_eq!(mail.len(), 3);
        let tokens: Vec<_> = mail
            .sent_to("ada@example.com")
            .iter()
            .map(Message::link_token)
            .collect();
        assert_eq!(
            tokens,
            [Some("first".to_owned()), Some("second".to_owned())]
        );
        assert_eq!(
            mail.last_to("ada@example.com").unwrap().link_token(),
            Some("second".to_owned())
        );
        assert_eq!(mail.last_to("eve@example.com"), None);
        let taken: Vec<_> = mail.take().into_iter().map(|m| m.to).collect();
        assert_eq!(
            taken,
            ["ada@example.com", "bob@example.com", "ada@example.com"]
        );
        assert!(mail.is_empty());
        mail.send(message("bob@example.com", None)).await.unwrap();
        assert_eq!(mail.sent().len(), 1);
        mail.clear();
        assert!(mail.sent().is_empty());
    }

    #[test]
    fn the_token_is_the_links_token_parameter_or_none() {
        for (link, token) in [
            (None, None),
            (Some("https://app.example/verify-email"), None),
            (
                Some("https://app.example/verify-email?token=a-b_c"),
                Some("a-b_c"),
            ),
            (Some("https://app.example/x?page=2&token=t0k"), Some("t0k")),
            (Some("/reset-password?token=rel"), Some("rel")),
        ] {
            assert_eq!(
                message("ada@example.com", link).link_token().as_deref(),
                token,
                "{link:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_message() {
        let mail = CapturingMailer::new();
        mail.messages().push(message(
            "ada@example.com",
            Some("https://x.example/?token=secret"),
        ));
        let shown = format!("{mail:?}");
        assert_eq!(shown, "CapturingMailer { sent: 1 }");
    }
}
