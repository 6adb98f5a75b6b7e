-- A sign-in attempt for the email digest $1, counted as a failure before the password is checked
-- (a correct one clears the count), unless the count throttles it. Counting first, in one atomic
-- statement, is what stops concurrent attempts from all slipping through one free turn.
-- $2: failures allowed without delay; $3, $4: the first delay and the longest, in seconds (each
-- failure past $2 doubles it); $5: failures that lock (NULL: never); $6: seconds after the last
-- failure when an unlocked count is forgotten.
-- Committed asynchronously, as a rate-limit check (rate_limit_hit.sql): a crash may lose the last
-- fraction of a second of counts, never a lock reached before.
WITH attempt AS (
  INSERT INTO sign_in_failures AS f (email_digest, failures, last_failed_at, forget_at)
  SELECT $1, 1, now(), CASE WHEN 1 >= $5 THEN NULL ELSE now() + $6 * INTERVAL '1 second' END
  FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
  ON CONFLICT (email_digest) DO UPDATE SET
    -- A forgotten count starts again from zero.
    failures = CASE WHEN f.forget_at <= now() THEN 0 ELSE f.failures END + 1,
    last_failed_at = now(),
    -- The failure that reaches the lock keeps the row until it is unlocked.
    forget_at = CASE WHEN CASE WHEN f.forget_at <= now() THEN 0 ELSE f.failures END + 1 >= $5
                     THEN NULL
                     ELSE now() + $6 * INTERVAL '1 second' END
  -- Only when the attempt may go ahead: not locked, and past the delay the count imposes.
  WHERE f.forget_at <= now()
     OR (($5 IS NULL OR f.failures < $5)
         AND (f.failures < $2
              OR f.last_failed_at
                 + LEAST($3 * power(2.0::float8, LEAST(f.failures - $2, 60)), $4)
                   * INTERVAL '1 second' <= now()))
  RETURNING failures
)
SELECT TRUE AS allowed, failures, FALSE AS locked, 0::float8 AS retry_after_secs FROM attempt
UNION ALL
-- Refused: the row as this statement's snapshot sees it says why, and for how long.
SELECT FALSE, f.failures, ($5 IS NOT NULL AND f.failures >= $5),
       GREATEST(EXTRACT(EPOCH FROM
                  f.last_failed_at
                  + LEAST($3 * power(2.0::float8, LEAST(f.failures - $2, 60)), $4)
                    * INTERVAL '1 second'
                  - now()), 0)::float8
FROM sign_in_failures f
WHERE f.email_digest = $1 AND NOT EXISTS (SELECT 1 FROM attempt);
