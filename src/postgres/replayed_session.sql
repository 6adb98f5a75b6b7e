-- A refresh token ($1) that is no session's current one: did a live session retire it? Then the
-- session as its last rotation left it, that rotation's secret, and whether $1 is the token that
-- rotation replaced and the rotation is younger than the grace window ($2 seconds): only then is
-- it a replay to answer; any other retired token is a reuse. Runs after refresh_session.sql
-- matched nothing, as a statement of its own so that it sees a rotation committed while that one
-- waited.
SELECT s.id AS session_id,
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
       u.updated_at,
       s.rotation_secret,
       COALESCE(s.previous_refresh_token = $1
                AND s.rotated_at > NOW() - $2 * INTERVAL '1 second', FALSE) AS within_grace
FROM retired_refresh_tokens AS r
JOIN sessions AS s ON s.id = r.session_id
JOIN users AS u ON u.id = s.user_id
WHERE r.token = $1
  AND s.refresh_expires_at > NOW();
