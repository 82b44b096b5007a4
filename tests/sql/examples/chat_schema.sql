-- pgTAP tests of examples/chat/schema.sql: tables, indexes, functions, role and privileges.
-- Runs in one transaction and rolls back.
BEGIN;
SELECT plan(33);

-- Runs a statement as another role and returns its SQLSTATE ('00000' when it succeeds).
-- pgTAP's own bookkeeping cannot run as that role, so the test compares the result afterwards.
CREATE FUNCTION pg_temp.sqlstate_as(role_name name, statement text) RETURNS text
  LANGUAGE plpgsql AS $$
DECLARE
  state text := '00000';
BEGIN
  EXECUTE format('SET LOCAL ROLE %I', role_name);
  BEGIN
    EXECUTE statement;
  EXCEPTION WHEN OTHERS THEN
    state := SQLSTATE;
  END;
  RESET ROLE;
  RETURN state;
END
$$;

-- tables and indexes --------------------------------------------------------------------------

SELECT has_schema('chat');
SELECT tables_are('chat', ARRAY['users', 'friends', 'messages']);
SELECT columns_are('chat', 'users',
  ARRAY['id', 'username', 'password_hash', 'email', 'friends_only', 'created_at', 'last_login_at', 'last_read_at']);
SELECT columns_are('chat', 'friends', ARRAY['user_id', 'friend_id', 'added_at']);
SELECT columns_are('chat', 'messages',
  ARRAY['id', 'from_user', 'from_username', 'to_user', 'body', 'sent_at', 'read_at']);
SELECT col_type_is('chat', 'messages', 'id', 'bigint', 'message ids are bigint');
SELECT col_default_is('chat', 'users', 'friends_only', 'false', 'users accept messages from everybody by default');
SELECT col_is_null('chat', 'messages', 'read_at', 'read_at is NULL until read');
SELECT col_not_null('chat', 'messages', 'body', 'a message has a body');
SELECT index_is_unique('chat', 'users', 'users_username_ci_key');
SELECT has_index('chat', 'messages', 'messages_unread_idx', ARRAY['to_user', 'id']);
SELECT has_index('chat', 'friends', 'friends_friend_id_idx', ARRAY['friend_id']);

-- functions -----------------------------------------------------------------------------------

SELECT functions_are('chat', ARRAY[
  'register', 'login', 'set_friends', 'set_friends_only', 'profile', 'contacts', 'send', 'fetch_new',
  'unread', 'mark_read', 'unread_count', 'hash_password', 'password_matches']);
SELECT function_returns('chat', 'register', ARRAY['text', 'text', 'text'], 'setof record');
SELECT function_returns('chat', 'set_friends_only', ARRAY['integer', 'boolean'], 'boolean');
SELECT function_returns('chat', 'mark_read', ARRAY['integer', 'bigint'], 'bigint');
SELECT function_returns('chat', 'unread_count', ARRAY['integer'], 'bigint');
SELECT is_empty(
  $$ SELECT p.oid::regprocedure FROM pg_proc p
      WHERE p.pronamespace = 'chat'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp') $$,
  'every chat function pins search_path to pg_catalog, pg_temp');
SELECT is_empty(
  $$ SELECT p.oid::regprocedure FROM pg_proc p
      WHERE p.pronamespace = 'chat'::regnamespace
        AND has_function_privilege('chat_app', p.oid, 'EXECUTE') AND NOT p.prosecdef $$,
  'every function chat_app may call is SECURITY DEFINER');

-- role and privileges -------------------------------------------------------------------------

SELECT has_role('chat_app');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'chat_app'), false, 'chat_app cannot log in');
SELECT set_eq(
  $$ SELECT p.oid::regprocedure::text FROM pg_proc p
      WHERE p.pronamespace = 'chat'::regnamespace AND has_function_privilege('chat_app', p.oid, 'EXECUTE') $$,
  ARRAY['chat.register(text,text,text)', 'chat.login(text,text)', 'chat.set_friends(integer,text[])',
        'chat.set_friends_only(integer,boolean)', 'chat.profile(integer)', 'chat.contacts(integer)',
        'chat.send(integer,text,text)', 'chat.fetch_new(integer)', 'chat.unread(integer)',
        'chat.mark_read(integer,bigint)', 'chat.unread_count(integer)'],
  'chat_app may execute exactly the public chat functions');
SELECT is_empty(
  $$ SELECT c.relname, p.privilege FROM pg_class c
      CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p (privilege)
      WHERE c.relnamespace = 'chat'::regnamespace AND c.relkind IN ('r', 'S')
        AND has_table_privilege('chat_app', c.oid, p.privilege) $$,
  'chat_app has no privilege on any chat table or sequence');

CREATE ROLE chat_test_outsider NOLOGIN;
SELECT is(has_schema_privilege('chat_test_outsider', 'chat', 'USAGE'), false,
  'other roles cannot even use schema chat');
SELECT is_empty(
  $$ SELECT p.oid::regprocedure FROM pg_proc p
      WHERE p.pronamespace = 'chat'::regnamespace
        AND has_function_privilege('chat_test_outsider', p.oid, 'EXECUTE') $$,
  'PUBLIC may execute no chat function');

SELECT is(pg_temp.sqlstate_as('chat_app', 'SELECT * FROM chat.users'), '42501',
  'chat_app cannot SELECT chat.users');
SELECT is(pg_temp.sqlstate_as('chat_app', 'SELECT * FROM chat.messages'), '42501',
  'chat_app cannot SELECT chat.messages');
SELECT is(pg_temp.sqlstate_as('chat_app',
    $$ INSERT INTO chat.messages (from_user, from_username, to_user, body) VALUES (1, 'x', 2, 'forged') $$),
  '42501', 'chat_app cannot INSERT into chat.messages');
SELECT is(pg_temp.sqlstate_as('chat_app', 'UPDATE chat.users SET friends_only = false'), '42501',
  'chat_app cannot UPDATE chat.users');
SELECT is(pg_temp.sqlstate_as('chat_app', $$ SELECT chat.hash_password('secret') $$), '42501',
  'chat_app cannot call the private password helpers');
SELECT is(pg_temp.sqlstate_as('chat_app', $$ SELECT chat.register('frank', 'secret6', 'frank@example.org') $$),
  '00000', 'chat_app can register through the function');
SELECT is(pg_temp.sqlstate_as('chat_app',
    $$ DO $do$ BEGIN
         IF NOT EXISTS (SELECT FROM chat.login('frank', 'secret6')) THEN RAISE EXCEPTION 'login failed'; END IF;
       END $do$ $$),
  '00000', 'chat_app can log in through the function');
SELECT is(pg_temp.sqlstate_as('chat_app',
    $$ DO $do$ BEGIN
         IF current_user <> 'chat_app' THEN RAISE EXCEPTION 'not chat_app'; END IF;
       END $do$ $$),
  '00000', 'those statements did run as chat_app');

SELECT * FROM finish();
ROLLBACK;
