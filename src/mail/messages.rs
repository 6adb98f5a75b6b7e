//! The texts of the messages the engine sends, apart from the flows that send them: each a
//! function from the recipient, the link and the lifetime it states to a [`Message`].

use chrono::TimeDelta;

use super::Message;

/// The link that verifies `to`, valid `ttl`.
pub(crate) fn verify_address(to: &str, link: String, ttl: TimeDelta) -> Message {
    Message {
        to: to.to_owned(),
        subject: "Verify your address".to_owned(),
        text: format!(
            "Follow this link within {} to verify the address of your account:\n\n{link}\n\n\
             If you did not sign up, ignore this message: no account is used with this address \
             until it is verified.",
            duration_words(ttl)
        ),
        link: Some(link),
    }
}

/// To the owner of `to`, which someone tried to sign up again.
pub(crate) fn sign_up_attempted(to: String) -> Message {
    Message {
        to,
        subject: "Someone tried to sign up with your address".to_owned(),
        text: "Someone tried to make a new account with this address, which already has one. If \
               it was you, sign in instead, or reset your password if you forgot it. If it was \
               not, you need not do anything."
            .to_owned(),
        link: None,
    }
}

/// The link that resets the password of `to`'s account, valid `ttl`.
pub(crate) fn reset_password(to: String, link: String, ttl: TimeDelta) -> Message {
    Message {
        to,
        subject: "Reset your password".to_owned(),
        text: format!(
            "Someone asked to reset the password of your account. If it was you, follow this \
             link within {} to choose a new one:\n\n{link}\n\nIf it was not, ignore this \
             message: your password stays as it is.",
            duration_words(ttl)
        ),
        link: Some(link),
    }
}

/// To the owner of `to`, whose sign-ins from untrusted browsers were just locked for `period` after
/// `failures` consecutive failures; with the link that resets the password (valid for its
/// lifetime), which opens the account at once.
pub(crate) fn sign_ins_locked(
    to: String,
    failures: u32,
    period: TimeDelta,
    reset: Option<(String, TimeDelta)>,
) -> Message {
    let (reset_text, link) = match reset {
        Some((link, ttl)) => (
            format!(
                "If it was not you, someone may be guessing your password. Follow this link \
                 within {} to choose a new one, which also opens the account at once:\n\n\
                 {link}\n\nIf it was you, ",
                duration_words(ttl)
            ),
            Some(link),
        ),
        None => (
            "If it was not you, someone may be guessing your password: reset it. If it was \
             you, "
                .to_owned(),
            None,
        ),
    };
    Message {
        to,
        subject: "Your account was locked".to_owned(),
        text: format!(
            "After {failures} failed sign-ins in a row, signing in to your account is locked \
             for {} on browsers you have not signed in with before. A browser you signed in \
             with before can still sign in. {reset_text}wait, or sign in from a browser you used \
             before.",
            duration_words(period)
        ),
        link,
    }
}

/// To `to`, whose password a reset link just changed.
pub(crate) fn password_reset(to: String) -> Message {
    Message {
        to,
        subject: "Your password was changed".to_owned(),
        text: "The password of your account was just changed with a reset link, and every \
               session of the account was signed out. If this was not you, reset your password \
               again at once and check your mailbox's security."
            .to_owned(),
        link: None,
    }
}

/// To `to`, whose password the signed-in owner (or whoever held the session) just changed.
pub(crate) fn password_changed(to: String, other_sessions_ended: bool) -> Message {
    let sessions = if other_sessions_ended {
        "every other session of the account was signed out"
    } else {
        "the account's other sessions stay signed in"
    };
    Message {
        to,
        subject: "Your password was changed".to_owned(),
        text: format!(
            "The password of your account was just changed from a signed-in session, and \
             {sessions}. If this was not you, reset your password at once (the reset signs \
             every session out) and check your mailbox's security."
        ),
        link: None,
    }
}

/// To the current address `to`, when a change to `new_email` was asked: the new address masked,
/// and the link that cancels the change.
pub(crate) fn email_change_asked(
    to: String,
    new_email: &str,
    cancel_link: String,
    ttl: TimeDelta,
) -> Message {
    Message {
        to,
        subject: "A change of your address was asked".to_owned(),
        text: format!(
            "Someone signed in to your account asked to change its address to {}. The change \
             happens only if that address confirms it within {}. If it was not you, follow this \
             link to cancel it, then reset your password:\n\n{cancel_link}\n\nIf it was you, \
             you need not do anything.",
            masked(new_email),
            duration_words(ttl)
        ),
        link: Some(cancel_link),
    }
}

/// To the new address `to`: the link that confirms the change, valid `ttl`.
pub(crate) fn confirm_new_address(to: String, link: String, ttl: TimeDelta) -> Message {
    Message {
        to,
        subject: "Confirm your new address".to_owned(),
        text: format!(
            "Follow this link within {} to make this the address of your account:\n\n{link}\n\n\
             If you did not ask for this, ignore this message.",
            duration_words(ttl)
        ),
        link: Some(link),
    }
}

/// To the previous address `to`, once the account moved to `new_email` (masked).
pub(crate) fn email_changed(to: String, new_email: &str) -> Message {
    Message {
        to,
        subject: "Your address was changed".to_owned(),
        text: format!(
            "The address of your account was just changed to {}. If this was not you, reset \
             your password at once.",
            masked(new_email)
        ),
        link: None,
    }
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

    /// Every message, rendered: its link once in the text, no run of spaces (a lost line
    /// continuation), no address but the masked one where a change is told.
    #[test]
    fn every_message_renders_its_link_and_no_run_of_spaces() {
        let link = || "https://app.example/x?token=abc".to_owned();
        let hour = TimeDelta::hours(1);
        let messages = [
            verify_address("ada@example.com", link(), TimeDelta::hours(24)),
            sign_up_attempted("ada@example.com".to_owned()),
            reset_password("ada@example.com".to_owned(), link(), hour),
            password_reset("ada@example.com".to_owned()),
            email_change_asked(
                "ada@example.com".to_owned(),
                "eve@evil.example",
                link(),
                hour,
            ),
            confirm_new_address("eve@evil.example".to_owned(), link(), hour),
            email_changed("ada@example.com".to_owned(), "eve@evil.example"),
            sign_ins_locked(
                "ada@example.com".to_owned(),
                100,
                TimeDelta::hours(24),
                Some((link(), hour)),
            ),
            sign_ins_locked(
                "ada@example.com".to_owned(),
                100,
                TimeDelta::hours(24),
                None,
            ),
        ];
        for message in &messages {
            assert!(!message.text.contains("  "), "{}", message.text);
            assert!(!message.subject.is_empty());
            match &message.link {
                Some(link) => assert_eq!(message.text.matches(link.as_str()).count(), 1),
                None => assert!(!message.text.contains("token=")),
            }
            assert!(
                !message.text.contains("eve@evil.example"),
                "{}",
                message.text
            );
        }
        assert!(messages[0].text.contains("within 24 hours"));
        assert!(messages[2].text.contains("within 1 hour "));
        assert!(messages[4].text.contains("e***@e***.example"));
        assert!(messages[7].text.contains("for 24 hours"));
        assert!(messages[7].text.contains("within 1 hour "));
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
    }
}
