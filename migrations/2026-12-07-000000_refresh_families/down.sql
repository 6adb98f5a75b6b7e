-- Back to the schema of the migrations before this one exactly (forgotten secrets stay so).
DROP INDEX IF EXISTS idx_sessions_rotation_secret;
DROP INDEX IF EXISTS idx_sessions_previous_token;
ALTER TABLE sessions DROP COLUMN IF EXISTS previous_token;
DROP INDEX IF EXISTS idx_sessions_refresh_family;
ALTER TABLE sessions DROP COLUMN IF EXISTS refresh_family;
