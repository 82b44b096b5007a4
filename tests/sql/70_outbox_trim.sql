-- outbox_trim: deletes, in batches, what every live consumer has passed.
SELECT plan(11);
SET client_min_messages = warning;  -- trim's NOTICEs about ignored consumers

DELETE FROM pgfanout.consumers;
DELETE FROM pgfanout.outbox;
SELECT pgtest.exec($$
  CREATE TABLE public.tr (id int PRIMARY KEY);
  SELECT pgfanout.watch('tr', durable => true);
$$);
SELECT pgtest.exec(format('INSERT INTO tr VALUES (%s)', g)) FROM generate_series(1, 10) g;
CREATE TEMP TABLE t_all AS SELECT id, txid, row_number() OVER (ORDER BY txid, id) AS k FROM pgfanout.outbox;

SELECT is(pgfanout.outbox_trim(), 0::bigint, 'no consumer: nothing is trimmed');

SELECT pgtest.value($$SELECT count(*) FROM pgfanout.outbox_fetch('live_a')$$);
SELECT pgtest.value($$SELECT count(*) FROM pgfanout.outbox_fetch('live_b')$$);
SELECT pgtest.value(format($$SELECT pgfanout.outbox_ack('live_a', %L, %s)$$, txid, id)) FROM t_all WHERE k = 7;
SELECT pgtest.value(format($$SELECT pgfanout.outbox_ack('live_b', %L, %s)$$, txid, id)) FROM t_all WHERE k = 4;
SELECT pgtest.value($$SELECT count(*) FROM pgfanout.outbox_fetch('stale')$$);
UPDATE pgfanout.consumers SET seen_at = now() - interval '30 days' WHERE name = 'stale';

-- Events younger than `keep` stay, passed or not (clients may still resume from them).
SELECT is(pgfanout.outbox_trim(keep => interval '1 hour'), 0::bigint, 'nothing younger than keep is trimmed');
UPDATE pgfanout.outbox SET created_at = now() - interval '2 hours' WHERE id IN (SELECT id FROM t_all WHERE k <= 2);
SELECT is(pgfanout.outbox_trim(keep => interval '1 hour'), 2::bigint, 'passed events older than keep are trimmed');
SELECT is((SELECT count(*)::int FROM pgfanout.outbox), 8, 'the younger passed events stay');
SELECT is(pgfanout.outbox_trim(batch => 1), 1::bigint, 'a batch deletes at most batch events');
SELECT is(pgfanout.outbox_trim(), 1::bigint, 'then the rest that every live consumer passed');
SELECT is((SELECT array_agg(id ORDER BY txid, id) FROM pgfanout.outbox), (SELECT array_agg(id ORDER BY k) FROM t_all WHERE k > 4),
  'the oldest events went, the ones the slowest live consumer has not passed stayed');
SELECT is(pgfanout.outbox_trim(), 0::bigint, 'trimming again deletes nothing');

-- The stale consumer (position at the very start) was ignored; trim names it in a NOTICE.
SELECT is((SELECT count(*)::int FROM pgfanout.consumers WHERE name = 'stale'), 1, 'the stale consumer is kept, only ignored');

-- A shorter max_age ignores more consumers.
UPDATE pgfanout.consumers SET seen_at = now() - interval '2 hours' WHERE name = 'live_b';
SELECT is(pgfanout.outbox_trim(max_age => interval '1 hour'), 3::bigint,
  'with live_b stale too, trim goes up to live_a''s position');
SELECT is(pgfanout.outbox_forget('stale'), true, 'outbox_forget removes a consumer');

SELECT * FROM finish();
