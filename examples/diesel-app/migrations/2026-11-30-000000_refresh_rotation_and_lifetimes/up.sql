-- Refresh that survives a race or a lost response (a grace window in which the previous refresh
-- token gets the pair its rotation issued), reuse detection after it (RFC 9700 §4.14.2), and an
-- absolute lifetime for every session. Additive: a database made by the Go library keeps its rows.

-- The rotation that made the current pair: the digest of the refresh token it replaced, when, and
-- the random secret the new pair was derived with (see `authingo::token::RotationSecret`).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS previous_refresh_token VARCHAR(255);
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS rotated_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS rotation_secret VARCHAR(255);
-- No refresh extends a session past this; NULL (a session adopted from the Go library) counts
-- from `created_at`.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS absolute_expires_at TIMESTAMP WITH TIME ZONE;
-- FALSE for a sign-in without "remember me": its cookies last as long as the browser session.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS persistent BOOLEAN NOT NULL DEFAULT TRUE;

-- A rotated token that comes back is looked up by its digest.
CREATE INDEX IF NOT EXISTS idx_sessions_previous_refresh_token ON sessions(previous_refresh_token);
-- A user's sessions: listing them, and the ON DELETE CASCADE from users.
CREATE INDEX IF NOT EXISTS idx_sessions_user_id ON sessions(user_id);

-- The UNIQUE constraints on token and refresh_token already index them; the specification's two
-- extra indexes only cost every write.
DROP INDEX IF EXISTS idx_sessions_token;
DROP INDEX IF EXISTS idx_sessions_refresh_token;
