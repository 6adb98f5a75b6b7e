-- A sign-out that raced a refresh: the session whose last rotation replaced the access token
-- whose digest is $1, if that rotation is younger than the grace window ($2 seconds). After the
-- window the replaced access token finds nothing.
DELETE FROM sessions
WHERE previous_token = $1
  AND rotated_at > NOW() - $2 * INTERVAL '1 second';
