-- Back to the first migration's schema exactly.
CREATE INDEX IF NOT EXISTS idx_sessions_token ON sessions(token);
CREATE INDEX IF NOT EXISTS idx_sessions_refresh_token ON sessions(refresh_token);

DROP INDEX IF EXISTS idx_sessions_user_id;
DROP INDEX IF EXISTS idx_sessions_previous_refresh_token;

ALTER TABLE sessions DROP COLUMN IF EXISTS persistent;
ALTER TABLE sessions DROP COLUMN IF EXISTS absolute_expires_at;
ALTER TABLE sessions DROP COLUMN IF EXISTS rotation_secret;
ALTER TABLE sessions DROP COLUMN IF EXISTS rotated_at;
ALTER TABLE sessions DROP COLUMN IF EXISTS previous_refresh_token;
