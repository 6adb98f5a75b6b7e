-- One batch of expired one-time tokens ($1 at most), oldest first, along the expires_at index;
-- rows another sweep holds are skipped rather than waited for.
WITH expired AS (
  SELECT token
  FROM one_time_tokens
  WHERE expires_at < NOW()
  ORDER BY expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
DELETE FROM one_time_tokens
WHERE token IN (SELECT token FROM expired);
