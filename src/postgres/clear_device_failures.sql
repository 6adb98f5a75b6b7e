-- A correct password from a trusted device: that device's failures go.
-- Committed asynchronously, as the count was (sign_in_device_attempt.sql).
DELETE FROM sign_in_device_failures
USING (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
WHERE device_digest = $1;
