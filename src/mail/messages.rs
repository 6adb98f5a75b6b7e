//! What the engine mails, apart from the flows that send it: the kinds of message ([`Mail`]),
//! the templates that turn one into a subject, a plain-text part and an HTML part
//! ([`MailTemplates`]), and the default texts ([`DefaultTemplates`]).

use std::fmt::Write as _;

use chrono::TimeDelta;

/// A message the engine sends, with what it must say. A template renders it; the engine gives
/// an address that a change of email moves to only masked (`a***@e***.com`), so that no
/// template can tell it to the old address in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mail<'a> {
    /// The link that verifies the address it is sent to, valid `valid_for`.
    VerifyAddress {
        /// The link (it carries a one-time token).
        link: &'a str,
        /// How long the link works.
        valid_for: TimeDelta,
    },
    /// To the owner of an address someone tried to sign up again with.
    SignUpAttempted,
    /// The link that resets the password, valid `valid_for`.
    ResetPassword {
        /// The link (it carries a one-time token).
        link: &'a str,
        /// How long the link works.
        valid_for: TimeDelta,
    },
    /// The password was just changed with a reset link; every session was signed out.
    PasswordReset,
    /// The password was just changed from a signed-in session.
    PasswordChanged {
        /// Whether every other session of the account was signed out with it.
        other_sessions_ended: bool,
    },
    /// To the current address: a change to another was asked, with the link that cancels it.
    EmailChangeAsked {
        /// The new address, masked.
        new_email_masked: &'a str,
        /// The link that cancels the change (it carries a one-time token).
        cancel_link: &'a str,
        /// How long the new address has to confirm.
        valid_for: TimeDelta,
    },
    /// To the new address: the link that confirms the change, valid `valid_for`.
    ConfirmNewAddress {
        /// The link (it carries a one-time token).
        link: &'a str,
        /// How long the link works.
        valid_for: TimeDelta,
    },
    /// Sign-ins from browsers the owner has not signed in with before were locked after
    /// `failures` consecutive failures, for `locked_for`; with the link that resets the
    /// password (which opens the account at once), when one could be issued.
    SignInsLocked {
        /// The consecutive failures that locked it.
        failures: u32,
        /// How long the lock lasts.
        locked_for: TimeDelta,
        /// The reset link and how long it works.
        reset: Option<(&'a str, TimeDelta)>,
    },
    /// To the previous address: the account moved to another.
    EmailChanged {
        /// The new address, masked.
        new_email_masked: &'a str,
    },
    /// A second factor (an authenticator app) now protects the account; with the link that
    /// removes it and signs every session out, for an owner who did not add it, when one could be
    /// issued.
    TwoFactorEnabled {
        /// The removal link and how long it works.
        remove: Option<(&'a str, TimeDelta)>,
    },
    /// The account's second factor was turned off.
    TwoFactorDisabled,
    /// A recovery code was used to sign in.
    RecoveryCodeUsed {
        /// The unused recovery codes left.
        left: u64,
    },
}

impl Mail<'_> {
    /// The link the message asks its reader to follow, if any.
    pub fn link(&self) -> Option<&str> {
        match *self {
            Self::VerifyAddress { link, .. }
            | Self::ResetPassword { link, .. }
            | Self::ConfirmNewAddress { link, .. } => Some(link),
            Self::EmailChangeAsked { cancel_link, .. } => Some(cancel_link),
            Self::SignInsLocked {
                reset: Some((link, _)),
                ..
            }
            | Self::TwoFactorEnabled {
                remove: Some((link, _)),
            } => Some(link),
            _ => None,
        }
    }
}

/// A message as a template renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text part, link included.
    pub text: String,
    /// The HTML part, link included.
    pub html: String,
}

/// Turns each [`Mail`] into the message a user reads. [`DefaultTemplates`] is the default
/// ([`Options::mail_templates`](crate::Options::mail_templates) replaces it); a template of
/// your own may delegate to it for the kinds it does not change.
pub trait MailTemplates: Send + Sync + 'static {
    /// Renders `mail`. The text and the HTML part must each carry the link of
    /// [`Mail::link`], once.
    fn render(&self, mail: &Mail<'_>) -> Rendered;
}

/// The crate's texts, in plain English, naming the product in the body (its name, e.g. "Example App", or
/// by default the host of [`HttpOptions::app_url`](crate::HttpOptions::app_url)); the HTML
/// part holds the same paragraphs, escaped, with the link as a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultTemplates {
    product: String,
}

impl DefaultTemplates {
    /// The default texts for `product`.
    pub fn new(product: &str) -> Self {
        Self {
            product: product.to_owned(),
        }
    }
}

impl MailTemplates for DefaultTemplates {
    fn render(&self, mail: &Mail<'_>) -> Rendered {
        let product = &self.product;
        let (subject, paragraphs): (String, Vec<Paragraph<'_>>) = match *mail {
            Mail::VerifyAddress { link, valid_for } => (
                "Verify your address".to_owned(),
                vec![
                    Paragraph::Text(format!(
                        "Follow this link within {} to verify the address of your {product} \
                         account:",
                        duration_words(valid_for)
                    )),
                    Paragraph::Link(link),
                    Paragraph::Text(
                        "If you did not sign up, ignore this message: no account is used with \
                         this address until it is verified."
                            .to_owned(),
                    ),
                ],
            ),
            Mail::SignUpAttempted => (
                "Someone tried to sign up with your address".to_owned(),
                vec![Paragraph::Text(format!(
                    "Someone tried to make a new {product} account with this address, which \
                     already has one. If it was you, sign in instead, or reset your password if \
                     you forgot it. If it was not, you need not do anything."
                ))],
            ),
            Mail::ResetPassword { link, valid_for } => (
                "Reset your password".to_owned(),
                vec![
                    Paragraph::Text(format!(
                        "Someone asked to reset the password of your {product} account. If it \
                         was you, follow this link within {} to choose a new one:",
                        duration_words(valid_for)
                    )),
                    Paragraph::Link(link),
                    Paragraph::Text(
                        "If it was not, ignore this message: your password stays as it is."
                            .to_owned(),
                    ),
                ],
            ),
            Mail::PasswordReset => (
                "Your password was changed".to_owned(),
                vec![Paragraph::Text(format!(
                    "The password of your {product} account was just changed with a reset \
                     link, and every session of the account was signed out. If this was not \
                     you, reset your password again at once and check your mailbox's security."
                ))],
            ),
            Mail::PasswordChanged {
                other_sessions_ended,
            } => {
                let sessions = if other_sessions_ended {
                    "every other session of the account was signed out"
                } else {
                    "the account's other sessions stay signed in"
                };
                (
                    "Your password was changed".to_owned(),
                    vec![Paragraph::Text(format!(
                        "The password of your {product} account was just changed from a \
                         signed-in session, and {sessions}. If this was not you, reset your \
                         password at once (the reset signs every session out) and check your \
                         mailbox's security."
                    ))],
                )
            }
            Mail::EmailChangeAsked {
                new_email_masked,
                cancel_link,
                valid_for,
            } => (
                "A change of your address was asked".to_owned(),
                vec![
                    Paragraph::Text(format!(
                        "Someone signed in to your {product} account asked to change its \
                         address to {new_email_masked}. The change happens only if that address \
                         confirms it within {}. If it was not you, follow this link to cancel \
                         it, then reset your password:",
                        duration_words(valid_for)
                    )),
                    Paragraph::Link(cancel_link),
                    Paragraph::Text("If it was you, you need not do anything.".to_owned()),
                ],
            ),
            Mail::ConfirmNewAddress { link, valid_for } => (
                "Confirm your new address".to_owned(),
                vec![
                    Paragraph::Text(format!(
                        "Follow this link within {} to make this the address of your {product} \
                         account:",
                        duration_words(valid_for)
                    )),
                    Paragraph::Link(link),
                    Paragraph::Text("If you did not ask for this, ignore this message.".to_owned()),
                ],
            ),
            Mail::SignInsLocked {
                failures,
                locked_for,
                reset,
            } => {
                let mut paragraphs = vec![Paragraph::Text(format!(
                    "After {failures} failed sign-ins in a row, signing in to your {product} \
                     account is locked for {} on browsers you have not signed in with before. A \
                     browser you signed in with before can still sign in.",
                    duration_words(locked_for)
                ))];
                match reset {
                    Some((link, valid_for)) => {
                        paragraphs.push(Paragraph::Text(format!(
                            "If it was not you, someone may be guessing your password. Follow \
                             this link within {} to choose a new one, which also opens the \
                             account at once:",
                            duration_words(valid_for)
                        )));
                        paragraphs.push(Paragraph::Link(link));
                    }
                    None => paragraphs.push(Paragraph::Text(
                        "If it was not you, someone may be guessing your password: reset it."
                            .to_owned(),
                    )),
                }
                paragraphs.push(Paragraph::Text(
                    "If it was you, wait, or sign in from a browser you used before.".to_owned(),
                ));
                ("Your account was locked".to_owned(), paragraphs)
            }
            Mail::EmailChanged { new_email_masked } => (
                "Your address was changed".to_owned(),
                vec![Paragraph::Text(format!(
                    "The address of your {product} account was just changed to \
                     {new_email_masked}. If this was not you, reset your password at once."
                ))],
            ),
            Mail::TwoFactorEnabled { remove } => {
                let mut paragraphs = vec![Paragraph::Text(format!(
                    "Signing in to your {product} account now asks for a code from your \
                     authenticator app after the password, and every other session was signed \
                     out. Keep your recovery codes somewhere safe."
                ))];
                if let Some((link, valid_for)) = remove {
                    paragraphs.push(Paragraph::Text(format!(
                        "If this was not you, someone has your password: follow this link within \
                         {} to remove that app and sign every session out, then reset your \
                         password:",
                        duration_words(valid_for)
                    )));
                    paragraphs.push(Paragraph::Link(link));
                } else {
                    paragraphs.push(Paragraph::Text(
                        "If this was not you, someone has your password: reset it at once."
                            .to_owned(),
                    ));
                }
                ("Two-step sign-in is on".to_owned(), paragraphs)
            }
            Mail::TwoFactorDisabled => (
                "Two-step sign-in is off".to_owned(),
                vec![Paragraph::Text(format!(
                    "Signing in to your {product} account no longer asks for a code from an \
                     authenticator app. If this was not you, reset your password at once and \
                     turn two-step sign-in on again."
                ))],
            ),
            Mail::RecoveryCodeUsed { left } => (
                "A recovery code was used".to_owned(),
                vec![Paragraph::Text(format!(
                    "A recovery code was just used to sign in to your {product} account; \
                     {left} unused codes are left. If this was not you, reset your password at \
                     once and make new recovery codes."
                ))],
            ),
        };
        Rendered {
            text: plain(&paragraphs),
            html: html(&subject, &paragraphs),
            subject,
        }
    }
}

/// One paragraph of a default message.
enum Paragraph<'a> {
    Text(String),
    Link(&'a str),
}

/// The paragraphs as plain text, a blank line between them.
fn plain(paragraphs: &[Paragraph<'_>]) -> String {
    let parts: Vec<&str> = paragraphs
        .iter()
        .map(|paragraph| match paragraph {
            Paragraph::Text(text) => text.as_str(),
            Paragraph::Link(link) => link,
        })
        .collect();
    parts.join("\n\n")
}

/// The paragraphs as a small HTML document: each a `<p>`, a link as an `<a>` whose text is the
/// link itself (so the reader sees where it goes); every text escaped.
fn html(subject: &str, paragraphs: &[Paragraph<'_>]) -> String {
    let title = escape(subject);
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n"
    );
    for paragraph in paragraphs {
        // Writing to a String cannot fail.
        let _ = match paragraph {
            Paragraph::Text(text) => writeln!(out, "<p>{}</p>", escape(text)),
            Paragraph::Link(link) => {
                let link = escape(link);
                writeln!(out, "<p><a href=\"{link}\">{link}</a></p>")
            }
        };
    }
    out.push_str("</body></html>\n");
    out
}

/// `text` with the five characters HTML gives a meaning to written as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "1 hour", "24 hours", "30 minutes": a lifetime as a message says it.
fn duration_words(ttl: TimeDelta) -> String {
    let (n, unit) = if ttl.num_hours() >= 1 && ttl.num_minutes() % 60 == 0 {
        (ttl.num_hours(), "hour")
    } else {
        (ttl.num_minutes().max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `ada@example.com` as `a***@e***.com`: enough for the owner to recognise, not to write to.
pub(crate) fn masked(email: &str) -> String {
    let first = |part: &str| part.chars().next().map(String::from).unwrap_or_default();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return format!("{}***", first(email));
    };
    let domain = match domain.rsplit_once('.') {
        Some((name, tld)) => format!("{}***.{tld}", first(name)),
        None => format!("{}***", first(domain)),
    };
    format!("{}***@{domain}", first(local))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://app.example/x?token=abc&next=<b>";

    fn every_mail() -> Vec<Mail<'static>> {
        let hour = TimeDelta::hours(1);
        vec![
            Mail::VerifyAddress {
                link: LINK,
                valid_for: TimeDelta::hours(24),
            },
            Mail::SignUpAttempted,
            Mail::ResetPassword {
                link: LINK,
                valid_for: hour,
            },
            Mail::PasswordReset,
            Mail::PasswordChanged {
                other_sessions_ended: true,
            },
            Mail::EmailChangeAsked {
                new_email_masked: "e***@e***.example",
                cancel_link: LINK,
                valid_for: hour,
            },
            Mail::ConfirmNewAddress {
                link: LINK,
                valid_for: hour,
            },
            Mail::EmailChanged {
                new_email_masked: "e***@e***.example",
            },
            Mail::SignInsLocked {
                failures: 100,
                locked_for: TimeDelta::hours(24),
                reset: Some((LINK, hour)),
            },
            Mail::SignInsLocked {
                failures: 100,
                locked_for: TimeDelta::hours(24),
                reset: None,
            },
            Mail::TwoFactorEnabled {
                remove: Some((LINK, TimeDelta::days(7))),
            },
            Mail::TwoFactorEnabled { remove: None },
            Mail::TwoFactorDisabled,
            Mail::RecoveryCodeUsed { left: 9 },
        ]
    }

    /// Every message, rendered: the product named, its link once in each part (escaped in the
    /// HTML), no run of spaces (a lost line continuation), nothing unescaped in the HTML.
    #[test]
    fn every_message_renders_a_text_and_an_html_part_with_its_link_once() {
        let templates = DefaultTemplates::new("Example & Co");
        for mail in every_mail() {
            let rendered = templates.render(&mail);
            assert!(rendered.text.contains("Example & Co"), "{rendered:?}");
            assert!(rendered.html.contains("Example &amp; Co"), "{rendered:?}");
            for part in [&rendered.subject, &rendered.text, &rendered.html] {
                assert!(!part.contains("  "), "{part}");
            }
            assert!(rendered.html.starts_with("<!DOCTYPE html>"));
            assert!(!rendered.html.contains("<b>"), "{}", rendered.html);
            match mail.link() {
                Some(link) => {
                    assert_eq!(rendered.text.matches(link).count(), 1, "{}", rendered.text);
                    let escaped = escape(link);
                    assert_eq!(
                        rendered
                            .html
                            .matches(&format!("href=\"{escaped}\""))
                            .count(),
                        1,
                        "{}",
                        rendered.html
                    );
                }
                None => {
                    assert!(!rendered.text.contains("token="));
                    assert!(!rendered.html.contains("<a "));
                }
            }
        }
        let verify = templates.render(&every_mail()[0]);
        assert!(verify.text.contains("within 24 hours"));
        let asked = templates.render(&every_mail()[5]);
        assert!(asked.text.contains("e***@e***.example"));
        let locked = templates.render(&every_mail()[8]);
        assert!(locked.text.contains("for 24 hours"), "{}", locked.text);
        assert!(locked.text.contains("within 1 hour "), "{}", locked.text);
    }

    #[test]
    fn lifetimes_and_masks_read_as_a_person_writes_them() {
        assert_eq!(duration_words(TimeDelta::minutes(30)), "30 minutes");
        assert_eq!(duration_words(TimeDelta::minutes(1)), "1 minute");
        assert_eq!(duration_words(TimeDelta::minutes(90)), "90 minutes");
        assert_eq!(duration_words(TimeDelta::hours(2)), "2 hours");
        assert_eq!(masked("ada@example.com"), "a***@e***.com");
        assert_eq!(masked("ada@localhost"), "a***@l***");
        assert_eq!(masked("nobody"), "n***");
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
