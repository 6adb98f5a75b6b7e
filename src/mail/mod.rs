//! Mail: the [`Mailer`] trait the engine sends its messages through, the development mailer that
//! logs them, (feature `smtp`) an SMTP mailer on `lettre`, and (feature `test-util`) a mailer
//! that keeps them for tests to read.
//!
//! The engine sends every message off the request path, on a task of its own: a slow or failing
//! mail server never changes a response's status or timing. A failure is logged (without the
//! link, which carries a token).

#[cfg(feature = "test-util")]
mod capture;
pub(crate) mod messages;
#[cfg(feature = "smtp")]
mod smtp;

use std::fmt;

use async_trait::async_trait;

use crate::error::BoxError;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use capture::CapturingMailer;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use smtp::{SmtpMailer, SmtpSecurity};

/// One message to one address.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body, link included.
    pub text: String,
    /// The link the message asks the recipient to follow, if any (it carries a one-time token).
    pub link: Option<String>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The link and the body carry a token; the address is personal data.
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .field("has_link", &self.link.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[error("the message could not be sent: {0}")]
pub struct MailError(#[source] pub BoxError);

/// A recipient that is not read as exactly one address, the one given: a mail library would
/// send to another address (it stops at a `>`), to several, or to none. Nothing was sent. The
/// error names no address, so it can be logged; [`SmtpMailer`](crate::mail) refuses with it as
/// the source of its [`MailError`].
#[derive(Debug, thiserror::Error)]
#[error("the recipient is not exactly one address as given; nothing was sent")]
#[non_exhaustive]
pub struct InvalidRecipient {
    /// Why the mail library could not read it, if it could not.
    #[source]
    pub source: Option<BoxError>,
}

/// Sends the engine's messages: verification and reset links, and notices.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `message`.
    ///
    /// # Errors
    /// When the message cannot be handed over; the engine logs it and carries on.
    async fn send(&self, message: Message) -> Result<(), MailError>;

    /// Whether this mailer writes its messages, live links included, where others read them
    /// (a log) instead of delivering them; `false` by default. A release build refuses such a
    /// mailer unless [`Options::allow_dev_mailer`](crate::Options::allow_dev_mailer) says so. A
    /// mailer that wraps another answers what the wrapped one does.
    fn logs_links(&self) -> bool {
        false
    }
}

/// The development mailer, the default: logs each message at INFO with its link, so a person
/// trying the demo can follow the link from the terminal. Never use it in production: the log
/// then carries tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevMailer;

#[async_trait]
impl Mailer for DevMailer {
    async fn send(&self, message: Message) -> Result<(), MailError> {
        tracing::info!(
            to = %message.to,
            subject = %message.subject,
            link = message.link.as_deref().unwrap_or("-"),
            "mail (development mailer: not sent)"
        );
        Ok(())
    }

    fn logs_links(&self) -> bool {
        true
    }
}
