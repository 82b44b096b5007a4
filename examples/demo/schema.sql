-- The demo's table: a user profile that an application caches in Redis.
CREATE SCHEMA IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.users (
  id       int PRIMARY KEY,
  username text NOT NULL UNIQUE,
  email    text NOT NULL
);
INSERT INTO demo.users VALUES (1, 'ann', 'ann@example.org'), (2, 'bob', 'bob@example.org')
ON CONFLICT (id) DO NOTHING;
