-- The installed objects, their pinned search_path and the recorded version.
BEGIN;
SELECT plan(22);

SELECT has_schema('pgfanout');
SELECT has_table('pgfanout', 'schema_version', 'version table');
SELECT has_table('pgfanout', 'watch_registry', 'watch registry');
SELECT has_table('pgfanout', 'outbox', 'outbox');
SELECT has_table('pgfanout', 'consumers', 'consumer positions');
SELECT has_view('pgfanout', 'watches', 'watches view');
SELECT columns_are('pgfanout', 'outbox', ARRAY['id', 'channel', 'payload', 'txid', 'created_at']);
SELECT col_type_is('pgfanout', 'outbox', 'txid', 'xid8', 'outbox.txid is xid8');

SELECT has_function('pgfanout', 'watch',
  ARRAY['regclass', 'text', 'text[]', 'text[]', 'text[]', 'boolean', 'boolean']);
SELECT has_function('pgfanout', 'unwatch', ARRAY['regclass']);
SELECT has_function('pgfanout', 'outbox_fetch', ARRAY['text', 'text[]', 'integer']);
SELECT has_function('pgfanout', 'outbox_ack', ARRAY['text', 'xid8', 'bigint']);
SELECT has_function('pgfanout', 'outbox_claim', ARRAY['text', 'text[]', 'integer']);
SELECT has_function('pgfanout', 'outbox_trim', ARRAY['interval', 'integer', 'interval']);
SELECT function_returns('pgfanout', 'outbox_trim', ARRAY['interval', 'integer', 'interval'], 'bigint');

SELECT is(pgfanout.installed_version(), pgfanout.script_version(), 'the script version is recorded');
SELECT is((SELECT count(*)::int FROM pgfanout.schema_version), 1, 'installing again records no second row');

SELECT is_empty($$
  SELECT p.oid::regprocedure::text
    FROM pg_proc p
   WHERE p.pronamespace = 'pgfanout'::regnamespace
     AND NOT coalesce('search_path=pg_catalog, pgfanout, pg_temp' = ANY (p.proconfig), false)
     -- Generated row-level trigger functions qualify every name instead (tests/sql/25_search_path.sql).
     AND p.oid NOT IN (SELECT t.tgfoid FROM pg_trigger t WHERE t.tgname = 'pgfanout_watch')
     -- The native trigger functions (sql/native) look up no name through it: their one query,
     -- the outbox insert, names its table with its schema and takes typed parameters.
     AND p.prolang <> (SELECT l.oid FROM pg_language l WHERE l.lanname = 'c')
$$, 'every pgfanout function pins search_path, but the generated row-level and the native trigger functions');

SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'pgfanout'::regnamespace AND p.prosecdef
     AND p.oid <> 'pgfanout.emit(text, text)'::regprocedure
$$, 'no pgfanout function runs with its owner''s rights but emit (tests/sql/35_emit.sql)');

SELECT is(
  (SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'pgfanout'::regnamespace AND p.proname = 'watch'),
  1, 'one watch() (re-installing replaced it, did not overload it)');

SELECT throws_ok(
  $$SELECT pgfanout.watch('pgfanout.watches')$$, 'P0001',
  'pgfanout.watch: pgfanout.watches is not a table', 'watch() refuses a view');

SELECT ok(pgfanout.notify_max_bytes() < 8000, 'the size guard stays below NOTIFY''s 8000-byte limit');

SELECT * FROM finish();
ROLLBACK;
