-- Dropping the tables drops their constraints and the four indexes with them; sessions first, since it references users.
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS users;
