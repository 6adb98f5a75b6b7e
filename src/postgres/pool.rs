//! The connection pool: bb8 over diesel-async's `AsyncPgConnection`.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};

use super::error::SetupError;

/// The pool [`PgStore`](super::PgStore) runs on.
pub type PgPool = bb8::Pool<Manager>;

pub(crate) type Manager = AsyncDieselConnectionManager<AsyncPgConnection>;

/// Pool settings for [`connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most connections open at once. Default 10.
    pub max_size: u32,
    /// Connections kept open however long they are idle. Default `None`: idle connections above
    /// zero are closed after bb8's idle timeout (10 minutes) and reopened on demand.
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
/// The pool bounds only the wait for a connection. To bound a statement on a network that drops
/// packets silently, set the driver's options in the URL, e.g.
/// `?connect_timeout=5&keepalives_idle=30&tcp_user_timeout=10` (tokio-postgres reads them, in seconds).
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
    let pool = bb8::Pool::builder()
        .max_size(config.max_size)
        .min_idle(config.min_idle)
        .connection_timeout(config.connection_timeout)
        .test_on_check_out(false)
        .build(manager)
        .await
        .map_err(|err| SetupError::Unavailable(Box::new(err)))?;
    // Fail here, with the cause (bb8's own checkout would only report a timeout), rather than on
    // the first request.
    let first = tokio::time::timeout(config.connection_timeout, pool.dedicated_connection())
        .await
        .map_err(|elapsed| SetupError::Unavailable(Box::new(elapsed)))?;
    drop(first.map_err(|err| SetupError::Unavailable(Box::new(err)))?);
    Ok(pool)
}
