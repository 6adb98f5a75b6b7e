-- Rotate a session in one statement: only a row whose refresh token is $1, still valid and within
-- its absolute lifetime matches. Concurrent callers with the same token queue on the row lock;
-- once the first has replaced the token, the others re-check the WHERE clause against the new row
-- and match nothing (they then look for $1 as the previous token: replayed_session.sql).
--
-- The cap is the session's absolute expiry or, for a session adopted from the Go library (NULL),
-- its creation plus $7 seconds ($7 NULL: no cap); LEAST ignores a NULL cap.
UPDATE sessions AS s
SET token = $2,
    refresh_token = $3,
    expires_at = LEAST($4, COALESCE(s.absolute_expires_at,
                                    COALESCE(s.created_at, NOW()) + $7 * INTERVAL '1 second')),
    refresh_expires_at = LEAST($5, COALESCE(s.absolute_expires_at,
                                            COALESCE(s.created_at, NOW()) + $7 * INTERVAL '1 second')),
    absolute_expires_at = COALESCE(s.absolute_expires_at,
                                   COALESCE(s.created_at, NOW()) + $7 * INTERVAL '1 second'),
    -- What a retry of this rotation needs: the replaced token's digest, when, and the secret;
    -- the replaced access token's, which a racing sign-out may still present; and the family's
    -- digest ($8), which recognises every token the session ever issued.
    previous_refresh_token = $1,
    previous_token = s.token,
    refresh_family = $8,
    rotated_at = NOW(),
    rotation_secret = $6
FROM users AS u
WHERE s.refresh_token = $1
  AND s.refresh_expires_at > NOW()
  AND COALESCE(s.absolute_expires_at,
               COALESCE(s.created_at, NOW()) + $7 * INTERVAL '1 second',
               'infinity') > NOW()
  AND u.id = s.user_id
-- The rotated session and its user; the session's columns renamed so that the user's keep theirs.
RETURNING s.id AS session_id,
          s.token,
          s.refresh_token,
          s.expires_at,
          s.refresh_expires_at,
          s.created_at AS session_created_at,
          s.rotated_at,
          s.absolute_expires_at,
          s.persistent,
          s.user_agent,
          s.ip_address,
          u.id,
          u.email,
          u.name,
          u.password_hash,
          u.email_verified,
          u.created_at,
          u.updated_at;
