//! The server URL, and URLs for its other databases, through a real URL parser.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::Error;

/// What a query value may hold unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The server the tests use when `DATABASE_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server to use: `DATABASE_URL`, or [`DEFAULT_URL`]. Its database is the one to connect to
/// for `CREATE DATABASE` and `DROP DATABASE`.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database name replaced by `database` (percent-encoded as needed); the user,
/// password, host, port and query are kept.
///
/// # Errors
/// [`Error::Url`] when `url` does not parse, [`Error::NotAServerUrl`] when it has no path to hold
/// a database name.
pub fn url_for(url: &str, database: &str) -> Result<String, Error> {
    let mut parsed = parse(url)?;
    parsed
        .path_segments_mut()
        .map_err(|()| not_a_server_url(url))?
        .clear()
        .push(database);
    Ok(parsed.into())
}

/// `url` with `application_name` set to `name`, so that its connections can be told apart in
/// `pg_stat_activity`. Appended to the query: libpq and tokio-postgres take the last value of a
/// repeated parameter.
///
/// # Errors
/// As [`url_for`].
pub fn with_application_name(url: &str, name: &str) -> Result<String, Error> {
    let mut parsed = parse(url)?;
    // Percent-encoded rather than form-encoded: libpq reads a `+` as a plus sign.
    let pair = format!(
        "application_name={}",
        utf8_percent_encode(name, QUERY_VALUE)
    );
    let query = match parsed.query() {
        Some(query) if !query.is_empty() => format!("{query}&{pair}"),
        _ => pair,
    };
    parsed.set_query(Some(&query));
    Ok(parsed.into())
}

/// `url` with its password replaced by `***`, for messages.
pub(crate) fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Fails only for URLs without a host, which have no password either.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.into()
        }
        // Not a URL: possibly a `key=value` connection string, which may hold a password.
        Err(_) => "(the server's connection string)".to_owned(),
    }
}

/// `url` without its database name, to compare servers.
pub(crate) fn server_of(url: &str) -> Result<String, Error> {
    url_for(url, "")
}

fn parse(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|error| Error::Url { error })?;
    if parsed.cannot_be_a_base() {
        return Err(not_a_server_url(url));
    }
    Ok(parsed)
}

fn not_a_server_url(url: &str) -> Error {
    Error::NotAServerUrl { url: redacted(url) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_replaces_only_the_database_name() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/authingo_t",
            ),
            (
                "postgres://u:p%40ss@db.example:6543/app?sslmode=disable&connect_timeout=5",
                "postgres://u:p%40ss@db.example:6543/authingo_t?sslmode=disable&connect_timeout=5",
            ),
            ("postgres://h", "postgres://h/authingo_t"),
            ("postgres://h/", "postgres://h/authingo_t"),
            ("postgresql://h/a%2Fb?x=1", "postgresql://h/authingo_t?x=1"),
            (
                "postgres:///app?host=/var/run/postgresql",
                "postgres:///authingo_t?host=/var/run/postgresql",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(url_for(url, "authingo_t").unwrap(), want, "{url}");
        }
    }

    #[test]
    fn url_for_percent_encodes_the_name() {
        assert_eq!(
            url_for("postgres://h/postgres?x=1", "my db/1?#%").unwrap(),
            "postgres://h/my%20db%2F1%3F%23%25?x=1"
        );
    }

    #[test]
    fn url_for_refuses_what_is_not_a_server_url() {
        assert!(matches!(
            url_for("host=h dbname=x", "y"),
            Err(Error::Url { .. })
        ));
        assert!(matches!(
            url_for("postgres:x", "y"),
            Err(Error::NotAServerUrl { .. })
        ));
    }

    #[test]
    fn with_application_name_appends_to_the_query() {
        assert_eq!(
            with_application_name("postgres://u:p@h/db", "store bench").unwrap(),
            "postgres://u:p@h/db?application_name=store%20bench"
        );
        assert_eq!(
            with_application_name("postgres://h/db?sslmode=disable", "a_b").unwrap(),
            "postgres://h/db?sslmode=disable&application_name=a_b"
        );
    }

    #[test]
    fn redacted_hides_the_password_only() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert!(!redacted("host=h password=secret").contains("secret"));
    }
}
