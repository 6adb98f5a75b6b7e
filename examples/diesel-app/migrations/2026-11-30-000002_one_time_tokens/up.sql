-- One-time tokens for email verification, password reset and a change of email. The token
-- itself exists only in the mail: the row keeps its SHA-256 digest. Consuming one is a single
-- DELETE … RETURNING, so of concurrent confirmations exactly one wins.
CREATE TABLE IF NOT EXISTS one_time_tokens (
    token VARCHAR(64) PRIMARY KEY,
    user_id VARCHAR(255) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose VARCHAR(32) NOT NULL
        CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
    -- The address the token is for: the one to verify, or the new one of a change of email.
    email VARCHAR(255),
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- A new token of a purpose replaces the user's earlier ones of that purpose.
CREATE INDEX IF NOT EXISTS idx_one_time_tokens_user_id ON one_time_tokens(user_id);
-- The cleanup sweep deletes expired tokens oldest first.
CREATE INDEX IF NOT EXISTS idx_one_time_tokens_expires_at ON one_time_tokens(expires_at);
