//! libpq's TLS settings, read from a connection string and the environment as libpq reads them:
//! `sslmode` and `sslrootcert` are taken out of the string, which tokio-postgres then reads
//! (its parser knows only `disable`, `prefer` and `require`, and refuses `sslrootcert`).

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use super::tls_error::TlsError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain text only.
    Disable,
    /// Plain text first; TLS when the server refuses that.
    Allow,
    /// TLS when the server offers it, else plain text. libpq's default.
    Prefer,
    /// TLS, the server's certificate unchecked (checked as `VerifyCa` when a root file exists).
    Require,
    /// TLS, the certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and made out to the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// No `sslrootcert`: libpq's default file, `~/.postgresql/root.crt`, used only if it exists
    /// (`None` without a home directory).
    Default(Option<PathBuf>),
    /// An `sslrootcert` file the user named: it must be readable.
    File(PathBuf),
    /// `sslrootcert=system`: the platform's trusted roots.
    System,
}

/// The TLS settings of one connection string, and the string without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnInfo {
    /// The connection string for tokio-postgres, `sslmode` and `sslrootcert` removed.
    pub(crate) rest: String,
    pub(crate) mode: SslMode,
    pub(crate) roots: Roots,
}

/// Reads `sslmode` and `sslrootcert` from `conn` (a `postgres://` or `postgresql://` URL, or a
/// `key=value` string), falling back to `PGSSLMODE` and `PGSSLROOTCERT` of `env` as libpq does
/// (the string wins), and `HOME` for the default root file. `env` is a parameter so that the
/// rules can be tested without touching the process's environment.
///
/// As libpq 16: `sslrootcert=system` makes `verify-full` the default and refuses any weaker
/// `sslmode`.
pub(crate) fn parse(
    conn: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ConnInfo, TlsError> {
    let (rest, params) = take_tls_params(conn)?;
    let root = params.root.or_else(|| env("PGSSLROOTCERT"));
    let roots = match root.as_deref() {
        Some("system") => Roots::System,
        Some(path) if !path.is_empty() => Roots::File(PathBuf::from(path)),
        _ => Roots::Default(
            env("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".postgresql/root.crt")),
        ),
    };
    let mode = match params.mode.or_else(|| env("PGSSLMODE")) {
        Some(value) => SslMode::parse(&value).ok_or(TlsError::InvalidSslMode(value))?,
        None if roots == Roots::System => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if roots == Roots::System && mode != SslMode::VerifyFull {
        return Err(TlsError::WeakModeWithSystemRoots(mode.as_str()));
    }
    Ok(ConnInfo { rest, mode, roots })
}

/// The values of `sslmode` and `sslrootcert` found in a connection string.
#[derive(Default)]
struct TlsParams {
    mode: Option<String>,
    root: Option<String>,
}

impl TlsParams {
    /// Records `key`'s `value` if it is one of ours; says whether it was.
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.root = Some(value),
            _ => return false,
        }
        true
    }
}

/// `conn` without its `sslmode` and `sslrootcert`, and their values (the last of each wins, as
/// in libpq). Every other parameter is kept exactly as written.
fn take_tls_params(conn: &str) -> Result<(String, TlsParams), TlsError> {
    let mut params = TlsParams::default();
    let is_url = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| conn.starts_with(scheme));
    if !is_url {
        let mut kept = Vec::new();
        for pair in key_value_pairs(conn)? {
            if !params.take(pair.key, pair.value) {
                kept.push(pair.raw);
            }
        }
        return Ok((kept.join(" "), params));
    }
    let Some(start) = query_start(conn) else {
        return Ok((conn.to_owned(), params));
    };
    let mut kept = Vec::new();
    for segment in conn[start + 1..].split('&') {
        let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
        let decode = |text: &str| {
            percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
        };
        let taken = match (decode(key), decode(value)) {
            (Ok(key), Ok(value)) => params.take(&key, value),
            _ => false,
        };
        if !taken {
            kept.push(segment);
        }
    }
    let base = &conn[..start];
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, params))
}

/// Where the query of a `postgres://` URL starts: at the first `?` after the user information,
/// which ends at an `@` before the first `/` (libpq and tokio-postgres both take a `?` there as
/// part of the password). Not through `url::Url`: it refuses the host lists
/// (`h1:5432,h2:5432`) that libpq and tokio-postgres accept, and decodes `+` as a space, which
/// they do not.
fn query_start(url: &str) -> Option<usize> {
    let authority = url.find("://")? + 3;
    let host_part = url[authority..]
        .find('/')
        .map_or(&url[authority..], |end| &url[authority..authority + end]);
    let after_user = host_part
        .rfind('@')
        .map_or(authority, |at| authority + at + 1);
    url[after_user..].find('?').map(|at| after_user + at)
}

/// One `key = value` of a key/value connection string.
struct Pair<'a> {
    key: &'a str,
    value: String,
    /// The pair as written, quotes and escapes included.
    raw: &'a str,
}

/// The pairs of a key/value connection string, by libpq's rules (which tokio-postgres follows):
/// pairs separated by white space, spaces allowed around `=`, a value in single quotes or up to
/// the next white space, a backslash escaping the character after it.
fn key_value_pairs(conn: &str) -> Result<Vec<Pair<'_>>, TlsError> {
    let malformed = || TlsError::MalformedConnectionString;
    let mut pairs = Vec::new();
    let mut chars = conn.char_indices().peekable();
    let skip_space = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_space(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            return Ok(pairs);
        };
        let mut key_end = start;
        while let Some((at, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key_end = at + c.len_utf8();
        }
        skip_space(&mut chars);
        if chars.next_if(|(_, c)| *c == '=').is_none() || key_end == start {
            return Err(malformed());
        }
        skip_space(&mut chars);
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let mut end = chars.peek().map_or(conn.len(), |&(at, _)| at);
        let mut closed = !quoted;
        while let Some(&(at, c)) = chars.peek() {
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            end = at + c.len_utf8();
            match c {
                '\\' => {
                    let (at, escaped) = chars.next().ok_or_else(malformed)?;
                    end = at + escaped.len_utf8();
                    value.push(escaped);
                }
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(malformed());
        }
        pairs.push(Pair {
            key: &conn[start..key_end],
            value,
            raw: &conn[start..end],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    const NO_ENV: &[(&str, &str)] = &[];

    fn parsed(conn: &str, vars: &'static [(&'static str, &'static str)]) -> ConnInfo {
        parse(conn, env(vars)).unwrap()
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept_as_written() {
        let info = parsed(
            "postgres://u:p%3F@h:5432/db?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Frds.pem&application_name=a%20b",
            NO_ENV,
        );
        assert_eq!(
            info.rest,
            "postgres://u:p%3F@h:5432/db?connect_timeout=5&application_name=a%20b"
        );
        assert_eq!(info.mode, SslMode::VerifyFull);
        assert_eq!(info.roots, Roots::File("/etc/rds.pem".into()));

        let info = parsed("postgresql://h1:5432,h2:5433/db?sslmode=require", NO_ENV);
        assert_eq!(info.rest, "postgresql://h1:5432,h2:5433/db");
        assert_eq!(info.mode, SslMode::Require);

        // A `?` in the password is the password's; `+` is not a space.
        let info = parsed("postgres://u:a?b@h/db?sslrootcert=/x+y.pem", NO_ENV);
        assert_eq!(info.rest, "postgres://u:a?b@h/db");
        assert_eq!(info.roots, Roots::File("/x+y.pem".into()));

        let info = parsed("postgres://h/db", NO_ENV);
        assert_eq!(info.rest, "postgres://h/db");
        assert_eq!(info.mode, SslMode::Prefer);
    }

    #[test]
    fn key_value_parameters_are_taken_out_and_the_rest_kept_as_written() {
        let info = parsed(
            "host=h  password='it\\'s x' sslmode = verify-ca sslrootcert='/a b/c.pem' dbname=db",
            NO_ENV,
        );
        assert_eq!(info.rest, "host=h password='it\\'s x' dbname=db");
        assert_eq!(info.mode, SslMode::VerifyCa);
        assert_eq!(info.roots, Roots::File("/a b/c.pem".into()));

        let info = parsed("sslrootcert=/a\\ b.pem host=h", NO_ENV);
        assert_eq!(info.rest, "host=h");
        assert_eq!(info.roots, Roots::File("/a b.pem".into()));

        for malformed in ["host", "host=h =x", "password='open", "host=h\\"] {
            assert!(
                matches!(
                    parse(malformed, env(NO_ENV)),
                    Err(TlsError::MalformedConnectionString)
                ),
                "{malformed}"
            );
        }
    }

    #[test]
    fn the_environment_applies_when_the_string_says_nothing() {
        const ENV: &[(&str, &str)] = &[
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/env/ca.pem"),
            ("HOME", "/home/me"),
        ];
        let info = parsed("postgres://h/db", ENV);
        assert_eq!(info.mode, SslMode::VerifyFull);
        assert_eq!(info.roots, Roots::File("/env/ca.pem".into()));

        let info = parsed("postgres://h/db?sslmode=disable&sslrootcert=/url.pem", ENV);
        assert_eq!(info.mode, SslMode::Disable);
        assert_eq!(info.roots, Roots::File("/url.pem".into()));

        let info = parsed("host=h sslmode=require", ENV);
        assert_eq!(info.mode, SslMode::Require);
        assert_eq!(info.roots, Roots::File("/env/ca.pem".into()));
    }

    #[test]
    fn without_sslrootcert_the_default_file_is_under_home() {
        let info = parsed("postgres://h/db", &[("HOME", "/home/me")]);
        assert_eq!(
            info.roots,
            Roots::Default(Some("/home/me/.postgresql/root.crt".into()))
        );
        assert_eq!(
            parsed("postgres://h/db", NO_ENV).roots,
            Roots::Default(None)
        );
    }

    #[test]
    fn system_roots_default_to_verify_full_and_refuse_weaker_modes() {
        let info = parsed("postgres://h/db?sslrootcert=system", NO_ENV);
        assert_eq!(info.mode, SslMode::VerifyFull);
        assert_eq!(info.roots, Roots::System);

        let info = parsed("postgres://h/db", &[("PGSSLROOTCERT", "system")]);
        assert_eq!(info.mode, SslMode::VerifyFull);

        for weak in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let conn = format!("postgres://h/db?sslrootcert=system&sslmode={weak}");
            assert!(
                matches!(
                    parse(&conn, env(NO_ENV)),
                    Err(TlsError::WeakModeWithSystemRoots(mode)) if mode == weak
                ),
                "{weak}"
            );
        }
    }

    #[test]
    fn an_unknown_sslmode_is_refused_with_its_value() {
        let err = parse("postgres://h/db?sslmode=verify_full", env(NO_ENV)).unwrap_err();
        assert_eq!(err.to_string(), "invalid sslmode value: \"verify_full\"");
        let err = parse("postgres://h/db", env(&[("PGSSLMODE", "on")])).unwrap_err();
        assert_eq!(err.to_string(), "invalid sslmode value: \"on\"");
    }
}
