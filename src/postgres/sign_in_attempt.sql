-- A sign-in attempt of an untrusted client for the email digest $1, counted as a failure before
-- the password is checked (a correct one clears the count), unless the count throttles it.
-- Counting first, in one atomic statement, is what stops concurrent attempts from all slipping
-- through one free turn.
-- $2: failures allowed without delay; $3, $4: the first delay and the longest, in seconds (each
-- failure past $2 doubles it); $5: failures that lock (NULL: never); $6: seconds after the last
-- failure when an unlocked count is forgotten; $7: seconds a lock lasts.
-- A row's count is forgotten at `forget_at`: a lock's end, or a day after an unlocked count's last
-- failure. A lock written by a version whose locks did not end (no `forget_at`) ends $7 after its
-- last failure.
-- Committed asynchronously, as a rate-limit check (rate_limit_hit.sql): a crash may lose the last
-- fraction of a second of counts, never a lock reached before.
WITH attempt AS (
  INSERT INTO sign_in_failures AS f (email_digest, failures, last_failed_at, forget_at)
  SELECT $1, 1, now(),
         now() + CASE WHEN 1 >= $5 THEN $7 ELSE $6 END * INTERVAL '1 second'
  FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
  ON CONFLICT (email_digest) DO UPDATE SET
    -- A forgotten count starts again from zero.
    failures = CASE WHEN coalesce(f.forget_at, f.last_failed_at + $7 * INTERVAL '1 second')
                         <= now()
                    THEN 0 ELSE f.failures END + 1,
    last_failed_at = now(),
    -- The failure that reaches the lock keeps the row for the lock's period.
    forget_at = now()
      + CASE WHEN CASE WHEN coalesce(f.forget_at, f.last_failed_at + $7 * INTERVAL '1 second')
                            <= now()
                       THEN 0 ELSE f.failures END + 1 >= $5
             THEN $7 ELSE $6 END * INTERVAL '1 second'
  -- Only when the attempt may go ahead: forgotten, or not locked and past the delay the count
  -- imposes.
  WHERE coalesce(f.forget_at, f.last_failed_at + $7 * INTERVAL '1 second') <= now()
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
