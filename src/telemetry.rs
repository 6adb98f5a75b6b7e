//! The names of what the crate reports: its metrics (through the [`metrics`] facade, to whatever
//! recorder the application installs) and its spans (through `tracing`). One place, so that the
//! code, the README's "Metrics" table and the tests agree.
//!
//! Every metric is named `authingo_…` with its unit in the name (`_total` for counters,
//! `_seconds` for durations); labels take a few fixed values each, never a user id, an email,
//! an address or a token.
//!
//! Every public operation of [`Auth`](crate::Auth) runs in a span named after the method
//! (`sign_in`, `refresh`, …) with the fields [`USER_ID`] and [`SESSION_ID`] recorded once
//! known; each store operation of [`PgStore`](crate::postgres::PgStore) runs in a child span
//! named [`STORE_SPAN`] whose field [`STORE_OP`] names the operation. No span or event carries
//! a password, a hash, a token, a token's digest, a cookie or an email.

/// Counter: sign-ins, by `outcome` (`success`, `two_factor_required`, or the error: `invalid_credentials`,
/// `too_many_requests`, `account_locked`, `busy`, `invalid_input`, `unavailable`, …).
pub const SIGN_INS_TOTAL: &str = "authingo_sign_ins_total";

/// Counter: answers to a sign-in's second-factor challenge, by `outcome`: `totp`,
/// `recovery_code` (a session opened), or the error (`invalid_code`, `invalid_challenge`,
/// `too_many_requests`, `account_locked`, …).
pub const TWO_FACTOR_VERIFICATIONS_TOTAL: &str = "authingo_two_factor_verifications_total";

/// Counter: sign-ups, by `outcome` (`success`, `verification_sent`, or the error:
/// `email_taken`, `invalid_input`, `too_many_requests`, `busy`, `unavailable`, …).
pub const SIGN_UPS_TOTAL: &str = "authingo_sign_ups_total";

/// Counter: refreshes that reached a verdict, by `outcome`: `rotated`, `grace_replay` (the
/// replaced token again within the grace window), `reuse_detected` (a replaced token after it:
/// the session was revoked) or `invalid` (unknown, expired or malformed).
pub const REFRESHES_TOTAL: &str = "authingo_refreshes_total";

/// Counter: sessions ended before their time, by `reason`: `sign_out`, `revoked` (one, by its
/// user), `others` (the user's other sessions), `everywhere` (all of a user's: sign out
/// everywhere, or admin tooling), `evicted` (over the cap of sessions per user),
/// `reuse_detected` (a replayed refresh token).
pub const SESSIONS_REVOKED_TOTAL: &str = "authingo_sessions_revoked_total";

/// Counter: requests refused by a rate limit, by `limit`: `sign_in`, `sign_up`, `refresh`,
/// `mail`, `token` (per client address), `mail_per_email`, `notices_per_email`,
/// `mail_per_account`.
pub const RATE_LIMIT_REFUSALS_TOTAL: &str = "authingo_rate_limit_refusals_total";

/// Counter: sign-ins refused by the failed-sign-in throttle before any password check, by
/// `reason`: `back_off` (the email's untrusted clients), `device_back_off` (a trusted device),
/// `locked`.
pub const THROTTLE_REFUSALS_TOTAL: &str = "authingo_sign_in_throttle_refusals_total";

/// Counter: operations refused because the password hashing queue was full (`busy`).
pub const HASH_QUEUE_REFUSALS_TOTAL: &str = "authingo_hash_queue_refusals_total";

/// Gauge: password hashing jobs waiting for a hashing thread (sampled as jobs are queued and
/// as they finish).
pub const HASH_QUEUE_DEPTH: &str = "authingo_hash_queue_depth";

/// Histogram: how long a password hashing job waited for a hashing thread, in seconds.
pub const HASH_QUEUE_WAIT_SECONDS: &str = "authingo_hash_queue_wait_seconds";

/// Histogram: how long a store operation of `PgStore` took, connection checkout and retries
/// included, in seconds, by `op` (the `Store` method: `get_session`, `refresh_session`, …).
pub const STORE_OPERATION_SECONDS: &str = "authingo_store_operation_duration_seconds";

/// Gauge: connections of the pool checked out, sampled at each checkout (before it).
pub const POOL_CONNECTIONS_IN_USE: &str = "authingo_pool_connections_in_use";

/// Gauge: connections the pool holds open, in use or idle, sampled at each checkout.
pub const POOL_CONNECTIONS_OPEN: &str = "authingo_pool_connections_open";

/// Gauge: callers waiting for a connection of the pool now.
pub const POOL_CHECKOUTS_WAITING: &str = "authingo_pool_checkouts_waiting";

/// Counter: rows the cleanup loop deleted, by `table`: `sessions`, `one_time_tokens`,
/// `rate_limits` (the abuse counters' tables).
pub const CLEANUP_ROWS_TOTAL: &str = "authingo_cleanup_rows_total";

/// Histogram: how long a sweep of the cleanup loop took, in seconds, by `outcome`: `ok`,
/// `failed`, `timed_out`, `panicked`.
pub const CLEANUP_DURATION_SECONDS: &str = "authingo_cleanup_duration_seconds";

/// Counter: mail, by `outcome`: `sent`, `failed` (the mailer refused it), `skipped_over_limit`
/// (not sent: over a mail limit, off the request path).
pub const MAIL_TOTAL: &str = "authingo_mail_messages_total";

/// Every metric above, for a check that each is documented.
pub const METRICS: &[&str] = &[
    SIGN_INS_TOTAL,
    TWO_FACTOR_VERIFICATIONS_TOTAL,
    SIGN_UPS_TOTAL,
    REFRESHES_TOTAL,
    SESSIONS_REVOKED_TOTAL,
    RATE_LIMIT_REFUSALS_TOTAL,
    THROTTLE_REFUSALS_TOTAL,
    HASH_QUEUE_REFUSALS_TOTAL,
    HASH_QUEUE_DEPTH,
    HASH_QUEUE_WAIT_SECONDS,
    STORE_OPERATION_SECONDS,
    POOL_CONNECTIONS_IN_USE,
    POOL_CONNECTIONS_OPEN,
    POOL_CHECKOUTS_WAITING,
    CLEANUP_ROWS_TOTAL,
    CLEANUP_DURATION_SECONDS,
    MAIL_TOTAL,
];

/// The name of the span of each store operation, a child of the engine operation's span.
pub const STORE_SPAN: &str = "authingo.store";

/// The field of [`STORE_SPAN`] that names the store operation (the `Store` method).
pub const STORE_OP: &str = "op";

/// The field of the engine's spans that holds the user's id, once known.
pub const USER_ID: &str = "user.id";

/// The field of the engine's spans that holds the session's id, once known.
pub const SESSION_ID: &str = "session.id";

#[cfg(test)]
mod tests {
    use super::METRICS;

    /// The README's "Metrics" table has a row for each metric, and none for another.
    #[test]
    fn the_readme_table_lists_every_metric_and_no_other() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("\n## Metrics\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a \"Metrics\" section in the README");
        let rows: Vec<&str> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
            .collect();
        let mut listed = rows.clone();
        listed.sort_unstable();
        let mut metrics = METRICS.to_vec();
        metrics.sort_unstable();
        assert_eq!(listed, metrics);
    }
}
