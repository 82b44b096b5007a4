-- Durable watches and outbox consumption: same-transaction insert, doorbell, fetch/ack order,
-- out-of-order commits across sessions, and claim with SKIP LOCKED.
-- Runs without an enclosing transaction: an open transaction with an xid would hold back the
-- snapshot xmin that the outbox waits for.
SELECT plan(33);

SELECT pgtest.exec($$
  CREATE TABLE public.ob_orders (id int PRIMARY KEY, status text);
  SELECT pgfanout.watch('ob_orders', durable => true);
  CREATE TABLE public.ob_other (id int PRIMARY KEY);
  SELECT pgfanout.watch('ob_other', durable => true);
$$);
SELECT pgtest.listen('ob_orders_changed');

-- The event is written in the writer's transaction; NOTIFY is the doorbell.
CREATE TEMP TABLE o_bell AS SELECT * FROM pgtest.notifications_of($$
  BEGIN; INSERT INTO ob_orders VALUES (1, 'new'); CREATE TEMP TABLE w_txid ON COMMIT DROP AS SELECT pg_current_xact_id() AS x;
  SELECT set_config('pgtest.txid', (SELECT x::text FROM w_txid), false); COMMIT
$$);
CREATE TEMP TABLE o_first AS SELECT * FROM pgfanout.outbox WHERE id = (SELECT (payload::jsonb ->> 'id')::bigint FROM o_bell);
SELECT is((SELECT payload FROM o_bell), '{"v":1,"outbox":true,"id":' || (SELECT id FROM o_first) || '}',
  'the doorbell is {"v":1,"outbox":true,"id":<id>} on the watch''s channel');
SELECT is((SELECT channel FROM o_first), 'ob_orders_changed', 'the outbox row has the channel');
SELECT is((SELECT payload - 'txid' - 'at' FROM o_first),
  '{"v":1,"op":"INSERT","schema":"public","table":"ob_orders","new":{"id":1,"status":"new"}}'::jsonb,
  'the outbox row has the whole event');
SELECT is((SELECT txid::text FROM o_first), pgtest.value($$SELECT current_setting('pgtest.txid')$$),
  'the outbox row carries the writer''s txid');
SELECT is((SELECT payload ->> 'txid' FROM o_first), (SELECT txid::text FROM o_first), '... also in the payload');

SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$BEGIN; INSERT INTO ob_orders VALUES (2, 'x'); ROLLBACK$$)),
  0, 'a rolled back write rings no bell');
SELECT is((SELECT count(*)::int FROM pgfanout.outbox WHERE payload -> 'new' ->> 'id' = '2'), 0,
  'and leaves no outbox row');

-- fetch / ack
SELECT pgtest.exec($$UPDATE ob_orders SET status = 'paid' WHERE id = 1$$);
SELECT pgtest.exec($$INSERT INTO ob_other VALUES (1)$$);
SELECT pgtest.exec($$DELETE FROM ob_orders WHERE id = 1$$);
CREATE TEMP TABLE o_all AS SELECT id, txid FROM pgfanout.outbox ORDER BY txid, id;
SELECT is((SELECT array_agg(id) FROM pgtest.fetch('c1')), (SELECT array_agg(id) FROM o_all),
  'a new consumer starts at the oldest retained event, in (txid, id) order');
SELECT is((SELECT array_agg(id) FROM pgtest.fetch('c1')), (SELECT array_agg(id) FROM o_all),
  'without ack the same events come again');
SELECT is((SELECT array_agg(id) FROM pgtest.fetch('c1', max_rows => 2)), (SELECT (array_agg(id))[1:2] FROM o_all),
  'max_rows limits the batch');
SELECT is(pgtest.value(format($$SELECT pgfanout.outbox_ack('c1', %L, %s)$$,
                              (SELECT txid FROM o_all LIMIT 1 OFFSET 1), (SELECT id FROM o_all LIMIT 1 OFFSET 1))),
  't', 'ack moves the position');
SELECT is((SELECT array_agg(id) FROM pgtest.fetch('c1')), (SELECT (array_agg(id))[3:] FROM o_all),
  'fetch continues after the acked event');
SELECT is(pgtest.value(format($$SELECT pgfanout.outbox_ack('c1', %L, %s)$$,
                              (SELECT txid FROM o_all LIMIT 1), (SELECT id FROM o_all LIMIT 1))),
  'f', 'ack never moves backwards');
SELECT is((SELECT array_agg(id) FROM pgtest.fetch('c1')), (SELECT (array_agg(id))[3:] FROM o_all),
  '... the position stayed');
SELECT throws_like(format($$SELECT pgfanout.outbox_ack('c1', %L, 1)$$, pg_current_xact_id()::text::bigint + 1000),
  '%was not handed out by outbox_fetch%', 'ack of a position that is not safe yet is refused');

-- Channel filter: events of other channels are passed over, not handed out.
SELECT is((SELECT array_agg(channel) FROM pgtest.fetch('c2', '{ob_other_changed}')), '{ob_other_changed}'::text[],
  'a channel filter hands out only those channels');
SELECT pgtest.value(format($$SELECT pgfanout.outbox_ack('c2', %L, %s)$$,
  (SELECT txid FROM pgfanout.outbox WHERE channel = 'ob_other_changed'), (SELECT id FROM pgfanout.outbox WHERE channel = 'ob_other_changed')));
SELECT is((SELECT count(*)::int FROM pgtest.fetch('c2', '{ob_other_changed}')), 0, 'nothing more on that channel');
SELECT is((SELECT last_id FROM pgfanout.consumers WHERE name = 'c2'), (SELECT id FROM o_all ORDER BY txid DESC, id DESC LIMIT 1),
  'an idle filtered consumer is moved past other channels'' events (so trim can remove them)');

SELECT is(pgtest.value($$SELECT (pgfanout.outbox_register('c3', at_head => true)).last_id$$),
  (SELECT id FROM o_all ORDER BY txid DESC, id DESC LIMIT 1)::text, 'outbox_register(at_head) starts at the newest event');
SELECT is((SELECT count(*)::int FROM pgtest.fetch('c3')), 0, '... and sees nothing old');

-- Out-of-order commit. Session a writes first and stays open; session b writes later and commits.
SELECT pgtest.value(format($$SELECT pgfanout.outbox_ack('ooo', %L, %s)$$,
  (SELECT txid FROM o_all ORDER BY txid DESC, id DESC LIMIT 1), (SELECT id FROM o_all ORDER BY txid DESC, id DESC LIMIT 1)));
SELECT pgtest.exec($$BEGIN; INSERT INTO ob_orders VALUES (100, 'a')$$, 'a');
SELECT pgtest.exec($$INSERT INTO ob_orders VALUES (101, 'b')$$, 'b');
CREATE TEMP TABLE o_ab AS SELECT id, payload -> 'new' ->> 'id' AS row_id FROM pgfanout.outbox WHERE payload -> 'new' ->> 'id' IN ('100', '101');
SELECT is((SELECT count(*)::int FROM o_ab), 1, 'only b''s event is committed');
SELECT is((SELECT count(*)::int FROM pgtest.fetch('ooo')), 0, 'fetch holds back b''s event while a is open');
SELECT pgtest.exec('COMMIT', 'a');
SELECT is((SELECT array_agg(payload -> 'new' ->> 'id') FROM pgtest.fetch('ooo')), '{100,101}'::text[],
  'after a commits: a''s event, then b''s, nothing skipped');

-- Now the id order differs from the commit order: a takes its xid first but inserts last.
SELECT pgtest.exec($$BEGIN; SELECT pg_current_xact_id()$$, 'a');
SELECT pgtest.exec($$INSERT INTO ob_orders VALUES (102, 'b')$$, 'b');
SELECT pgtest.exec($$INSERT INTO ob_orders VALUES (103, 'a')$$, 'a');
SELECT is((SELECT count(*)::int FROM pgtest.fetch('ooo', max_rows => 10) WHERE payload -> 'new' ->> 'id' IN ('102', '103')), 0,
  'nothing from b while a (the older transaction) is open');
SELECT pgtest.exec('COMMIT', 'a');
CREATE TEMP TABLE o_ooo AS SELECT * FROM pgtest.fetch('ooo', max_rows => 10) WHERE payload -> 'new' ->> 'id' IN ('102', '103');
SELECT is((SELECT array_agg(payload -> 'new' ->> 'id') FROM o_ooo), '{103,102}'::text[],
  'then both, in txid order: the higher id 103 first');
SELECT ok((SELECT max(id) FILTER (WHERE payload -> 'new' ->> 'id' = '103') > max(id) FILTER (WHERE payload -> 'new' ->> 'id' = '102') FROM o_ooo),
  '(103 has the higher id, yet comes first)');

-- A read-only transaction has no xid and does not hold anything back.
SELECT pgtest.exec($$BEGIN; SELECT count(*) FROM ob_orders$$, 'a');
SELECT pgtest.exec($$INSERT INTO ob_orders VALUES (104, 'b')$$, 'b');
SELECT is((SELECT count(*)::int FROM pgtest.fetch('ooo', max_rows => 10) WHERE payload -> 'new' ->> 'id' = '104'), 1,
  'an open read-only transaction does not hold back delivery');
SELECT pgtest.exec('COMMIT', 'a');

-- Per-statement durable watch: one outbox row per part, one doorbell.
SELECT pgtest.exec($$
  CREATE TABLE public.ob_bulk (id int PRIMARY KEY, v text);
  SELECT pgfanout.watch('ob_bulk', per_statement => true, durable => true);
$$);
SELECT pgtest.listen('ob_bulk_changed');
CREATE TEMP TABLE o_bulk AS SELECT * FROM pgtest.notifications_of($$INSERT INTO ob_bulk SELECT g, 'v' FROM generate_series(1, 500) g$$);
SELECT is((SELECT count(*)::int FROM o_bulk WHERE channel = 'ob_bulk_changed'), 1, 'a durable per-statement watch rings one bell');
SELECT is((SELECT sum(jsonb_array_length(payload -> 'rows'))::int FROM pgfanout.outbox WHERE channel = 'ob_bulk_changed'), 500,
  'its outbox rows carry every row');

-- Claim: one instance at a time per group.
SELECT pgtest.exec('BEGIN', 's1');
CREATE TEMP TABLE o_c1 AS SELECT * FROM pgtest.claim('grp', 's1', '{ob_orders_changed}', 3);
SELECT is((SELECT count(*)::int FROM o_c1), 3, 'the first instance claims a batch');
SELECT pgtest.exec($$SET statement_timeout = '2s'$$, 's2');
SELECT is((SELECT count(*)::int FROM pgtest.claim('grp', 's2', '{ob_orders_changed}', 3)), 0,
  'a second instance gets nothing (and does not wait) while the first holds the group');
SELECT pgtest.exec('ROLLBACK', 's1');
SELECT is((SELECT array_agg(id) FROM pgtest.claim('grp', 's2', '{ob_orders_changed}', 3)), (SELECT array_agg(id) FROM o_c1),
  'after a rollback the same batch is claimed again');
SELECT ok((SELECT min(id) FROM pgtest.claim('grp', 's1', '{ob_orders_changed}', 3)) IS DISTINCT FROM (SELECT min(id) FROM o_c1),
  'after a claim commits, the next claim gets the next batch');

SELECT * FROM finish();
