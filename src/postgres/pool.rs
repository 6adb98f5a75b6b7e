//! The connection pool: bb8 over diesel-async's `AsyncPgConnection`, which reconnects on its
//! own after an outage and says why no connection could be had, and the settings the crate
//! recommends for a pool the application builds itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bb8::{CustomizeConnection, ErrorSink, PooledConnection, RunError};
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};

use super::error::SetupError;
use super::tls::{ConnectError, Connector, chain_text};
use super::tls_error::TlsError;
use crate::error::BoxError;
use crate::store::StoreError;

/// The connection manager of a [`PgPool`]; [`manager`] makes one with the recommended settings.
pub type PgManager = AsyncDieselConnectionManager<AsyncPgConnection>;

/// How long a caller waits for a connection by default.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// diesel-async's manager settings as the crate recommends them: connections are opened as
/// [`establish`] opens them (TLS as the URL's `sslmode` asks), and recycled with
/// [`RecyclingMethod::Fast`], which only drops a connection the driver saw break, instead of the
/// default `SELECT 1` round trip each time a connection returns to use. Add what your
/// application needs and build the manager with `AsyncDieselConnectionManager::new_with_config`.
pub fn manager_config() -> ManagerConfig<AsyncPgConnection> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| {
        let url = url.to_owned();
        Box::pin(async move {
            Connector::new(&url)?
                .connect()
                .await
                .map_err(ConnectionError::from)
        })
    });
    config
}

/// A manager for `database_url` with [`manager_config`].
pub fn manager(database_url: impl Into<String>) -> PgManager {
    AsyncDieselConnectionManager::new_with_config(database_url, manager_config())
}

/// bb8's pool builder with the settings the crate recommends, for an application that builds the
/// pool itself and shares it with [`PgStore`](super::PgStore): no test on checkout (with
/// bb8's default, every checkout costs a round trip) and a checkout timeout of 5 s (bb8's 30 s
/// default turns an exhausted pool into a half-minute hang). Set the rest (`max_size`, …) on it
/// and build it with [`manager`]:
///
/// ```rust,no_run
/// # async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use authingo::postgres::{self, PgStore};
///
/// let pool = postgres::pool_builder()
///     .max_size(20)
///     .build(postgres::manager(url))
///     .await?;
/// let store = PgStore::new(pool.clone()); // the same pool serves the application's queries
/// # Ok(()) }
/// ```
///
/// A pool built so becomes a [`PgPool`] (`PgStore::new` converts it); only one made by
/// [`connect_with`] also remembers why its last connection attempt failed, for the error of a
/// checkout that times out.
pub fn pool_builder() -> bb8::Builder<PgManager> {
    bb8::Pool::builder()
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(false)
        // bb8 wakes a waiting caller only when a connection is opened or returned. Keeping one
        // idle connection makes its reaper reopen one every `RECONNECT_INTERVAL` while there is
        // none; single attempts instead of bb8's backing-off retries make the next attempt that
        // one, rather than one scheduled up to half the connection timeout later.
        .min_idle(Some(1))
        .reaper_rate(RECONNECT_INTERVAL)
        .retry_connection(false)
}

/// How often the pool checks that it keeps its idle connections, and opens one when it does not.
/// After an outage, a caller already waiting for a connection gets one within this of the
/// database accepting connections again.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);

/// The pool [`PgStore`](super::PgStore) runs on: bb8's pool of diesel-async connections, which
/// also remembers why its last attempt to open a connection failed. Cheap to clone.
///
/// Made by [`connect`] or [`connect_with`].
#[derive(Clone)]
pub struct PgPool {
    pool: bb8::Pool<PgManager>,
    last_connect_error: LastConnectError,
    config: PoolConfig,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("state", &self.pool.state())
            .field("config", &self.config)
            .finish()
    }
}

impl PgPool {
    /// A connection of the pool, waiting up to [`PoolConfig::connection_timeout`] for one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when none is free in time. Its source says why: the error of
    /// the pool's last attempt to open a connection (the server refused, say) when no attempt has
    /// succeeded since, else that every connection stayed in use.
    pub async fn get(
        &self,
    ) -> Result<PooledConnection<'_, AsyncDieselConnectionManager<AsyncPgConnection>>, StoreError>
    {
        let _waiting = super::observe::checkout(&self.pool.state());
        self.pool.get().await.map_err(|err| {
            let waited = self.config.connection_timeout;
            let err = match (err, self.last_connect_error.get()) {
                (RunError::User(err), _) => CheckoutFailed::Connect(Arc::new(err)),
                (RunError::TimedOut, Some(cause)) => {
                    CheckoutFailed::CannotConnect { waited, cause }
                }
                (RunError::TimedOut, None) => CheckoutFailed::Busy {
                    waited,
                    open: self.pool.state().connections,
                    max_size: self.config.max_size,
                },
            };
            StoreError::Unavailable(Box::new(err))
        })
    }

    /// The most connections the pool holds.
    pub(crate) fn max_size(&self) -> u32 {
        self.config.max_size
    }

    /// The number of connections open and idle, and bb8's statistics.
    pub fn state(&self) -> bb8::State {
        self.pool.state()
    }

    /// bb8's pool itself, for what this type does not offer. Its own `get` reports a timeout
    /// without its cause.
    pub fn inner(&self) -> &bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>> {
        &self.pool
    }
}

impl From<bb8::Pool<PgManager>> for PgPool {
    /// A pool the application built (see [`pool_builder`]). Its checkout timeouts report how
    /// many connections were in use, but not a failed connection attempt's cause, which only a
    /// pool made by [`connect_with`] records.
    fn from(pool: bb8::Pool<PgManager>) -> Self {
        let built = pool.config();
        Self {
            config: PoolConfig {
                max_size: built.max_size,
                min_idle: built.min_idle,
                connection_timeout: built.connection_timeout,
            },
            pool,
            last_connect_error: LastConnectError::default(),
        }
    }
}

/// Why [`PgPool::get`] gave no connection. Each message includes its cause's, as the store's
/// errors do, so that one line of log says it all.
#[derive(Debug, thiserror::Error)]
enum CheckoutFailed {
    /// The wait ran out, and the last attempt to open a connection had failed (none opened
    /// since): the database is down, refuses, or rejects the credentials.
    #[error("no connection within {waited:?}; the last attempt to open one failed: {cause}")]
    CannotConnect {
        waited: Duration,
        #[source]
        cause: Arc<PoolError>,
    },
    /// The wait ran out with no failed attempt: every connection stayed in use (slow statements,
    /// or more callers than connections), or the attempts are still under way.
    #[error("no connection free within {waited:?} ({open} of {max_size} open, all in use)")]
    Busy {
        waited: Duration,
        open: u32,
        max_size: u32,
    },
    /// bb8 reported a connection error itself (its 0.9 `get` does not).
    #[error("{0}")]
    Connect(#[source] Arc<PoolError>),
}

/// The error of the pool's last failed attempt to open a connection, cleared when one opens:
/// bb8 hands the first to an [`ErrorSink`], and calls a [`CustomizeConnection`] on each
/// connection it opens. One per pool, shared by the pool's sink and customizer and the
/// [`PgPool`] that reports it.
#[derive(Debug, Clone, Default)]
struct LastConnectError(Arc<Mutex<Option<Arc<PoolError>>>>);

impl LastConnectError {
    fn get(&self) -> Option<Arc<PoolError>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, error: Option<PoolError>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = error.map(Arc::new);
    }
}

impl ErrorSink<PoolError> for LastConnectError {
    fn sink(&self, error: PoolError) {
        self.set(Some(error));
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

impl CustomizeConnection<AsyncPgConnection, PoolError> for LastConnectError {
    fn on_acquire<'a>(
        &'a self,
        _connection: &'a mut AsyncPgConnection,
    ) -> Pin<Box<dyn Future<Output = Result<(), PoolError>> + Send + 'a>> {
        self.set(None);
        Box::pin(async { Ok(()) })
    }
}

/// Opens one connection to `database_url`, outside any pool (for a tool, or a task that needs
/// a session of its own), with TLS as the URL says; see [`connect_with`] for how.
///
/// # Errors
/// As [`connect_with`]: [`SetupError::Tls`] for TLS, [`SetupError::Unavailable`] otherwise.
pub async fn establish(database_url: &str) -> Result<AsyncPgConnection, SetupError> {
    Ok(Connector::new(database_url)?.connect().await?)
}

fn lock(slot: &Mutex<Option<TlsError>>) -> std::sync::MutexGuard<'_, Option<TlsError>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Pool settings for [`connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most connections open at once. Default 10.
    pub max_size: u32,
    /// Connections kept open however long they are idle. Default `None`, which keeps one, as
    /// does `Some(0)`: the pool opens connections on its own only to keep this many (checked
    /// every 100 ms), and that is how callers already waiting learn that the database is back
    /// after an outage. Idle connections above it are closed after bb8's idle timeout
    /// (10 minutes) and reopened on demand.
    pub min_idle: Option<u32>,
    /// How long a caller waits for a connection before getting
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable). Default 5 s (bb8's own default of 30 s turns an exhausted
    /// pool into a half-minute hang).
    pub connection_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 10,
            min_idle: None,
            connection_timeout: CHECKOUT_TIMEOUT,
        }
    }
}

impl PoolConfig {
    /// Sets [`max_size`](Self::max_size).
    #[must_use]
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets [`min_idle`](Self::min_idle).
    #[must_use]
    pub fn min_idle(mut self, min_idle: Option<u32>) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// Sets [`connection_timeout`](Self::connection_timeout).
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }
}

/// Opens a pool on `database_url` with [`PoolConfig::default`] and checks that the database
/// answers. TLS as in [`connect_with`].
///
/// # Errors
/// [`SetupError::Tls`] when TLS cannot be set up as the URL asks; [`SetupError::Unavailable`]
/// when no connection can be made otherwise.
pub async fn connect(database_url: &str) -> Result<PgPool, SetupError> {
    connect_with(database_url, &PoolConfig::default()).await
}

/// Opens a pool on `database_url` with `config` and checks that the database answers.
///
/// Checked-out connections are not pinged first: a `SELECT 1` per checkout would add a round
/// trip to every request. A connection found broken when it is used is discarded on its return.
///
/// After an outage the pool reconnects by itself: it makes one attempt at a time, every 100 ms,
/// until a connection opens, and callers already waiting are served from it without waiting for
/// a new caller to arrive. (bb8's own retries back off up to half the connection timeout, and
/// are made only when a caller arrives, so waiters could stay unserved after the database was
/// back.) A caller who waits in vain learns why: the error of the last attempt.
///
/// TLS is as libpq makes it, from the URL's `sslmode` and `sslrootcert`, else the environment's
/// `PGSSLMODE` and `PGSSLROOTCERT` (the URL wins); `sslmode` defaults to `prefer` (TLS when
/// the server offers it, the certificate unchecked), or to `verify-full` with
/// `sslrootcert=system`, the platform's trusted roots. Use `verify-full` with the provider's CA
/// file in production; the README's "TLS and managed PostgreSQL" has each mode and the
/// connection strings of the managed services. A `key=value` connection string takes the same
/// keys. Over a Unix socket no TLS is used, as in libpq.
///
/// The pool bounds only the wait for a connection; [`PgStore`](super::PgStore) bounds each
/// statement. On a network that drops packets silently, bound the connection attempts too with
/// the driver's options in the URL, e.g. `?connect_timeout=5&keepalives_idle=30&tcp_user_timeout=10`
/// (tokio-postgres reads them, in seconds).
///
/// # Errors
/// [`SetupError::OutOfRange`] for a `max_size` of 0, a zero `connection_timeout` or a
/// `min_idle` above `max_size`; [`SetupError::Tls`] when TLS cannot be set up as asked (its
/// [`TlsError`](super::TlsError) says why: an untrusted certificate, a host name mismatch, a
/// server without TLS, an unreadable `sslrootcert`); [`SetupError::Unavailable`] when no
/// connection can be made within `connection_timeout` otherwise (the server's refusal among
/// them).
pub async fn connect_with(database_url: &str, config: &PoolConfig) -> Result<PgPool, SetupError> {
    // bb8 asserts these; refuse them with an error instead.
    let out_of_range = SetupError::OutOfRange;
    if config.max_size == 0 {
        return Err(out_of_range("max_size"));
    }
    if config.connection_timeout.is_zero() {
        return Err(out_of_range("connection_timeout"));
    }
    if config
        .min_idle
        .is_some_and(|min_idle| min_idle > config.max_size)
    {
        return Err(out_of_range("min_idle"));
    }
    // The URL's TLS settings are read once, and a bad one refused before any connection.
    let connector = Arc::new(Connector::new(database_url)?);
    let last_tls_error = Arc::new(Mutex::new(None));
    let mut manager_config = manager_config();
    manager_config.custom_setup = Box::new({
        let last_tls_error = last_tls_error.clone();
        move |_url| {
            let connector = connector.clone();
            let last_tls_error = last_tls_error.clone();
            Box::pin(async move {
                connector.connect().await.map_err(|err| match err {
                    // Kept whole, for the error of a pool that cannot open its first connection;
                    // bb8 only sees diesel's string.
                    ConnectError::Tls(err) => {
                        let told = ConnectionError::BadConnection(chain_text(&err));
                        *lock(&last_tls_error) = Some(err);
                        told
                    }
                    other => other.into(),
                })
            })
        }
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        database_url,
        manager_config,
    );
    let last_connect_error = LastConnectError::default();
    // The recommended settings (see `pool_builder`), at least one idle connection among them.
    let builder = pool_builder()
        .max_size(config.max_size)
        .min_idle(Some(config.min_idle.unwrap_or(1).max(1)))
        .connection_timeout(config.connection_timeout)
        .error_sink(Box::new(last_connect_error.clone()))
        .connection_customizer(Box::new(last_connect_error.clone()));
    // Opens the idle connection, failing here with the cause rather than on the first request.
    let built: Result<_, BoxError> =
        match tokio::time::timeout(config.connection_timeout, builder.build(manager)).await {
            Ok(built) => built.map_err(|err| Box::new(err) as BoxError),
            Err(elapsed) => Err(Box::new(elapsed)),
        };
    // A TLS failure is told by its cause, not as bb8's string of it.
    let pool = built.map_err(|cause| match lock(&last_tls_error).take() {
        Some(tls) => SetupError::Tls(tls),
        None => SetupError::Unavailable(cause),
    })?;
    Ok(PgPool {
        pool,
        last_connect_error,
        config: config.clone(),
    })
}
