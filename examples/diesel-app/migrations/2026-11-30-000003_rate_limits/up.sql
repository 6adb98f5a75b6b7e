-- Abuse resistance (issue 14): counters every instance of a service shares. Additive: new tables
-- only, so a database made by the Go library keeps its rows.

-- Requests per key (a route and a client address, or a route and an email digest) in fixed
-- windows: one atomic upsert per request counts it and says whether the window is full.
CREATE TABLE IF NOT EXISTS rate_limits (
  key VARCHAR(255) PRIMARY KEY,
  hits INTEGER NOT NULL,
  window_ends_at TIMESTAMP WITH TIME ZONE NOT NULL
);
-- The cleanup sweep deletes the counters whose window has ended.
CREATE INDEX IF NOT EXISTS idx_rate_limits_window_ends_at ON rate_limits(window_ends_at);

-- Consecutive failed sign-ins per submitted email, whether or not it has an account, keyed by
-- the SHA-256 of the normalised address. `forget_at` is NULL once the count reaches the lock:
-- such a row stays until the account is unlocked.
CREATE TABLE IF NOT EXISTS sign_in_failures (
  email_digest VARCHAR(64) PRIMARY KEY,
  failures INTEGER NOT NULL,
  last_failed_at TIMESTAMP WITH TIME ZONE NOT NULL,
  forget_at TIMESTAMP WITH TIME ZONE
);
-- The cleanup sweep deletes the counts nobody added to for a day.
CREATE INDEX IF NOT EXISTS idx_sign_in_failures_forget_at ON sign_in_failures(forget_at);
