-- The second factor: authenticator apps' secrets (sealed by the engine), recovery codes (as
-- digests), the sign-ins waiting for a code, and the browsers trusted to skip it. Additive: new
-- tables, each row going with its user.

-- One TOTP secret per user: AES-256-GCM ciphertext (nonce first) under the key `key_id`;
-- pending until `confirmed_at`; `last_used_step` makes each code usable once (RFC 6238 5.2).
CREATE TABLE IF NOT EXISTS totp_secrets (
  user_id VARCHAR(255) PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  key_id VARCHAR(64) NOT NULL,
  ciphertext BYTEA NOT NULL,
  confirmed_at TIMESTAMP WITH TIME ZONE,
  last_used_step BIGINT,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
-- The sweep finds enrolments left pending.
CREATE INDEX IF NOT EXISTS idx_totp_secrets_pending_created_at
  ON totp_secrets(created_at) WHERE confirmed_at IS NULL;

-- Recovery codes by the SHA-256 of the code; consumed by DELETE ... RETURNING.
CREATE TABLE IF NOT EXISTS recovery_codes (
  user_id VARCHAR(255) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_digest VARCHAR(64) NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  PRIMARY KEY (user_id, code_digest)
);

-- A sign-in whose password was right, waiting for its code: by the digest of the challenge
-- cookie's token, single use, ended after `failures` reaches the engine's limit.
CREATE TABLE IF NOT EXISTS two_factor_challenges (
  challenge_digest VARCHAR(64) PRIMARY KEY,
  user_id VARCHAR(255) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  persistent BOOLEAN NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_two_factor_challenges_user_id ON two_factor_challenges(user_id);
CREATE INDEX IF NOT EXISTS idx_two_factor_challenges_expires_at
  ON two_factor_challenges(expires_at);

-- Browsers that skip the code until `expires_at`, by the digest of their cookie's token.
CREATE TABLE IF NOT EXISTS trusted_devices (
  device_digest VARCHAR(64) PRIMARY KEY,
  user_id VARCHAR(255) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_trusted_devices_user_id ON trusted_devices(user_id);
CREATE INDEX IF NOT EXISTS idx_trusted_devices_expires_at ON trusted_devices(expires_at);

-- One-time tokens gain a purpose: the link mailed to the owner when a second factor is added,
-- which removes it (and ends every session) for an owner who did not add it.
ALTER TABLE one_time_tokens DROP CONSTRAINT IF EXISTS one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'reset_password', 'change_email', 'cancel_email_change',
                       'remove_two_factor'));
