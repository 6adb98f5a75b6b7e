-- Reuse detection that survives any number of rotations, a sign-out that still finds a session a
-- refresh has just rotated, and rotation secrets that do not outlive their grace window.
-- Additive: a database made by the Go library keeps its rows.

-- The digest of the family every refresh token of the session shares (its first 16 bytes,
-- drawn at sign-in and kept by each rotation): any token of the family that comes back, other
-- than the current one or the one replaced last within the grace window, is a theft signal,
-- however many rotations ago it was replaced. Set by the session's first rotation; one column,
-- whatever the number of rotations.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS refresh_family VARCHAR(64);
CREATE INDEX IF NOT EXISTS idx_sessions_refresh_family ON sessions(refresh_family);

-- The digest of the access token the last rotation replaced: within the grace window it still
-- finds its session for a sign-out (a tab that signed out while another refreshed), and for
-- nothing else.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS previous_token VARCHAR(255);
CREATE INDEX IF NOT EXISTS idx_sessions_previous_token ON sessions(previous_token);

-- The sessions whose rotation secret is still stored, oldest rotation first: the sweep that
-- forgets each secret once its grace window has passed walks this index.
CREATE INDEX IF NOT EXISTS idx_sessions_rotation_secret
  ON sessions(rotated_at) WHERE rotation_secret IS NOT NULL;
-- The secrets kept so far past any grace window (at most an hour) go now.
UPDATE sessions SET rotation_secret = NULL
WHERE rotation_secret IS NOT NULL AND rotated_at < CURRENT_TIMESTAMP - INTERVAL '1 hour';
