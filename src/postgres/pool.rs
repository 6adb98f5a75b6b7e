//! The connection pool: bb8 over diesel-async's `AsyncPgConnection`, which reconnects on its
//! own after an outage.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};

use super::error::SetupError;

/// The pool [`PgStore`](super::PgStore) runs on.
pub type PgPool = bb8::Pool<Manager>;

pub(crate) type Manager = AsyncDieselConnectionManager<AsyncPgConnection>;

/// How often the pool checks that it keeps its idle connections, and opens one when it does not.
/// After an outage, a caller already waiting for a connection gets one within this of the
/// database accepting connections again.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);

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
            connection_timeout: Duration::from_secs(5),
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
/// answers.
///
/// # Errors
/// [`SetupError::Unavailable`] when no connection can be made.
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
/// back.)
///
/// The pool bounds only the wait for a connection; [`PgStore`](super::PgStore) bounds each
/// statement. On a network that drops packets silently, bound the connection attempts too with
/// the driver's options in the URL, e.g. `?connect_timeout=5&keepalives_idle=30&tcp_user_timeout=10`
/// (tokio-postgres reads them, in seconds).
///
/// # Errors
/// [`SetupError::OutOfRange`] for a `max_size` of 0, a zero `connection_timeout` or a
/// `min_idle` above `max_size`; [`SetupError::Unavailable`] when no connection can be made
/// within `connection_timeout`.
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
    let mut manager_config = ManagerConfig::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        database_url,
        manager_config,
    );
    let builder = bb8::Pool::builder()
        .max_size(config.max_size)
        // bb8 wakes a waiting caller only when a connection is opened or returned. Keeping one
        // idle connection makes its reaper reopen one every `RECONNECT_INTERVAL` while there is
        // none; single attempts instead of bb8's backing-off retries make the next attempt that
        // one, rather than one scheduled up to half the connection timeout later.
        .min_idle(Some(config.min_idle.unwrap_or(1).max(1)))
        .reaper_rate(RECONNECT_INTERVAL)
        .retry_connection(false)
        .connection_timeout(config.connection_timeout)
        .test_on_check_out(false);
    // Opens the idle connection, failing here with the cause rather than on the first request.
    let pool = tokio::time::timeout(config.connection_timeout, builder.build(manager))
        .await
        .map_err(|elapsed| SetupError::Unavailable(Box::new(elapsed)))?
        .map_err(|err| SetupError::Unavailable(Box::new(err)))?;
    Ok(pool)
}
