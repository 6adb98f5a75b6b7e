-- One batch of the rotation secrets' sweep: a secret is needed only to answer a replay of the
-- token its rotation replaced within the grace window ($1 seconds); after it, a database read and
-- an old leaked refresh token must give nothing. Oldest rotation first, along the partial index
-- idx_sessions_rotation_secret; $2 rows at most. SKIP LOCKED leaves a session being rotated to
-- its rotation (which writes a secret of its own) and lets instances sweep at the same moment.
WITH spent AS (
  SELECT id
  FROM sessions
  WHERE rotation_secret IS NOT NULL
    AND rotated_at < NOW() - $1 * INTERVAL '1 second'
  ORDER BY rotated_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
UPDATE sessions
SET rotation_secret = NULL
WHERE id IN (SELECT id FROM spent);
