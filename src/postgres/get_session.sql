-- The session of an access-token digest ($1), with its user, while the access token is valid:
-- one round trip, one lookup in the unique index on token. The session's columns are renamed
-- so that the user's keep their own names (the row type reads both), as in refresh_session.sql.
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
       u.updated_at
FROM sessions AS s
JOIN users AS u ON u.id = s.user_id
WHERE s.token = $1
  AND s.expires_at > NOW();
