-- A session ($1 …) inserted only while its user ($2) still has the password hash ($12) the
-- sign-in verified: one statement, so that no reset or change of password can commit between
-- the check and the insert.
WITH verified AS (
  -- The user's row, locked against a concurrent change of its hash until the insert commits:
  -- a reset that updated it first makes this wait, then see the new hash and find nothing; one
  -- that comes after waits for the insert, whose session it then deletes.
  SELECT id
  FROM users
  WHERE id = $2 AND password_hash = $12
  FOR SHARE
)
INSERT INTO sessions (
  id, user_id, token, refresh_token, expires_at, refresh_expires_at, created_at,
  absolute_expires_at, persistent, user_agent, ip_address
)
SELECT $1, verified.id, $3, $4, $5, $6, $7, $8, $9, $10, $11
FROM verified
