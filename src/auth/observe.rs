//! What the engine counts, through the `metrics` facade: the label values of its metrics (their
//! names are in [`crate::telemetry`]) and one small function per thing counted, so that a
//! count in an operation is one line.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use super::AuthError;
use crate::limits::LimitedRoute;
use crate::telemetry::{
    CLEANUP_DURATION_SECONDS, CLEANUP_ROWS_TOTAL, HASH_QUEUE_DEPTH, HASH_QUEUE_REFUSALS_TOTAL,
    HASH_QUEUE_WAIT_SECONDS, MAIL_TOTAL, RATE_LIMIT_REFUSALS_TOTAL, REFRESHES_TOTAL,
    SESSIONS_REVOKED_TOTAL, SIGN_INS_TOTAL, SIGN_UPS_TOTAL, THROTTLE_REFUSALS_TOTAL,
    TWO_FACTOR_VERIFICATIONS_TOTAL,
};

/// The `outcome` of a failed operation: the error's kind, as the HTTP layer's codes name it.
/// Every variant gets one, so that a new one must choose.
fn failure(err: &AuthError) -> &'static str {
    match err {
        AuthError::InvalidInput { .. } => "invalid_input",
        AuthError::EmailTaken => "email_taken",
        AuthError::InvalidCredentials => "invalid_credentials",
        AuthError::InvalidSession => "invalid_session",
        AuthError::InvalidToken => "invalid_token",
        AuthError::EmailNotVerified => "email_not_verified",
        AuthError::ReauthenticationRequired => "reauthentication_required",
        AuthError::TooManyRequests { .. } => "too_many_requests",
        AuthError::AccountLocked => "account_locked",
        AuthError::Busy => "busy",
        AuthError::Unavailable(_) => "unavailable",
        AuthError::Unsupported(_) => "unsupported",
        AuthError::TwoFactorRequired => "two_factor_required",
        AuthError::InvalidChallenge => "invalid_challenge",
        AuthError::InvalidCode => "invalid_code",
        AuthError::TwoFactorNotEnabled => "two_factor_not_enabled",
        AuthError::TwoFactorAlreadyEnabled => "two_factor_already_enabled",
        AuthError::NoEncryptionKey => "no_encryption_key",
        AuthError::Internal(_) => "internal",
    }
}

/// Counts a sign-in by its outcome; `Ok(true)`: the password was right and the session waits
/// for the second factor.
pub(super) fn sign_in(result: Result<bool, &AuthError>) {
    let outcome = match result {
        Ok(false) => "success",
        Ok(true) => "two_factor_required",
        Err(err) => failure(err),
    };
    counter!(SIGN_INS_TOTAL, "outcome" => outcome).increment(1);
}

/// Counts an answer to a second-factor challenge: `totp` or `recovery_code` when it opened a
/// session (by what answered it), else the error.
pub(super) fn two_factor(result: &Result<&'static str, &AuthError>) {
    let outcome = match result {
        Ok(kind) => kind,
        Err(err) => failure(err),
    };
    counter!(TWO_FACTOR_VERIFICATIONS_TOTAL, "outcome" => outcome).increment(1);
}

/// Counts a sign-up by its outcome; `verification_sent` when no session was opened because the
/// address must be verified first.
pub(super) fn sign_up(result: Result<bool, &AuthError>) {
    let outcome = match result {
        Ok(true) => "success",
        Ok(false) => "verification_sent",
        Err(err) => failure(err),
    };
    counter!(SIGN_UPS_TOTAL, "outcome" => outcome).increment(1);
}

/// The verdict of a refresh.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refresh {
    Rotated,
    GraceReplay,
    ReuseDetected,
    Invalid,
}

pub(super) fn refresh(verdict: Refresh) {
    let outcome = match verdict {
        Refresh::Rotated => "rotated",
        Refresh::GraceReplay => "grace_replay",
        Refresh::ReuseDetected => "reuse_detected",
        Refresh::Invalid => "invalid",
    };
    counter!(REFRESHES_TOTAL, "outcome" => outcome).increment(1);
}

/// Why sessions ended before their time.
#[derive(Debug, Clone, Copy)]
pub(super) enum Revoked {
    SignOut,
    One,
    Others,
    Everywhere,
    Evicted,
    ReuseDetected,
}

/// Counts `count` sessions ended for `reason`.
pub(super) fn revoked(reason: Revoked, count: u64) {
    if count == 0 {
        return;
    }
    let reason = match reason {
        Revoked::SignOut => "sign_out",
        Revoked::One => "revoked",
        Revoked::Others => "others",
        Revoked::Everywhere => "everywhere",
        Revoked::Evicted => "evicted",
        Revoked::ReuseDetected => "reuse_detected",
    };
    counter!(SESSIONS_REVOKED_TOTAL, "reason" => reason).increment(count);
}

/// The `limit` label of a rate limit per client address.
pub(super) fn route_limit(route: LimitedRoute) -> &'static str {
    match route {
        LimitedRoute::SignIn => "sign_in",
        LimitedRoute::SignUp => "sign_up",
        LimitedRoute::Refresh => "refresh",
        LimitedRoute::Mail => "mail",
        LimitedRoute::Token => "token",
    }
}

/// Counts a request refused by the rate limit `limit`.
pub(super) fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMIT_REFUSALS_TOTAL, "limit" => limit).increment(1);
}

/// Why the failed-sign-in throttle refused a sign-in.
#[derive(Debug, Clone, Copy)]
pub(super) enum Throttled {
    BackOff,
    DeviceBackOff,
    Locked,
}

pub(super) fn throttled(reason: Throttled) {
    let reason = match reason {
        Throttled::BackOff => "back_off",
        Throttled::DeviceBackOff => "device_back_off",
        Throttled::Locked => "locked",
    };
    counter!(THROTTLE_REFUSALS_TOTAL, "reason" => reason).increment(1);
}

/// Counts an operation the full hashing queue refused.
pub(super) fn hashing_refused() {
    counter!(HASH_QUEUE_REFUSALS_TOTAL).increment(1);
}

/// Records the jobs waiting for a hashing thread now.
pub(super) fn hash_queue_depth(jobs: usize) {
    gauge!(HASH_QUEUE_DEPTH).set(jobs as f64);
}

/// Records how long a hashing job waited for its thread.
pub(super) fn hash_queue_wait(waited: Duration) {
    histogram!(HASH_QUEUE_WAIT_SECONDS).record(waited);
}

/// What became of a mail.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mailed {
    Sent,
    Failed,
    SkippedOverLimit,
}

pub(super) fn mail(outcome: Mailed) {
    let outcome = match outcome {
        Mailed::Sent => "sent",
        Mailed::Failed => "failed",
        Mailed::SkippedOverLimit => "skipped_over_limit",
    };
    counter!(MAIL_TOTAL, "outcome" => outcome).increment(1);
}

/// Counts `rows` deleted from `table` by a sweep.
pub(super) fn cleanup_rows(table: &'static str, rows: u64) {
    counter!(CLEANUP_ROWS_TOTAL, "table" => table).increment(rows);
}

/// Records a sweep's duration and outcome (`ok`, `failed`, `timed_out`, `panicked`).
pub(super) fn cleanup_finished(outcome: &'static str, took: Duration) {
    histogram!(CLEANUP_DURATION_SECONDS, "outcome" => outcome).record(took);
}
