-- Reuse detection that survives any number of rotations, a sign-out that still finds a session a
-- refresh has just rotated, and rotation secrets that do not outlive their grace window.
-- Additive: a database made by the Go library keeps its rows.

-- Every refresh token a session has retired (its digest), until the session ends: presented
-- again, any of them is a theft signal, however many rotations ago it was replaced. The
-- sessions' sweep removes them with their session.
CREATE TABLE IF NOT EXISTS retired_refresh_tokens (
  token VARCHAR(64) PRIMARY KEY,
  session_id VARCHAR(255) NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  retired_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- The ON DELETE CASCADE from sessions.
CREATE INDEX IF NOT EXISTS idx_retired_refresh_tokens_session_id
  ON retired_refresh_tokens(session_id);
-- The tokens sessions retired before this migration: their last rotation's.
INSERT INTO retired_refresh_tokens (token, session_id, retired_at)
SELECT previous_refresh_token, id, COALESCE(rotated_at, CURRENT_TIMESTAMP)
FROM sessions
WHERE previous_refresh_token IS NOT NULL AND length(previous_refresh_token) <= 64
ON CONFLICT (token) DO NOTHING;

-- The digest of the access token the last rotation replaced: within the grace window it still
-- finds its session for a sign-out (a tab that signed out while another refreshed), and for
-- nothing else.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS previous_token VARCHAR(255);
CREATE INDEX IF NOT EXISTS idx_sessions_previous_token ON sessions(previous_token);

-- The sessions whose rotation secret is still stored, oldest rotation first: the sweep that
-- clears each secret once its grace window has passed walks this index.
CREATE INDEX IF NOT EXISTS idx_sessions_rotation_secret
  ON sessions(rotated_at) WHERE rotation_secret IS NOT NULL;
