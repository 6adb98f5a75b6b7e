-- Back to the schema of the migrations before this one exactly.
DROP INDEX IF EXISTS idx_sessions_rotation_secret;
DROP INDEX IF EXISTS idx_sessions_previous_token;
ALTER TABLE sessions DROP COLUMN IF EXISTS previous_token;
DROP TABLE IF EXISTS retired_refresh_tokens;
