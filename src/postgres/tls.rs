//! Connecting with TLS as libpq would: the connection string's settings (read by
//! [`conninfo`](super::conninfo)) and its trusted certificates ([`trust`](super::trust)), a
//! connection made with them, and why one could not be made, told by cause.

use std::error::Error as StdError;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::{CertificateError, ClientConfig};
use tokio_postgres::config::{Host, SslMode as DriverMode};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Config, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::{self, ConnInfo, SslMode};
use super::trust::client_config;
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

/// Why no connection was made: a TLS error told by cause, or the driver's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The server could not be reached, or refused the connection (its message).
    #[error("{}", Chain(.0))]
    Driver(#[source] tokio_postgres::Error),
    /// diesel-async could not set the connection up.
    #[error(transparent)]
    Setup(ConnectionError),
}

impl From<ConnectError> for ConnectionError {
    /// For a pool's connection: the whole story in the one string diesel keeps.
    fn from(err: ConnectError) -> Self {
        match err {
            ConnectError::Setup(err) => err,
            other => ConnectionError::BadConnection(Chain(&other).to_string()),
        }
    }
}

impl From<ConnectError> for super::SetupError {
    fn from(err: ConnectError) -> Self {
        match err {
            ConnectError::Tls(err) => Self::Tls(err),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}

/// `err` and its causes in one line, as [`ConnectionError::BadConnection`] must hold them.
pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    Chain(err).to_string()
}

/// An error with its causes, separated by `: `, each told once (a cause whose text its
/// parent's message already includes is left out).
struct Chain<'a>(&'a (dyn StdError + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut told = self.0.to_string();
        f.write_str(&told)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !told.contains(&text) {
                write!(f, ": {text}")?;
                told = text;
            }
            source = cause.source();
        }
        Ok(())
    }
}

/// How one connection string connects: the driver's settings and the TLS to use.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    config: Config,
    mode: SslMode,
    /// `None` for `disable`, and for connections over Unix sockets, where libpq uses no TLS.
    tls: Option<Arc<ClientConfig>>,
}

impl Connector {
    /// Reads `conn` and the process's environment (`PGSSLMODE`, `PGSSLROOTCERT`, `HOME`), and
    /// loads the trusted certificates.
    pub(crate) fn new(conn: &str) -> Result<Self, ConnectError> {
        let info = conninfo::parse(conn, |name| std::env::var(name).ok())?;
        Self::from_info(info)
    }

    fn from_info(info: ConnInfo) -> Result<Self, ConnectError> {
        let config: Config = info.rest.parse().map_err(ConnectError::Driver)?;
        let unix_only = !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|host| !matches!(host, Host::Tcp(_)));
        let mode = if unix_only {
            SslMode::Disable
        } else {
            info.mode
        };
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(Arc::new(client_config(mode, &info.roots)?)),
        };
        Ok(Self { config, mode, tls })
    }

    /// Opens a connection as libpq would with this `sslmode`: `allow` tries plain text first and
    /// TLS when the server answers it with an error; `prefer` falls back to plain text when the
    /// server offers no TLS or the handshake fails (a certificate that fails a root file's
    /// check included).
    pub(crate) async fn connect(&self) -> Result<AsyncPgConnection, ConnectError> {
        let Some(tls) = &self.tls else {
            return self.attempt(DriverMode::Disable, None).await;
        };
        match self.mode {
            SslMode::Allow => match self.attempt(DriverMode::Disable, None).await {
                Err(ConnectError::Driver(err)) if err.as_db_error().is_some() => {
                    self.attempt(DriverMode::Require, Some(tls)).await
                }
                other => other,
            },
            SslMode::Prefer => match self.attempt(DriverMode::Prefer, Some(tls)).await {
                Err(ConnectError::Tls(_)) => self.attempt(DriverMode::Disable, None).await,
                other => other,
            },
            _ => self.attempt(DriverMode::Require, Some(tls)).await,
        }
    }

    async fn attempt(
        &self,
        mode: DriverMode,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<AsyncPgConnection, ConnectError> {
        let mut config = self.config.clone();
        config.ssl_mode(mode);
        match tls {
            None => {
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(ConnectError::Driver)?;
                set_up(client, connection).await
            }
            Some(tls) => {
                let tracked = Tracked::new(MakeRustlsConnect::new(ClientConfig::clone(tls)));
                let progress = tracked.progress.clone();
                let (client, connection) = config
                    .connect(tracked)
                    .await
                    .map_err(|err| classify(err, &progress, mode, self.mode))?;
                set_up(client, connection).await
            }
        }
    }
}

/// diesel-async's connection on the driver's.
async fn set_up<S>(
    client: tokio_postgres::Client,
    connection: tokio_postgres::Connection<Socket, S>,
) -> Result<AsyncPgConnection, ConnectError>
where
    S: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    AsyncPgConnection::try_from_client_and_connection(client, connection)
        .await
        .map_err(ConnectError::Setup)
}

/// What a connector saw of a connection attempt: whether a TLS handshake began (the server
/// accepted TLS) and whether it completed, and with which host name.
#[derive(Debug, Default)]
struct Progress {
    handshake_started: AtomicBool,
    handshake_done: AtomicBool,
    host: Mutex<Option<String>>,
}

/// tokio-postgres-rustls's connector, noting the attempt's [`Progress`]: tokio-postgres tells a
/// server without TLS only by its error's text.
#[derive(Clone)]
struct Tracked {
    inner: MakeRustlsConnect,
    progress: Arc<Progress>,
}

impl Tracked {
    fn new(inner: MakeRustlsConnect) -> Self {
        Self {
            inner,
            progress: Arc::default(),
        }
    }
}

impl MakeTlsConnect<Socket> for Tracked {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = TrackedConnect<<MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        *self
            .progress
            .host
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(domain.to_owned());
        Ok(TrackedConnect {
            inner: MakeTlsConnect::<Socket>::make_tls_connect(&mut self.inner, domain)?,
            progress: self.progress.clone(),
        })
    }
}

struct TrackedConnect<T> {
    inner: T,
    progress: Arc<Progress>,
}

impl<S, T> TlsConnect<S> for TrackedConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<T::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        self.progress
            .handshake_started
            .store(true, Ordering::SeqCst);
        let handshake = self.inner.connect(stream);
        Box::pin(async move {
            let done = handshake.await;
            if done.is_ok() {
                self.progress.handshake_done.store(true, Ordering::SeqCst);
            }
            done
        })
    }
}

/// The driver's error of a TLS attempt in `sent` mode (for `wanted`), as a [`TlsError`] when
/// TLS caused it.
fn classify(
    err: tokio_postgres::Error,
    progress: &Progress,
    sent: DriverMode,
    wanted: SslMode,
) -> ConnectError {
    let started = progress.handshake_started.load(Ordering::SeqCst);
    let done = progress.handshake_done.load(Ordering::SeqCst);
    if let Some(cause) = find::<rustls::Error>(&err) {
        let source: BoxError = Box::new(cause.clone());
        return match cause {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                TlsError::UntrustedCertificate(source)
            }
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsError::HostNameMismatch {
                host: progress
                    .host
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .unwrap_or_default(),
                source,
            },
            rustls::Error::InvalidCertificate(_) => TlsError::InvalidCertificate(source),
            _ => TlsError::Handshake(source),
        }
        .into();
    }
    if started && !done {
        return TlsError::Handshake(Box::new(err)).into();
    }
    // Asked for TLS, refused before any handshake, and neither the network nor the server's
    // error message was the cause: the server answered "no TLS".
    if sent == DriverMode::Require
        && !started
        && err.as_db_error().is_none()
        && find::<std::io::Error>(&err).is_none()
    {
        return TlsError::NotSupported(wanted.as_str()).into();
    }
    ConnectError::Driver(err)
}

/// The first `E` among `err` and its causes, looking inside I/O errors too (whose `source`
/// skips the error they wrap).
fn find<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(wrapped) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(found) = wrapped.downcast_ref::<E>() {
                return Some(found);
            }
        }
        next = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_socket_connection_uses_no_tls_as_in_libpq() {
        let info = conninfo::parse("host=/var/run/postgresql sslmode=require", |_| None).unwrap();
        let connector = Connector::from_info(info).unwrap();
        assert_eq!(connector.mode, SslMode::Disable);
        assert!(connector.tls.is_none());
    }
}
