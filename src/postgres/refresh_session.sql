-- Rotate a session in one statement: only a row whose refresh token is $1 and still valid
-- matches. Concurrent callers with the same token queue on the row lock; once the first has
-- replaced the token, the others re-check the WHERE clause against the new row and match nothing.
UPDATE sessions AS s
SET token = $2,
    refresh_token = $3,
    expires_at = $4,
    refresh_expires_at = $5
FROM users AS u
WHERE s.refresh_token = $1
  AND s.refresh_expires_at > NOW()
  AND u.id = s.user_id
-- The rotated session and its user; the session's columns renamed so that the user's keep theirs.
RETURNING s.id AS session_id,
          s.token,
          s.refresh_token,
          s.expires_at,
          s.refresh_expires_at,
          s.created_at AS session_created_at,
          u.id,
          u.email,
          u.name,
          u.password_hash,
          u.email_verified,
          u.created_at,
          u.updated_at;
