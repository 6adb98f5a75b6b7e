//! An SMTP mailer on `lettre`: plain, STARTTLS or implicit TLS, with optional credentials.

use std::fmt;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use super::{InvalidRecipient, MailError, Mailer, Message};
use crate::error::BoxError;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpSecurity {
    /// Implicit TLS from the first byte (submissions on port 465).
    Tls,
    /// Plain at first, upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

/// Sends messages through an SMTP server.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer through `host:port` with `security`, sending from `from` (`"App <no-reply@…>"`
    /// or a bare address), logging in with `credentials` (user, password) when given.
    ///
    /// # Errors
    /// When `from` is not an address, or TLS cannot be set up for `host`.
    pub fn new(
        host: &str,
        port: u16,
        security: SmtpSecurity,
        credentials: Option<(String, String)>,
        from: &str,
    ) -> Result<Self, MailError> {
        let from: Mailbox = from.parse().map_err(|err| MailError(Box::new(err)))?;
        let builder = match security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|err| MailError(Box::new(err)))?
        .port(port);
        let builder = match credentials {
            Some((user, password)) => builder.credentials(Credentials::new(user, password)),
            None => builder,
        };
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: Message) -> Result<(), MailError> {
        let to = recipient(&message.to)?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject);
        let email = match message.html {
            Some(html) => email.multipart(MultiPart::alternative_plain_html(message.text, html)),
            None => email.body(message.text),
        }
        .map_err(|err| MailError(Box::new(err)))?;
        self.transport
            .send(email)
            .await
            .map(drop)
            .map_err(|err| MailError(Box::new(err)))
    }
}

/// `to` as lettre reads it, if that is exactly `to`: a bare address, byte for byte. lettre's
/// parser takes a display name (`Ada <ada@evil.example>`) and stops at the first mailbox, so a
/// recipient it reads differently is refused rather than mailed elsewhere.
fn recipient(to: &str) -> Result<Mailbox, MailError> {
    let refused = |source: Option<BoxError>| MailError(Box::new(InvalidRecipient { source }));
    let mailbox: Mailbox = to.parse().map_err(|err| refused(Some(Box::new(err))))?;
    if mailbox.name.is_some() || mailbox.email.to_string() != to {
        return Err(refused(None));
    }
    Ok(mailbox)
}
