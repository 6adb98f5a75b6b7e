-- The application's own table. It references authingo's users, so its version sorts after
-- authingo's first migration (2026-11-27-000000_create_authingo), which makes them.
CREATE TABLE posts (
    id SERIAL PRIMARY KEY,
    user_id VARCHAR(255) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL
);

-- A user's posts, and the ON DELETE CASCADE from users.
CREATE INDEX posts_user_id ON posts (user_id);
