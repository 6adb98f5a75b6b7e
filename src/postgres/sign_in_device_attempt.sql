-- A sign-in attempt from a trusted device (a valid device cookie), on the device's own count,
-- keyed by the digest $1 of the cookie's nonce: no other client's failures touch it. Counted as a
-- failure before the password is checked, unless the count throttles it, as sign_in_attempt.sql
-- counts an email's untrusted clients, with the same delays.
-- $2: failures allowed without delay; $3, $4: the first delay and the longest, in seconds; $5:
-- failures after which the device is no longer trusted (refused as locked, and not counted: the
-- engine counts the attempt as untrusted instead); $6: seconds after the last failure when the
-- count is forgotten, and a device no longer trusted is trusted again.
-- Committed asynchronously, as the email's count.
WITH attempt AS (
  INSERT INTO sign_in_device_failures AS f (device_digest, failures, last_failed_at, forget_at)
  SELECT $1, 1, now(), now() + $6 * INTERVAL '1 second'
  FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
  ON CONFLICT (device_digest) DO UPDATE SET
    -- A forgotten count starts again from zero.
    failures = CASE WHEN f.forget_at <= now() THEN 0 ELSE f.failures END + 1,
    last_failed_at = now(),
    forget_at = now() + $6 * INTERVAL '1 second'
  -- Only when the attempt may go ahead: forgotten, or still trusted and past the delay.
  WHERE f.forget_at <= now()
     OR (f.failures < $5
         AND (f.failures < $2
              OR f.last_failed_at
                 + LEAST($3 * power(2.0::float8, LEAST(f.failures - $2, 60)), $4)
                   * INTERVAL '1 second' <= now()))
  RETURNING failures
)
SELECT TRUE AS allowed, failures, FALSE AS locked, 0::float8 AS retry_after_secs FROM attempt
UNION ALL
-- Refused: no longer trusted, or too soon after the last failure (and for how long).
SELECT FALSE, f.failures, f.failures >= $5,
       GREATEST(EXTRACT(EPOCH FROM
                  f.last_failed_at
                  + LEAST($3 * power(2.0::float8, LEAST(f.failures - $2, 60)), $4)
                    * INTERVAL '1 second'
                  - now()), 0)::float8
FROM sign_in_device_failures f
WHERE f.device_digest = $1 AND NOT EXISTS (SELECT 1 FROM attempt);
