-- pgTAP tests of examples/chat/schema.sql: registration, passwords, login, friends, profile.
-- Runs in one transaction and rolls back.
BEGIN;
SELECT plan(46);

CREATE FUNCTION pg_temp.uid(name text) RETURNS int
  LANGUAGE sql AS $$ SELECT id FROM chat.users WHERE lower(username) = lower(name) $$;

-- The HINT of the error a statement raises (NULL when it raises none).
CREATE FUNCTION pg_temp.hint_of(statement text) RETURNS text
  LANGUAGE plpgsql AS $$
DECLARE
  hint text;
BEGIN
  EXECUTE statement;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
  RETURN hint;
END
$$;

-- register ------------------------------------------------------------------------------------

CREATE TEMP TABLE registered AS SELECT * FROM chat.register('ann', 'secret1', 'ann@example.org');
SELECT results_eq(
  $$ SELECT user_id, username FROM registered $$,
  $$ SELECT id, username FROM chat.users WHERE username = 'ann' $$,
  'register returns one row: the new user''s id and name');
SELECT results_eq(
  $$ SELECT username FROM chat.register('Bob', 'secret2', 'bob@example.org') $$,
  ARRAY['Bob'],
  'register keeps the username''s case');
SELECT lives_ok(
  $$ SELECT chat.register('carol', 'secret1', 'carol@example.org') $$,
  'a second user may have the same password');

SELECT throws_ok(
  $$ SELECT chat.register('ann', 'another1', 'ann2@example.org') $$,
  '23505', 'username "ann" is already taken',
  'register refuses a taken username');
SELECT throws_ok(
  $$ SELECT chat.register('ANN', 'another1', 'ann2@example.org') $$,
  '23505', 'username "ANN" is already taken',
  'register refuses a taken username in another case');
SELECT throws_ok(
  $$ SELECT chat.register('bob', 'another1', 'bob2@example.org') $$,
  '23505', 'username "bob" is already taken',
  'usernames are unique regardless of case');
SELECT is(
  pg_temp.hint_of($$ SELECT chat.register('Ann', 'another1', 'ann2@example.org') $$),
  'Choose another username; usernames are case-insensitive.',
  'a taken username comes with a hint');

SELECT throws_ok(
  $$ SELECT chat.register('', 'secret1', 'x@example.org') $$,
  '22023', 'username is required', 'register refuses an empty username');
SELECT throws_ok(
  $$ SELECT chat.register(NULL, 'secret1', 'x@example.org') $$,
  '22023', 'username is required', 'register refuses a NULL username');
SELECT throws_ok(
  $$ SELECT chat.register('an n', 'secret1', 'x@example.org') $$,
  '22023', 'invalid username: an n', 'register refuses a username with a space');
SELECT throws_ok(
  $$ SELECT chat.register('al', 'secret1', 'x@example.org') $$,
  '22023', 'invalid username: al', 'register refuses a username shorter than 3');
SELECT throws_ok(
  $$ SELECT chat.register('1abc', 'secret1', 'x@example.org') $$,
  '22023', 'invalid username: 1abc', 'register refuses a username not starting with a letter');
SELECT throws_ok(
  format('SELECT chat.register(%L, %L, %L)', repeat('a', 33), 'secret1', 'x@example.org'),
  '22023', 'invalid username: ' || repeat('a', 33), 'register refuses a username longer than 32');
SELECT is(
  pg_temp.hint_of($$ SELECT chat.register('a b', 'secret1', 'x@example.org') $$),
  'Use 3 to 32 letters, digits, "_", "." or "-", starting with a letter.',
  'a bad username comes with a hint');
SELECT throws_ok(
  $$ SELECT chat.register('dave', 'abc12', 'dave@example.org') $$,
  '22023', 'password is too short', 'register refuses a password shorter than 6');
SELECT throws_ok(
  $$ SELECT chat.register('dave', NULL, 'dave@example.org') $$,
  '22023', 'password is too short', 'register refuses a NULL password');
SELECT throws_ok(
  format('SELECT chat.register(%L, %L, %L)', 'dave', repeat('p', 73), 'dave@example.org'),
  '22023', 'password is too long', 'register refuses a password bcrypt would cut (over 72 bytes)');
SELECT throws_ok(
  $$ SELECT chat.register('dave', 'secret4', 'dave.example.org') $$,
  '22023', 'invalid e-mail address: dave.example.org', 'register refuses an e-mail without @');
SELECT throws_ok(
  $$ SELECT chat.register('dave', 'secret4', 'dave @example.org') $$,
  '22023', 'invalid e-mail address: dave @example.org', 'register refuses an e-mail with a space');
SELECT throws_ok(
  $$ SELECT chat.register('dave', 'secret4', NULL) $$,
  '22023', 'invalid e-mail address: NULL', 'register refuses a NULL e-mail');
SELECT is(
  (SELECT count(*) FROM chat.users), 3::bigint,
  'refused registrations store nothing');

-- passwords -----------------------------------------------------------------------------------

SELECT ok(
  (SELECT bool_and(password_hash ~ '^\$2[ab]\$08\$') FROM chat.users),
  'passwords are stored as bcrypt hashes of cost 8');
SELECT is_empty(
  $$ SELECT 1 FROM chat.users u WHERE u::text LIKE '%secret1%' OR u::text LIKE '%secret2%' $$,
  'no column of chat.users holds a password in clear');
SELECT isnt(
  (SELECT password_hash FROM chat.users WHERE username = 'ann'),
  (SELECT password_hash FROM chat.users WHERE username = 'carol'),
  'the same password hashes differently for two users (salted)');
SELECT throws_ok(
  $$ INSERT INTO chat.users (username, password_hash, email) VALUES ('eve', 'secret5', 'eve@example.org') $$,
  '23514', NULL,
  'the table itself refuses a password_hash that is not a bcrypt hash');

-- login ---------------------------------------------------------------------------------------

SELECT results_eq(
  $$ SELECT user_id, username FROM chat.login('ann', 'secret1') $$,
  $$ VALUES (pg_temp.uid('ann'), 'ann'::text) $$,
  'login with the right password returns one row: the user');
SELECT results_eq(
  $$ SELECT username FROM chat.login('BOB', 'secret2') $$,
  ARRAY['Bob'],
  'login ignores the username''s case and returns the registered spelling');
SELECT is_empty(
  $$ SELECT * FROM chat.login('ann', 'secret2') $$,
  'login with a wrong password returns no row');
SELECT is_empty(
  $$ SELECT * FROM chat.login('ann', 'SECRET1') $$,
  'passwords are case-sensitive');
SELECT is_empty(
  $$ SELECT * FROM chat.login('nobody', 'secret1') $$,
  'login of an unknown user returns no row');
SELECT is_empty(
  $$ SELECT * FROM chat.login('ann', NULL) $$,
  'login with a NULL password returns no row');
SELECT is_empty(
  $$ SELECT * FROM chat.login(NULL, NULL) $$,
  'login with nothing returns no row');
SELECT isnt(
  (SELECT last_login_at FROM chat.users WHERE username = 'ann'), NULL,
  'a successful login records last_login_at');
SELECT is(
  (SELECT last_login_at FROM chat.users WHERE username = 'carol'), NULL,
  'failed logins record nothing');

-- friends -------------------------------------------------------------------------------------

SELECT results_eq(
  $$ SELECT friend FROM chat.set_friends(pg_temp.uid('ann'), ARRAY['carol', 'bob']) $$,
  ARRAY['Bob', 'carol'],
  'set_friends takes usernames in any case and returns the new list, sorted');
SELECT results_eq(
  $$ SELECT friend FROM chat.set_friends(pg_temp.uid('ann'), ARRAY['carol', 'CAROL']) $$,
  ARRAY['carol'],
  'set_friends replaces the list; repeated names count once');
SELECT throws_ok(
  format('SELECT chat.set_friends(%s, ARRAY[%L, %L, %L])', pg_temp.uid('ann'), 'bob', 'zed', 'nobody'),
  'P0002', 'unknown users: nobody, zed',
  'set_friends names the unknown users');
SELECT throws_ok(
  format('SELECT chat.set_friends(%s, ARRAY[%L, %L])', pg_temp.uid('ann'), 'bob', 'Ann'),
  '22023', 'you cannot be your own friend',
  'set_friends refuses yourself');
SELECT throws_ok(
  format('SELECT chat.set_friends(%s, ARRAY[%L, NULL])', pg_temp.uid('ann'), 'bob'),
  '22023', 'friends must be an array of usernames without NULLs',
  'set_friends refuses NULL names');
SELECT throws_ok(
  $$ SELECT chat.set_friends(-1, ARRAY['bob']) $$,
  'P0002', 'unknown user id -1',
  'set_friends refuses an unknown acting user');
SELECT is(
  (SELECT friends FROM chat.profile(pg_temp.uid('ann'))),
  ARRAY['carol'],
  'a refused set_friends leaves the list as it was');
SELECT is_empty(
  $$ SELECT friend FROM chat.set_friends(pg_temp.uid('ann'), '{}') $$,
  'an empty array clears the list');

-- friends_only and profile --------------------------------------------------------------------

SELECT is(chat.set_friends_only(pg_temp.uid('ann'), true), true, 'set_friends_only(true) returns true');
SELECT throws_ok(
  $$ SELECT chat.set_friends_only(-1, true) $$,
  'P0002', 'unknown user id -1', 'set_friends_only refuses an unknown user');

DO $$ BEGIN PERFORM chat.set_friends(pg_temp.uid('ann'), ARRAY['bob', 'carol']); END $$;
SELECT results_eq(
  $$ SELECT username, email, friends_only, friends, unread FROM chat.profile(pg_temp.uid('ann')) $$,
  $$ VALUES ('ann'::text, 'ann@example.org'::text, true, ARRAY['Bob', 'carol'], 0::bigint) $$,
  'profile shows name, e-mail, friends_only, friends and the unread count');
SELECT is_empty($$ SELECT * FROM chat.profile(-1) $$, 'profile of an unknown user is empty');

SELECT * FROM finish();
ROLLBACK;
