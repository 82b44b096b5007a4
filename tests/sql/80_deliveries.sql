-- Webhook deliveries (040_deliveries.sql): recording is idempotent, taking skips rows another
-- session holds and leases them, a report only lands for the attempt it belongs to, an expired
-- lease makes the row due again, dead letters are retried by hand, and trim keeps what is young.
BEGIN;
SELECT plan(18);

SELECT has_table('pgfanout', 'deliveries', 'the deliveries table exists');
SELECT is(pgfanout.delivery_record('{1,1}', '{r,r}', '{0,1}', '{msg_a,msg_b}', '{http://h:80,http://h:80}',
                                   '{/a,/b}', '{"{}","{}"}'), 2, 'delivery_record adds one row per delivery');
SELECT is(pgfanout.delivery_record('{1}', '{r}', '{0}', '{msg_a}', '{http://h:80}', '{/a}', '{"{}"}'), 0,
  'recording the same webhook-id again adds nothing');

CREATE TEMP TABLE t1 AS SELECT * FROM pgfanout.delivery_take('w1', '1 minute', 1);
SELECT is((SELECT count(*)::int FROM t1), 1, 'delivery_take takes up to max_rows');
SELECT is((SELECT state || '/' || attempts || '/' || locked_by FROM pgfanout.deliveries WHERE id = (SELECT id FROM t1)),
  'sending/1/w1', 'a taken row is sending, leased to the worker, attempt 1');

-- Another session sees nothing until the recording transaction commits (claim and record are
-- one transaction), and does not wait for it either.
SELECT is(pgtest.value($$SELECT count(*) FROM pgfanout.delivery_take('w2', '1 minute', 10)$$), '0',
  'rows of an uncommitted recording are not taken, and taking does not block');
COMMIT;
BEGIN;
-- While this transaction holds msg_b's row lock, another worker skips it (SKIP LOCKED).
SELECT is((SELECT webhook_id FROM pgfanout.deliveries WHERE webhook_id = 'msg_b' FOR UPDATE), 'msg_b', 'lock msg_b here');
SELECT is(pgtest.value($$SELECT count(*) FROM pgfanout.delivery_take('w2', '1 minute', 10)$$), '0',
  'a row locked by another transaction is skipped, not waited for; a leased one is not due');
COMMIT;
BEGIN;
SELECT is(pgtest.value($$SELECT string_agg(webhook_id, ',') FROM pgfanout.delivery_take('w2', '1 minute', 10)$$), 'msg_b',
  'once unlocked, another worker takes only the row not leased');

-- A stale report (attempt number from before) is ignored; the current one lands.
SELECT is(pgfanout.delivery_report(ARRAY[(SELECT id FROM pgfanout.deliveries WHERE webhook_id = 'msg_a')], '{0}', '{done}', '{200}', '{""}', '{0}'), 0,
  'a report for another attempt is ignored');
SELECT is(pgfanout.delivery_report(ARRAY[(SELECT id FROM pgfanout.deliveries WHERE webhook_id = 'msg_a')], '{1}', '{pending}', '{500}', '{"HTTP 500"}', '{60000}'), 1,
  'the report of the current attempt lands');
SELECT ok((SELECT state = 'pending' AND last_status = 500 AND next_attempt_at > now() + interval '50 seconds'
             AND locked_by IS NULL FROM pgfanout.deliveries WHERE webhook_id = 'msg_a'),
  'a retry is pending until its delay has passed, and unlocked');

-- An expired lease (the instance died mid-delivery) makes the row due again, attempt 2.
UPDATE pgfanout.deliveries SET next_attempt_at = now() - interval '1 second' WHERE webhook_id = 'msg_b';
SELECT is((SELECT attempts FROM pgfanout.delivery_take('w3', '1 minute', 10) WHERE webhook_id = 'msg_b'), 2,
  'a row whose lease ran out is taken again with the next attempt number');
SELECT is(pgfanout.delivery_report(ARRAY[(SELECT id FROM pgfanout.deliveries WHERE webhook_id = 'msg_b')], '{1}', '{done}', '{200}', '{""}', '{0}'), 0,
  'the first worker''s late report is ignored');

-- Dead letters.
SELECT isnt(pgfanout.delivery_dead_letter('r', 0, 'msg_dead', 'http://h:80', '/d', '{}', 8, 502, 'HTTP 502: boom'), NULL,
  'a dead letter of a non-durable rule is recorded');
SELECT is(pgfanout.deliveries_retry(), 1, 'deliveries_retry() sends every dead letter again');
SELECT is((SELECT state || '/' || attempts FROM pgfanout.deliveries WHERE webhook_id = 'msg_dead'), 'pending/0',
  '... pending, with its attempts reset');

-- Trim removes old delivered rows only.
UPDATE pgfanout.deliveries SET state = 'done', updated_at = now() - interval '2 days' WHERE webhook_id = 'msg_b';
SELECT is(pgfanout.deliveries_trim('1 day'), 1::bigint, 'deliveries_trim deletes delivered rows older than keep');

SELECT * FROM finish();
ROLLBACK;
