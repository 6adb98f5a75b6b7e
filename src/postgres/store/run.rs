//! The statement runner every store method goes through: a pooled connection, the statement
//! under the store's timeout, a cancel when it outlives it, and a retry on another connection
//! when the connection died under a statement that may run twice.

use std::time::Duration;

use diesel_async::pooled_connection::PoolableConnection as _;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager as _};

use super::PgStore;
use crate::postgres::error::{described, from_diesel};
use crate::store::StoreError;

/// Runs `$query`, an expression over the connection `$conn`, on a pooled connection, to a
/// `Result<_, StoreError>`. A connection found dead before anything was sent on it is skipped;
/// one that dies under the statement is settled by [`after_failure`].
///
/// A macro rather than a function taking an async closure: `async_trait` needs the futures to
/// be `Send` for every lifetime, which closures over borrowed arguments cannot yet promise.
macro_rules! run {
    ($store:expr, $retry:expr, |$conn:ident| $query:expr) => {{
        // Counted on the first failure only: the pool's state takes its lock.
        let mut retries: Option<u32> = None;
        let mut stale = 0;
        loop {
            let mut pooled = $store.pool.get().await?;
            // A connection the server already closed (seen by the driver, no round trip): drop
            // it, the pool discards it, and take the next. Nothing was sent, so any statement may
            // go on another; the pool holds at most `max_size` such connections.
            let broken =
                diesel_async::pooled_connection::PoolableConnection::is_broken(&mut *pooled);
            if broken && stale < $store.pool.state().connections {
                stale += 1;
                continue;
            }
            let $conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
            let Ok(outcome) = tokio::time::timeout($store.statement_timeout, $query).await else {
                break Err($crate::postgres::store::run::abandon(
                    &mut pooled,
                    $store.statement_timeout,
                ));
            };
            match outcome {
                Ok(value) => break Ok::<_, $crate::store::StoreError>(value),
                Err(err) => {
                    match $crate::postgres::store::run::after_failure(
                        err,
                        &mut pooled,
                        &mut retries,
                        || $store.retries($retry),
                    )
                    .await
                    {
                        Some(err) => break Err(err),
                        None => continue,
                    }
                }
            }
        }
    }};
}

impl PgStore {
    /// How many times a statement with `retry` may run again on another connection: as many
    /// as the pool may hold dead connections after a restart.
    pub(super) fn retries(&self, retry: Retry) -> u32 {
        match retry {
            // Every connection the pool may hold, and one more: connections being opened while
            // the server ends them count too, which the open connections at the first failure
            // would leave out.
            Retry::Idempotent => self.pool.max_size() + 1,
            Retry::Never => 0,
        }
    }
}

/// The statement on `conn` outlived `timeout`: cancels it on the server (in the background,
/// bounded too, since the server may not answer at all) and marks the connection broken, so that
/// the pool discards it instead of handing out a connection with a statement still in flight.
pub(in crate::postgres::store) fn abandon(
    conn: &mut AsyncPgConnection,
    timeout: Duration,
) -> StoreError {
    let cancel = conn.cancel_token();
    tokio::spawn(async move {
        // Over TLS when the connection's `sslmode` asked for it (the token carries the mode):
        // without a TLS connector, tokio-postgres sends no cancel for such a connection.
        if let Some(tls) = crate::postgres::trust::cancel_connector() {
            let _ = tokio::time::timeout(timeout, cancel.cancel_query(tls)).await;
        }
    });
    <AsyncPgConnection as AsyncConnection>::TransactionManager::transaction_manager_status_mut(
        conn,
    )
    .set_in_error();
    StoreError::Unavailable(Box::new(StatementTimedOut(timeout)))
}

/// A statement ran longer than the store's bound.
#[derive(Debug, thiserror::Error)]
#[error("the statement did not finish within {0:?}")]
struct StatementTimedOut(Duration);

/// What to do after a statement failed on `conn`: the error to report, or `None` when the
/// connection died under it and the statement may run again on another (`allowed` says how
/// many times in all).
///
/// A server ending the session (restart, `pg_terminate_backend`) answers the statement in flight
/// with an error before it closes; that error alone cannot tell a lost connection from a failed
/// statement, so a one-round-trip probe settles it.
pub(in crate::postgres::store) async fn after_failure(
    err: diesel::result::Error,
    conn: &mut AsyncPgConnection,
    retries: &mut Option<u32>,
    allowed: impl FnOnce() -> u32,
) -> Option<StoreError> {
    if may_be_lost(&err) && !conn.is_broken() {
        let _ = diesel::sql_query("SELECT 1").execute(conn).await;
    }
    if !conn.is_broken() {
        return Some(from_diesel(err));
    }
    let left = retries.get_or_insert_with(allowed);
    if *left == 0 {
        return Some(StoreError::Unavailable(described(err)));
    }
    *left -= 1;
    None
}

/// Whether `err` may mean the connection is gone: not a constraint or data error, which the
/// server reports on a healthy connection.
fn may_be_lost(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        err,
        Error::DatabaseError(
            DatabaseErrorKind::Unknown
                | DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// Whether a statement may run again after its connection died under it.
#[derive(Clone, Copy)]
pub(super) enum Retry {
    /// Running it twice gives the same result as running it once (a read, or a cleanup batch
    /// that deletes only dead rows): repeat it on another connection.
    Idempotent,
    /// Its result depends on whether an earlier run was applied (an insert, a rotation, a delete
    /// that reports whether it found the row): never repeated, so the caller learns the outcome
    /// is unknown (`Unavailable`) rather than getting a misleading second answer.
    Never,
}
