//! How a command fails: an exit code a script can branch on, and one line on stderr.

use std::error::Error;
use std::process::ExitCode;

use authingo::postgres::{SetupError, TlsError};
use authingo::{AuthError, StoreError};

/// The exit codes other than success, as `--help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Failed = 1,
    Usage = 2,
    NotFound = 3,
    Unavailable = 4,
    Schema = 5,
}

/// A command's failure: its exit code and what to tell the operator.
#[derive(Debug)]
pub(crate) struct Failure {
    code: Code,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `err` with its causes, under `code`.
    fn of(code: Code, err: &(dyn Error + 'static)) -> Self {
        Self::new(code, one_line(err))
    }

    /// Writes the message to stderr and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("authingo: {}", self.message);
        ExitCode::from(self.code as u8)
    }
}

impl From<SetupError> for Failure {
    fn from(err: SetupError) -> Self {
        let code = match &err {
            // A connection string that cannot be used as written is the operator's to fix, not
            // a reason to retry.
            SetupError::InvalidUrl(_)
            | SetupError::Tls(
                TlsError::InvalidSslMode(_)
                | TlsError::WeakModeWithSystemRoots(_)
                | TlsError::MalformedConnectionString,
            ) => Code::Usage,
            SetupError::Unavailable(_) | SetupError::Tls(_) => Code::Unavailable,
            SetupError::IncompatibleSchema { .. } => Code::Schema,
            _ => Code::Failed,
        };
        Self::of(code, &err)
    }
}

impl From<AuthError> for Failure {
    fn from(err: AuthError) -> Self {
        let code = match &err {
            AuthError::InvalidInput { .. } => Code::Usage,
            AuthError::Unavailable(_) => Code::Unavailable,
            _ => Code::Failed,
        };
        Self::of(code, &err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        let code = match &err {
            StoreError::InvalidInput { .. } => Code::Usage,
            StoreError::Unavailable(_) => Code::Unavailable,
            _ => Code::Failed,
        };
        Self::of(code, &err)
    }
}

/// `err` and each cause its text does not already hold, joined by `: `, on one line.
fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let told = cause.to_string();
        if !text.contains(&told) {
            text.push_str(": ");
            text.push_str(&told);
        }
        source = cause.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
