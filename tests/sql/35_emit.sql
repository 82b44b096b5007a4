-- pgfanout.emit: validation and who may call it (what the WAL source makes of the message is
-- tested against a real slot in tests/integration/wal_*_pgtest.cpp).
BEGIN;
SELECT plan(9);

SELECT has_function('pgfanout', 'emit', ARRAY['text', 'text']);
SELECT has_function('pgfanout', 'emit', ARRAY['text', 'jsonb']);
SELECT is_definer('pgfanout', 'emit', ARRAY['text', 'text'], 'emit(text, text) runs as its owner');

SELECT ok(pgfanout.emit('orders', '{"id":1}') IS NOT NULL, 'emit returns the message''s LSN');
SELECT ok(pgfanout.emit('orders', '{"id":2}'::jsonb) IS NOT NULL, 'the jsonb form works');

SELECT throws_ok($$ SELECT pgfanout.emit('', 'x') $$, '22023', NULL, 'an empty channel is refused');
SELECT throws_ok($$ SELECT pgfanout.emit('a' || E'\n' || 'b', 'x') $$, '22023', NULL,
  'a channel with a newline is refused');
SELECT throws_ok($$ SELECT pgfanout.emit('pgfanout.heartbeat', 'x') $$, '22023', NULL,
  'a reserved channel is refused');

-- A role without superuser may emit (pg_logical_emit_message itself is not granted to it).
CREATE ROLE pgfanout_emit_tester NOLOGIN;
SET LOCAL ROLE pgfanout_emit_tester;
SELECT ok(pgfanout.emit('orders', 'plain text') IS NOT NULL, 'an ordinary role may emit');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
