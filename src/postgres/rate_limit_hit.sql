-- One request against the counter $1, in fixed windows of $2 seconds that allow $3 requests.
-- A counter whose window has ended starts a new one with this request; otherwise the request is
-- added (the count stops one past the limit, so it cannot overflow however long a flood lasts).
-- One atomic statement: concurrent requests from any instance queue on the row and each sees the
-- count its own request made.
-- Committed asynchronously (set_config with is_local: for this statement's transaction only): a
-- crash may lose the last fraction of a second of counts, and the check does not wait for the WAL
-- to reach the disk, which would cost it several milliseconds.
INSERT INTO rate_limits AS counter (key, hits, window_ends_at)
SELECT $1, 1, now() + $2 * INTERVAL '1 second'
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
ON CONFLICT (key) DO UPDATE SET
  hits = CASE WHEN counter.window_ends_at <= now() THEN 1
              ELSE LEAST(counter.hits + 1, $3 + 1) END,
  window_ends_at = CASE WHEN counter.window_ends_at <= now() THEN now() + $2 * INTERVAL '1 second'
                        ELSE counter.window_ends_at END
-- The count with this request, and the seconds until the window ends.
RETURNING hits, EXTRACT(EPOCH FROM window_ends_at - now())::float8 AS resets_in_secs;
