-- What a user sees of where they are signed in: the client that opened each session. (When a
-- session was last used is its last rotation, `rotated_at`, or its sign-in, `created_at`.)
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS user_agent VARCHAR(255);
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS ip_address VARCHAR(64);
