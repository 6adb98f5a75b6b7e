-- One batch of the counters' cleanup: rate-limit windows that have ended, and the failure counts
-- of emails and of devices past the time they are forgotten (for an email's lock, its end).
-- Bounded and SKIP LOCKED, as the sessions' cleanup.
WITH ended AS (
  SELECT key FROM rate_limits
  WHERE window_ends_at < now()
  ORDER BY window_ends_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), forgotten AS (
  SELECT email_digest FROM sign_in_failures
  WHERE forget_at < now()
  ORDER BY forget_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), forgotten_devices AS (
  SELECT device_digest FROM sign_in_device_failures
  WHERE forget_at < now()
  ORDER BY forget_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), gone_counters AS (
  DELETE FROM rate_limits WHERE key IN (SELECT key FROM ended) RETURNING 1
), gone_failures AS (
  DELETE FROM sign_in_failures WHERE email_digest IN (SELECT email_digest FROM forgotten)
  RETURNING 1
), gone_devices AS (
  DELETE FROM sign_in_device_failures
  WHERE device_digest IN (SELECT device_digest FROM forgotten_devices)
  RETURNING 1
)
-- The three counts: the caller adds them up, and goes on while any filled its batch.
SELECT (SELECT count(*) FROM gone_counters) AS counters,
       (SELECT count(*) FROM gone_failures) AS failures,
       (SELECT count(*) FROM gone_devices) AS devices;
