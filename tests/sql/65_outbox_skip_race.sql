-- Regression: a consumer with a channel filter that found nothing to read must not be moved past
-- events of its own channels that became safe after its read. outbox_fetch reads, then (finding
-- nothing) calls outbox_skip_idle, whose statements take newer snapshots; an earlier version moved
-- the position to the newest safe event of any channel and so skipped a whole committed
-- transaction of the consumer's own channel (seen as lost events under load).
-- Runs without an enclosing transaction (an open xid would hold back the outbox horizon).
SELECT plan(4);

SELECT pgtest.exec($$
  CREATE TABLE public.race_mine (id int PRIMARY KEY);
  SELECT pgfanout.watch('race_mine', durable => true);
  CREATE TABLE public.race_other (id int PRIMARY KEY);
  SELECT pgfanout.watch('race_other', durable => true);
$$);
SELECT pgfanout.outbox_register('race', at_head => true);
CREATE TEMP TABLE race_start AS SELECT last_txid, last_id FROM pgfanout.consumers WHERE name = 'race';

-- Committed, safe events: one of another channel, then one of the consumer's, then another one
-- of the other channel.
SELECT pgtest.exec($$INSERT INTO race_other VALUES (1)$$);
SELECT pgtest.exec($$INSERT INTO race_mine VALUES (1)$$);
SELECT pgtest.exec($$INSERT INTO race_other VALUES (2)$$);
CREATE TEMP TABLE race_mine_event AS
  SELECT txid, id FROM pgfanout.outbox WHERE channel = 'race_mine_changed';

-- As if the consumer's read had come before race_mine's commit and found nothing.
SELECT pgfanout.outbox_skip_idle('race', (SELECT last_txid FROM race_start),
  (SELECT last_id FROM race_start), '{race_mine_changed}');
SELECT ok((SELECT (c.last_txid, c.last_id) < (e.txid, e.id)
             FROM pgfanout.consumers c, race_mine_event e WHERE c.name = 'race'),
  'skip_idle stops before the first event of the consumer''s own channels');
SELECT ok((SELECT (c.last_txid, c.last_id) > (s.last_txid, s.last_id)
             FROM pgfanout.consumers c, race_start s WHERE c.name = 'race'),
  '... but moves past the other channel''s earlier event');
SELECT is((SELECT count(*)::int FROM pgfanout.outbox_fetch('race', '{race_mine_changed}', 10)), 1,
  'the consumer''s event is then fetched');
SELECT is((SELECT id FROM pgfanout.outbox_fetch('race', '{race_mine_changed}', 10)),
  (SELECT id FROM race_mine_event), '... and it is race_mine''s event');

SELECT * FROM finish();
