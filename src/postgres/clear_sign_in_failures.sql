-- A correct password, an unlock or a password reset: the email's failures go, a lock with them.
-- Committed asynchronously, as the count was (sign_in_attempt.sql).
DELETE FROM sign_in_failures
USING (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
WHERE email_digest = $1;
