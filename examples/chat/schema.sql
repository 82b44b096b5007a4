-- pgfanout example: the single-server chat of "PostgreSQL Server Programming"
-- (chapter on scaling with PL/Proxy, "Simple single-server chat").
--
-- Users with a friends list and a "messages only from friends" flag; messages with send and read
-- timestamps. Everything a client may do is a function in schema `chat`; the functions take the
-- acting user's id explicitly, because the daemon calls them with the id taken from a verified
-- token (`$user` in the daemon config), never from the client.
--
-- Idempotent: apply it as often as you like (psql -v ON_ERROR_STOP=1 -f schema.sql). It runs as
-- one transaction and uses no psql meta-commands, so any libpq client can apply it.
--
-- Security model: the tables belong to whoever runs this script and are reachable only through
-- SECURITY DEFINER functions with a pinned search_path. Role `chat_app` (NOLOGIN) may execute the
-- public functions and nothing else; grant it to the daemon's login role.
--
-- No NOTIFY triggers are written here: the daemon installs them with pgfanout.watch() from its
-- configuration. chat.messages carries the sender's username (from_username) so that one row
-- image, as a row-level trigger sends it, holds everything a page needs to show a message.

BEGIN;

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA IF NOT EXISTS chat;

COMMENT ON SCHEMA chat IS
  'Single-server chat of "PostgreSQL Server Programming": users, friends, messages. Use the functions; the tables are private.';

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS chat.users (
  id            int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username      text NOT NULL
                CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z][A-Za-z0-9_.-]{2,31}$'),
  -- Only bcrypt hashes can be stored: a clear-text password cannot slip in by mistake.
  password_hash text NOT NULL
                CONSTRAINT users_password_hash_bcrypt CHECK (password_hash ~ '^\$2[abxy]\$[0-9]{2}\$'),
  email         text NOT NULL
                CONSTRAINT users_email_format CHECK (char_length(email) <= 254
                                                     AND email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
  friends_only  boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz,
  last_read_at  timestamptz
);

-- Usernames are unique regardless of case ("Ann" and "ann" are the same user); every lookup by
-- name goes through lower(username) and so uses this index.
CREATE UNIQUE INDEX IF NOT EXISTS users_username_ci_key ON chat.users (lower(username));

COMMENT ON TABLE chat.users IS 'Chat users. friends_only: accept messages only from users in my friends list.';
COMMENT ON COLUMN chat.users.password_hash IS 'bcrypt hash (pgcrypto crypt with gen_salt(''bf'', 8)); never the password.';
COMMENT ON COLUMN chat.users.last_read_at IS 'When the user last fetched or acknowledged messages.';

-- "A list of friends" is one-directional, as in the book: (user_id, friend_id) means user_id
-- lists friend_id as a friend, so friend_id may message user_id even when user_id is friends-only.
CREATE TABLE IF NOT EXISTS chat.friends (
  user_id   int NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
  friend_id int NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
  added_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, friend_id),
  CONSTRAINT friends_not_self CHECK (user_id <> friend_id)
);

-- "Who lists me as a friend?" (chat.contacts, cascading deletes).
CREATE INDEX IF NOT EXISTS friends_friend_id_idx ON chat.friends (friend_id);

COMMENT ON TABLE chat.friends IS 'user_id lists friend_id as a friend (one-directional).';

CREATE TABLE IF NOT EXISTS chat.messages (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  from_user     int NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
  -- Denormalized on purpose: the NOTIFY payload of a row-level trigger holds only this row, and a
  -- page showing a pushed message needs the sender's name. Usernames never change (there is no
  -- rename function), so the copy cannot go stale.
  from_username text NOT NULL,
  to_user       int NOT NULL REFERENCES chat.users (id) ON DELETE CASCADE,
  -- At most 1000 characters: even with every character escaped as \uXXXX, one row image stays
  -- well under the 8000-byte NOTIFY payload limit.
  body          text NOT NULL
                CONSTRAINT messages_body_length CHECK (char_length(body) BETWEEN 1 AND 1000),
  sent_at       timestamptz NOT NULL DEFAULT now(),
  read_at       timestamptz
);

-- Unread messages of a user, in send order: small, because read messages leave it.
CREATE INDEX IF NOT EXISTS messages_unread_idx ON chat.messages (to_user, id) WHERE read_at IS NULL;
-- A user's whole inbox, and cascading deletes of users.
CREATE INDEX IF NOT EXISTS messages_to_user_idx ON chat.messages (to_user, id);
CREATE INDEX IF NOT EXISTS messages_from_user_idx ON chat.messages (from_user);

COMMENT ON TABLE chat.messages IS 'Messages; read_at is NULL until the receiver fetched or acknowledged it.';
COMMENT ON COLUMN chat.messages.from_username IS
  'Sender''s username at send time, copied so that a row-level NOTIFY payload is self-contained.';

-- ---------------------------------------------------------------------------------------------
-- Password helpers (private)
--
-- pgcrypto may live in any schema (public by default; some hosts use "extensions"). The helpers
-- call it schema-qualified, so that no function needs that schema on its search_path.
-- ---------------------------------------------------------------------------------------------

DO $install$
DECLARE
  crypto_schema text;
BEGIN
  SELECT n.nspname INTO STRICT crypto_schema
    FROM pg_catalog.pg_extension e
    JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pgcrypto';

  EXECUTE format($fn$
    CREATE OR REPLACE FUNCTION chat.hash_password(password text) RETURNS text
      LANGUAGE sql VOLATILE STRICT
      SET search_path = pg_catalog, pg_temp
      AS $body$ SELECT %1$I.crypt(password, %1$I.gen_salt('bf', 8)) $body$
  $fn$, crypto_schema);

  EXECUTE format($fn$
    CREATE OR REPLACE FUNCTION chat.password_matches(password text, password_hash text) RETURNS boolean
      LANGUAGE sql VOLATILE STRICT
      SET search_path = pg_catalog, pg_temp
      AS $body$ SELECT %1$I.crypt(password, password_hash) = password_hash $body$
  $fn$, crypto_schema);
END
$install$;

COMMENT ON FUNCTION chat.hash_password(text) IS 'Private: bcrypt hash (cost 8) of a password.';
COMMENT ON FUNCTION chat.password_matches(text, text) IS 'Private: does the password match the bcrypt hash?';

-- ---------------------------------------------------------------------------------------------
-- Users
-- ---------------------------------------------------------------------------------------------

-- Inputs are named p_* because a function's input and output columns cannot share a name.
CREATE OR REPLACE FUNCTION chat.register(p_username text, p_password text, p_email text)
  RETURNS TABLE (user_id int, username text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_username IS NULL OR p_username = '' THEN
    RAISE EXCEPTION 'username is required'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_username !~ '^[A-Za-z][A-Za-z0-9_.-]{2,31}$' THEN
    RAISE EXCEPTION 'invalid username: %', p_username
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use 3 to 32 letters, digits, "_", "." or "-", starting with a letter.';
  END IF;
  IF p_password IS NULL OR char_length(p_password) < 6 THEN
    RAISE EXCEPTION 'password is too short'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use at least 6 characters.';
  END IF;
  IF octet_length(p_password) > 72 THEN
    -- bcrypt ignores everything after the 72nd byte; refuse rather than pretend.
    RAISE EXCEPTION 'password is too long'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use at most 72 bytes.';
  END IF;
  IF p_email IS NULL OR char_length(p_email) > 254
     OR p_email !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' THEN
    RAISE EXCEPTION 'invalid e-mail address: %', coalesce(p_email, 'NULL')
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Expected something like name@example.org.';
  END IF;

  IF EXISTS (SELECT 1 FROM chat.users u WHERE lower(u.username) = lower(p_username)) THEN
    RAISE EXCEPTION 'username "%" is already taken', p_username
      USING ERRCODE = 'unique_violation',
            HINT = 'Choose another username; usernames are case-insensitive.';
  END IF;

  BEGIN
    INSERT INTO chat.users AS u (username, password_hash, email)
    VALUES (p_username, chat.hash_password(p_password), p_email)
    RETURNING u.id, u.username INTO user_id, username;
  EXCEPTION WHEN unique_violation THEN
    -- Someone registered the same name between the check above and this insert.
    RAISE EXCEPTION 'username "%" is already taken', p_username
      USING ERRCODE = 'unique_violation',
            HINT = 'Choose another username; usernames are case-insensitive.';
  END;
  RETURN NEXT;
END
$$;

COMMENT ON FUNCTION chat.register(text, text, text) IS
  'Register a user. Returns (user_id, username). Errors: 22023 bad input, 23505 username taken.';

-- A dummy hash with the same cost as real ones: a login for an unknown user runs bcrypt once too,
-- so the answer takes about as long as for a wrong password.
CREATE OR REPLACE FUNCTION chat.login(p_username text, p_password text)
  RETURNS TABLE (user_id int, username text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  found_user record;
BEGIN
  SELECT u.id, u.username, u.password_hash INTO found_user
    FROM chat.users u
   WHERE lower(u.username) = lower(p_username);

  IF NOT FOUND OR p_password IS NULL THEN
    PERFORM chat.password_matches(coalesce(p_password, ''),
                                  '$2a$08$raZ6NMkhuk94IGfMwGfzE.oR179MQhg08VfkOUc5T1ivNplS/O09m');
    RETURN;
  END IF;

  IF NOT chat.password_matches(p_password, found_user.password_hash) THEN
    RETURN;  -- a failed login returns no row
  END IF;

  UPDATE chat.users u SET last_login_at = now() WHERE u.id = found_user.id;
  user_id := found_user.id;
  username := found_user.username;
  RETURN NEXT;
END
$$;

COMMENT ON FUNCTION chat.login(text, text) IS
  'Check a password. One row (user_id, username) on success; no row for a wrong password or an unknown user.';

CREATE OR REPLACE FUNCTION chat.set_friends(user_id int, friends text[])
  RETURNS TABLE (friend text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me      chat.users;
  missing text[];
  wanted  int[];
BEGIN
  -- NO KEY UPDATE serializes concurrent set_friends of one user without blocking the foreign-key
  -- checks of messages being sent to or from that user.
  SELECT * INTO me FROM chat.users u WHERE u.id = set_friends.user_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown user id %', coalesce(set_friends.user_id::text, 'NULL')
      USING ERRCODE = 'no_data_found';
  END IF;
  IF set_friends.friends IS NULL OR array_position(set_friends.friends, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'friends must be an array of usernames without NULLs'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass an empty array to clear the list.';
  END IF;

  SELECT array_agg(DISTINCT n.name ORDER BY n.name) INTO missing
    FROM unnest(set_friends.friends) AS n (name)
   WHERE NOT EXISTS (SELECT 1 FROM chat.users u WHERE lower(u.username) = lower(n.name));
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'unknown users: %', array_to_string(missing, ', ')
      USING ERRCODE = 'no_data_found',
            HINT = 'Friends are given by username; nothing was changed.';
  END IF;

  IF EXISTS (SELECT 1 FROM unnest(set_friends.friends) AS n (name) WHERE lower(n.name) = lower(me.username)) THEN
    RAISE EXCEPTION 'you cannot be your own friend'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  SELECT coalesce(array_agg(u.id), '{}') INTO wanted
    FROM chat.users u
   WHERE lower(u.username) IN (SELECT lower(n.name) FROM unnest(set_friends.friends) AS n (name));

  DELETE FROM chat.friends f WHERE f.user_id = me.id AND f.friend_id <> ALL (wanted);
  INSERT INTO chat.friends (user_id, friend_id)
  SELECT me.id, w.id FROM unnest(wanted) AS w (id)
  ON CONFLICT DO NOTHING;  -- friends already listed keep their added_at

  RETURN QUERY
    SELECT u.username
      FROM chat.friends f
      JOIN chat.users u ON u.id = f.friend_id
     WHERE f.user_id = me.id
     ORDER BY lower(u.username);
END
$$;

COMMENT ON FUNCTION chat.set_friends(int, text[]) IS
  'Replace the friends list by usernames (case-insensitive). Returns the new list. Errors: P0002 unknown users, 22023 yourself or NULLs.';

CREATE OR REPLACE FUNCTION chat.set_friends_only(user_id int, enabled boolean)
  RETURNS boolean
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  now_friends_only boolean;
BEGIN
  IF set_friends_only.enabled IS NULL THEN
    RAISE EXCEPTION 'friends_only must be true or false'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE chat.users u SET friends_only = set_friends_only.enabled
   WHERE u.id = set_friends_only.user_id
  RETURNING u.friends_only INTO now_friends_only;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown user id %', coalesce(set_friends_only.user_id::text, 'NULL')
      USING ERRCODE = 'no_data_found';
  END IF;
  RETURN now_friends_only;
END
$$;

COMMENT ON FUNCTION chat.set_friends_only(int, boolean) IS
  'Accept messages only from friends (true) or from everybody (false). Returns the new setting.';

CREATE OR REPLACE FUNCTION chat.profile(user_id int)
  RETURNS TABLE (username text, email text, friends_only boolean, friends text[], unread bigint,
                 created_at timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT u.username, u.email, u.friends_only,
         ARRAY(SELECT fu.username
                 FROM chat.friends f
                 JOIN chat.users fu ON fu.id = f.friend_id
                WHERE f.user_id = u.id
                ORDER BY lower(fu.username)),
         (SELECT count(*) FROM chat.messages m WHERE m.to_user = u.id AND m.read_at IS NULL),
         u.created_at
    FROM chat.users u
   WHERE u.id = profile.user_id
$$;

COMMENT ON FUNCTION chat.profile(int) IS 'The user''s own profile; no row for an unknown id.';

CREATE OR REPLACE FUNCTION chat.contacts(user_id int)
  RETURNS TABLE (username text, is_friend boolean, friends_only boolean)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT u.username,
         EXISTS (SELECT 1 FROM chat.friends mine
                  WHERE mine.user_id = contacts.user_id AND mine.friend_id = u.id),
         u.friends_only
    FROM chat.users u
   WHERE u.id <> contacts.user_id
     AND EXISTS (SELECT 1 FROM chat.users me WHERE me.id = contacts.user_id)
     AND (NOT u.friends_only
          OR EXISTS (SELECT 1 FROM chat.friends theirs
                      WHERE theirs.user_id = u.id AND theirs.friend_id = contacts.user_id))
   ORDER BY lower(u.username)
$$;

COMMENT ON FUNCTION chat.contacts(int) IS
  'Users who accept messages from this user (not friends-only, or they list this user as a friend); is_friend: listed in my friends.';

-- ---------------------------------------------------------------------------------------------
-- Messages
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat.send(user_id int, to_username text, body text)
  RETURNS TABLE (message_id bigint, sent_at timestamptz)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  sender   chat.users;
  receiver chat.users;
BEGIN
  SELECT * INTO sender FROM chat.users u WHERE u.id = send.user_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown user id %', coalesce(send.user_id::text, 'NULL')
      USING ERRCODE = 'no_data_found';
  END IF;
  IF send.body IS NULL OR send.body !~ '[^[:space:]]' THEN
    RAISE EXCEPTION 'message is empty'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF char_length(send.body) > 1000 THEN
    RAISE EXCEPTION 'message is too long (% characters)', char_length(send.body)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use at most 1000 characters.';
  END IF;

  SELECT * INTO receiver FROM chat.users u WHERE lower(u.username) = lower(send.to_username);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown user: %', coalesce(send.to_username, 'NULL')
      USING ERRCODE = 'no_data_found';
  END IF;
  IF receiver.id = sender.id THEN
    RAISE EXCEPTION 'you cannot send a message to yourself'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF receiver.friends_only AND NOT EXISTS (
       SELECT 1 FROM chat.friends f WHERE f.user_id = receiver.id AND f.friend_id = sender.id) THEN
    RAISE EXCEPTION 'refused: % accepts messages only from friends', receiver.username
      USING ERRCODE = 'raise_exception',
            HINT = 'The receiver has to add you to their friends list first.';
  END IF;

  RETURN QUERY
    INSERT INTO chat.messages AS m (from_user, from_username, to_user, body)
    VALUES (sender.id, sender.username, receiver.id, send.body)
    RETURNING m.id, m.sent_at;
END
$$;

COMMENT ON FUNCTION chat.send(int, text, text) IS
  'Send a message. Returns (message_id, sent_at). Errors: P0001 refused (friends-only receiver), P0002 unknown user, 22023 empty/too long/to yourself.';

-- fetch_new is the book's "retrieve new messages": it returns the unread messages and marks them
-- read in one statement, so two concurrent calls never both return a message.
CREATE OR REPLACE FUNCTION chat.fetch_new(user_id int)
  RETURNS TABLE (id bigint, from_username text, body text, sent_at timestamptz)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE chat.users u SET last_read_at = now() WHERE u.id = fetch_new.user_id;
  RETURN QUERY
    WITH marked AS (
      UPDATE chat.messages m SET read_at = now()
       WHERE m.to_user = fetch_new.user_id AND m.read_at IS NULL
      RETURNING m.id, m.from_username, m.body, m.sent_at
    )
    SELECT k.id, k.from_username, k.body, k.sent_at FROM marked k ORDER BY k.id;
END
$$;

COMMENT ON FUNCTION chat.fetch_new(int) IS
  'Unread messages to the user in send order, marked read by this call. A second call returns only what arrived since.';

-- unread + mark_read are the two halves of fetch_new for a push channel: the hub delivers what
-- accumulated while a user was away without marking it, and the page acknowledges what it has
-- shown. A message delivered but never acknowledged stays unread and is delivered again.
CREATE OR REPLACE FUNCTION chat.unread(user_id int)
  RETURNS TABLE (id bigint, from_username text, body text, sent_at timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.id, m.from_username, m.body, m.sent_at
    FROM chat.messages m
   WHERE m.to_user = unread.user_id AND m.read_at IS NULL
   ORDER BY m.id
$$;

COMMENT ON FUNCTION chat.unread(int) IS
  'Unread messages to the user in send order, without marking them (see chat.mark_read).';

CREATE OR REPLACE FUNCTION chat.mark_read(user_id int, up_to bigint)
  RETURNS bigint
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  marked bigint;
BEGIN
  IF mark_read.up_to IS NULL THEN
    RAISE EXCEPTION 'up_to must be a message id'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE chat.messages m SET read_at = now()
   WHERE m.to_user = mark_read.user_id AND m.read_at IS NULL AND m.id <= mark_read.up_to;
  GET DIAGNOSTICS marked = ROW_COUNT;
  UPDATE chat.users u SET last_read_at = now() WHERE u.id = mark_read.user_id;
  RETURN marked;
END
$$;

COMMENT ON FUNCTION chat.mark_read(int, bigint) IS
  'Mark the user''s unread messages with id <= up_to read. Returns how many were marked.';

CREATE OR REPLACE FUNCTION chat.unread_count(user_id int)
  RETURNS bigint
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT count(*) FROM chat.messages m WHERE m.to_user = unread_count.user_id AND m.read_at IS NULL
$$;

COMMENT ON FUNCTION chat.unread_count(int) IS 'Number of unread messages to the user.';

-- ---------------------------------------------------------------------------------------------
-- Privileges: chat_app may call the functions above and touch nothing else.
-- ---------------------------------------------------------------------------------------------

DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'chat_app') THEN
    CREATE ROLE chat_app NOLOGIN;
    COMMENT ON ROLE chat_app IS
      'pgfanout chat example: may execute the chat.* functions, nothing else. Grant it to the daemon''s login role.';
  END IF;
END
$roles$;

REVOKE ALL ON SCHEMA chat FROM PUBLIC;
GRANT USAGE ON SCHEMA chat TO chat_app;
REVOKE ALL ON ALL TABLES IN SCHEMA chat FROM PUBLIC, chat_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA chat FROM PUBLIC, chat_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA chat FROM PUBLIC, chat_app;
GRANT EXECUTE ON FUNCTION
  chat.register(text, text, text),
  chat.login(text, text),
  chat.set_friends(int, text[]),
  chat.set_friends_only(int, boolean),
  chat.profile(int),
  chat.contacts(int),
  chat.send(int, text, text),
  chat.fetch_new(int),
  chat.unread(int),
  chat.mark_read(int, bigint),
  chat.unread_count(int)
TO chat_app;

COMMIT;
