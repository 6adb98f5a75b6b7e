-- Device cookies: the consecutive failed sign-ins of each trusted device (a browser that signed in
-- to the email before), counted apart from the email's untrusted count. Additive: a new table.
-- Keyed by the SHA-256 of the device cookie's random nonce; the row is forgotten at `forget_at`,
-- a day after its last failure, also when the device has failed too often to be trusted.
CREATE TABLE IF NOT EXISTS sign_in_device_failures (
  device_digest VARCHAR(64) PRIMARY KEY,
  failures INTEGER NOT NULL,
  last_failed_at TIMESTAMP WITH TIME ZONE NOT NULL,
  forget_at TIMESTAMP WITH TIME ZONE NOT NULL
);
-- The cleanup sweep deletes the counts nobody added to for a day.
CREATE INDEX IF NOT EXISTS idx_sign_in_device_failures_forget_at
  ON sign_in_device_failures(forget_at);

-- Locks of untrusted clients now end: the locks made before (no `forget_at`) end a day after
-- their last failure, the default period, so that the sweep can find them. A lock an older
-- instance writes during a rolling upgrade ends the same way (sign_in_attempt.sql reads a
-- missing end as that).
UPDATE sign_in_failures SET forget_at = last_failed_at + interval '24 hours'
WHERE forget_at IS NULL;
