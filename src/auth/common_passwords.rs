//! Common passwords: the list new passwords are checked against, compiled in.
//!
//! The list is the UK NCSC's "100,000 most used passwords" (2019), drawn from Have I Been Pwned's
//! Pwned Passwords, as the NCSC and SecLists publish it: 99,999 lines, here trimmed, lower-cased,
//! without the lines holding a control character, deduplicated and sorted by their bytes
//! (97,849 entries, 824,291 bytes). It lives in the binary's read-only data as one string and is
//! searched in place (a binary search over its lines), so it costs no heap and no start-up work:
//! only the pages a search touches are ever read.
//!
//! A password is common when, trimmed and lower-cased, it is one of the entries: `Password1`
//! counts as `password1`, as Django's `CommonPasswordValidator` compares.

use std::cmp::Ordering;

use super::{Auth, AuthError, input};
use crate::error::InputReason;

/// The list: one entry a line, sorted by bytes, each line ending with `\n`.
const LIST: &str = include_str!("common_passwords.txt");

/// Whether `password` is on the list of common passwords (trimmed and lower-cased first).
pub fn is_common_password(password: &str) -> bool {
    let wanted = password.trim().to_lowercase();
    !wanted.is_empty() && contains(LIST, &wanted)
}

/// Whether the sorted, newline-terminated `list` has the line `wanted`.
fn contains(list: &str, wanted: &str) -> bool {
    let bytes = list.as_bytes();
    let (mut low, mut high) = (0, bytes.len());
    // Invariant: every line starting before `low` is below `wanted`, every line starting at or
    // after `high` above it; `low` and `high` are line starts.
    while low < high {
        let middle = low + (high - low) / 2;
        let start = bytes[..middle]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1)
            .max(low);
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |newline| start + newline);
        match bytes[start..end].cmp(wanted.as_bytes()) {
            Ordering::Equal => return true,
            Ordering::Less => low = end + 1,
            Ordering::Greater => high = start,
        }
    }
    false
}

impl Auth {
    /// Checks a new password (sign-up, change, reset): the length bounds of
    /// [`Options::password_length`](super::Options::password_length), then, unless
    /// [`Options::reject_common_passwords`](super::Options::reject_common_passwords) turned it
    /// off, the list of common passwords.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for `"password"`, with [`InputReason::TooCommon`] for a
    /// common one.
    pub fn check_new_password(&self, password: &str) -> Result<(), AuthError> {
        input::password(
            password,
            self.settings().min_password_chars,
            self.settings().max_password_bytes,
        )?;
        if self.settings().reject_common_passwords && is_common_password(password) {
            return Err(AuthError::InvalidInput {
                field: "password",
                reason: InputReason::TooCommon,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_trimmed_lower_cased_unique_and_sorted() {
        assert!(LIST.ends_with('\n'));
        let lines: Vec<&str> = LIST.lines().collect();
        assert_eq!(lines.len(), 97_849);
        assert_eq!(LIST.len(), 824_291);
        for line in &lines {
            assert!(!line.is_empty());
            assert_eq!(*line, line.trim().to_lowercase(), "{line:?}");
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
        for pair in lines.windows(2) {
            assert!(pair[0].as_bytes() < pair[1].as_bytes(), "{pair:?}");
        }
    }

    #[test]
    fn every_entry_is_found_and_its_neighbours_are_not() {
        for line in LIST.lines() {
            assert!(contains(LIST, line), "{line:?}");
            assert!(!contains(LIST, &format!("{line}\u{1}")), "{line:?}");
        }
        assert!(!contains(LIST, ""));
        assert!(!contains(LIST, "\u{10FFFF}"));
    }

    #[test]
    fn common_passwords_are_found_whatever_their_case() {
        for common in [
            "password",
            "Password1",
            " 12345678 ",
            "QWERTYUIOP",
            "iloveyou",
        ] {
            assert!(is_common_password(common), "{common}");
        }
        for rare in ["correct horse battery", "", "   ", "zq8#Lw!pe3-Tx"] {
            assert!(!is_common_password(rare), "{rare}");
        }
    }

    #[test]
    fn a_small_list_is_searched_at_its_edges() {
        let list = "b\nd\nf\n";
        for (wanted, found) in [
            ("a", false),
            ("b", true),
            ("c", false),
            ("d", true),
            ("e", false),
            ("f", true),
            ("g", false),
        ] {
            assert_eq!(contains(list, wanted), found, "{wanted}");
        }
        assert!(!contains("", "a"));
    }
}
