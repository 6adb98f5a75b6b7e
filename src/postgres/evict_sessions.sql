-- A user's ($1) sessions beyond the $2 most recently used (last refresh, else sign-in), deleted:
-- what a cap on sessions per user removes after a sign-in. Walks the index on user_id.
DELETE FROM sessions
WHERE id IN (
  SELECT id
  FROM sessions
  WHERE user_id = $1
  ORDER BY COALESCE(rotated_at, created_at) DESC NULLS LAST, id
  OFFSET $2
);
