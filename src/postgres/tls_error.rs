//! Why a TLS connection to PostgreSQL could not be set up: the error that the connection
//! string's reader, the trusted certificates and the handshake all report.

use std::path::PathBuf;

use crate::error::BoxError;

/// Why a TLS connection to PostgreSQL could not be set up: the connection string's TLS settings,
/// the trusted certificates, or the server's certificate. Messages name files and host names,
/// never a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `sslmode` (or `PGSSLMODE`) is none of `disable`, `allow`, `prefer`, `require`,
    /// `verify-ca`, `verify-full`.
    #[error("invalid sslmode value: \"{0}\"")]
    InvalidSslMode(String),
    /// `sslrootcert=system` with an `sslmode` other than `verify-full`, which libpq 16 refuses
    /// too: trusting every public CA is only safe with the host name checked.
    #[error("weak sslmode \"{0}\" may not be used with sslrootcert=system (use \"verify-full\")")]
    WeakModeWithSystemRoots(&'static str),
    /// A `key=value` connection string that does not parse (an unclosed quote, a key without
    /// `=`).
    #[error("the connection string is malformed: key=value pairs expected")]
    MalformedConnectionString,
    /// `verify-ca` or `verify-full` without `sslrootcert`, and libpq's default file
    /// (`~/.postgresql/root.crt`) does not exist.
    #[error(
        "root certificate file \"{}\" does not exist; provide it with sslrootcert, use the \
         system's trusted roots with sslrootcert=system, or choose an sslmode that does not \
         verify the server's certificate",
        path.display()
    )]
    MissingRootCertificate {
        /// The file looked for.
        path: PathBuf,
    },
    /// The `sslrootcert` file cannot be read, or holds no certificate.
    #[error("cannot use root certificate file \"{}\": {source}", path.display())]
    RootCertificateFile {
        /// The file.
        path: PathBuf,
        /// Why: the file system's error, or what is wrong with its contents.
        source: BoxError,
    },
    /// `sslrootcert=system`, and the platform has no trusted root certificate to load.
    #[error("no trusted root certificate found on this system (sslrootcert=system)")]
    NoSystemRoots,
    /// The `sslmode` requires TLS and the server does not offer it (`ssl = off`, or a pooler
    /// without TLS).
    #[error("the server does not support TLS, which sslmode={0} requires")]
    NotSupported(&'static str),
    /// The server's certificate is not signed by a certificate authority in `sslrootcert` (or
    /// the system's roots): the server is not who it claims to be, or `sslrootcert` is not its
    /// CA.
    #[error("the server's certificate is not trusted: {0}")]
    UntrustedCertificate(#[source] BoxError),
    /// The server's certificate is signed by a trusted authority but made out to another name
    /// than the host connected to (`verify-full`).
    #[error("the server's certificate does not match the host name \"{host}\": {source}")]
    HostNameMismatch {
        /// The host connected to.
        host: String,
        /// The certificate's error, with the names it is valid for.
        source: BoxError,
    },
    /// The server's certificate is unusable otherwise: expired, not yet valid, malformed.
    #[error("the server's certificate is invalid: {0}")]
    InvalidCertificate(#[source] BoxError),
    /// The TLS handshake failed for another reason (no common protocol version or cipher, the
    /// connection closed during it).
    #[error("the TLS handshake failed: {0}")]
    Handshake(#[source] BoxError),
}
