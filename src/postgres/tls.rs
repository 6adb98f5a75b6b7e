//! Connecting with TLS as libpq would: the connection string's settings (read by
//! [`conninfo`](super::conninfo)) and its trusted certificates ([`trust`](super::trust)), a
//! connection made with them, and why one could not be made, told by cause.

use std::error::Error as StdError;
use std::future::Future;
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
use super::tls_error::TlsError;
use super::trust::client_config;
use crate::error::BoxError;

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
            && let Some(found) = wrapped.downcast_ref::<E>()
        {
            return Some(found);
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
