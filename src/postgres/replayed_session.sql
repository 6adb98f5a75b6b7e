-- A refresh token ($1, of the family $3) that is no live session's current one: is it one the
-- session issued before? Then the session as its last rotation left it, that rotation's secret,
-- whether $1 is the token that rotation replaced, and whether it is moreover within the grace
-- window ($2 seconds): only then is it a replay to answer. Any other token of the family is a
-- reuse. Runs after refresh_session.sql matched nothing, as a statement of its own so that it
-- sees a rotation committed while that one waited.
--
-- A session whose first rotation ran before its family was recorded is still found by the token
-- it replaced last.
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
       COALESCE(s.previous_refresh_token = $1, FALSE) AS replaced_last,
       COALESCE(s.previous_refresh_token = $1
                AND s.rotated_at > NOW() - $2 * INTERVAL '1 second', FALSE) AS within_grace
FROM sessions AS s
JOIN users AS u ON u.id = s.user_id
WHERE (s.refresh_family = $3 OR s.previous_refresh_token = $1)
  AND s.refresh_token <> $1
  AND s.refresh_expires_at > NOW();
