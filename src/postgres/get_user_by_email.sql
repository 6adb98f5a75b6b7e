-- The user with this (already normalised) email ($1): one lookup in the unique index on email.
SELECT id,
       email,
       name,
       password_hash,
       email_verified,
       created_at,
       updated_at
FROM users
WHERE email = $1;
