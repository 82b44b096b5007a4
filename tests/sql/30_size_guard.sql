-- The 8000-byte NOTIFY limit: a payload that would reach it goes out as key only with
-- "truncated":true, and the user's write never fails.
SELECT plan(17);

-- The boundary, through build_payload directly: 7999 bytes pass, 8000 do not.
CREATE TEMP TABLE base AS
  SELECT octet_length(pgfanout.build_payload('INSERT', 'public', 't', '{"id":1,"t":""}', NULL, '{id}',
                                             NULL, '1', '2026-01-01Z')) AS len;
SELECT is(octet_length(pgfanout.build_payload('INSERT', 'public', 't',
            jsonb_build_object('id', 1, 't', repeat('x', 7999 - (SELECT len FROM base))), NULL, '{id}',
            txid => '1', at => '2026-01-01Z')),
  7999, 'a 7999-byte payload is sent whole');
SELECT is(pgfanout.build_payload('INSERT', 'public', 't',
            jsonb_build_object('id', 1, 't', repeat('x', 8000 - (SELECT len FROM base))), NULL, '{id}',
            txid => '1', at => '2026-01-01Z'),
  '{"v":1,"op":"INSERT","schema":"public","table":"t","new":{"id": 1},"truncated":true,"txid":"1","at":"2026-01-01T00:00:00.000Z"}',
  'an 8000-byte payload is cut to the key');
SELECT is(pgfanout.build_payload('UPDATE', 's', 't', '{"a":"x"}', '{"a":"y"}', '{}', 10, '1', '2026-01-01Z'),
  '{"v":1,"op":"UPDATE","schema":"s","table":"t","truncated":true,"txid":"1","at":"2026-01-01T00:00:00.000Z"}',
  'without a key (or when even the key is too long) no row data is sent');
SELECT is(octet_length(pgfanout.build_payload('INSERT', 'public', 't',
            jsonb_build_object('id', 1, 't', repeat('é', 4000)), NULL, '{id}')) < 8000, true,
  'the limit counts bytes, not characters');

SELECT pgtest.exec($$
  CREATE TABLE public.big (id int PRIMARY KEY, title text, body text);
  SELECT pgfanout.watch('big');
  CREATE TABLE public.big_nokey (title text, body text);
  SELECT pgfanout.watch('big_nokey');
  CREATE TABLE public.big_durable (id int PRIMARY KEY, body text);
  SELECT pgfanout.watch('big_durable', durable => true);
$$);
SELECT pgtest.listen('big_changed');
SELECT pgtest.listen('big_nokey_changed');
SELECT pgtest.listen('big_durable_changed');

CREATE TEMP TABLE g_ins AS
  SELECT * FROM pgtest.notifications_of($$INSERT INTO big VALUES (1, 'hello', repeat('x', 10000))$$);
SELECT is((SELECT count(*)::int FROM g_ins), 1, 'a huge row still sends one notification');
SELECT ok((SELECT octet_length(payload) FROM g_ins) < 8000, 'under 8000 bytes');
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM g_ins),
  '{"v":1,"op":"INSERT","schema":"public","table":"big","new":{"id":1},"truncated":true}'::jsonb,
  'key only, marked truncated');
SELECT is(pgtest.value($$SELECT octet_length(body) FROM big WHERE id = 1$$), '10000', 'and the INSERT succeeded');

CREATE TEMP TABLE g_upd AS
  SELECT * FROM pgtest.notifications_of($$UPDATE big SET body = repeat('y', 10000), id = 2 WHERE id = 1$$);
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM g_upd),
  '{"v":1,"op":"UPDATE","schema":"public","table":"big","new":{"id":2},"old":{"id":1},"truncated":true}'::jsonb,
  'a huge UPDATE carries old and new key');
SELECT is((SELECT payload::jsonb -> 'old' FROM pgtest.notifications_of(
             $$UPDATE big SET body = 'small' WHERE id = 2; UPDATE big SET title = 'hi' WHERE id = 2$$)
            ORDER BY n DESC LIMIT 1),
  '{"id":2,"title":"hello","body":"small"}'::jsonb, 'once old and new are small the row is whole again');

SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM pgtest.notifications_of(
             $$INSERT INTO big_nokey VALUES ('t', repeat('z', 9000))$$)),
  '{"v":1,"op":"INSERT","schema":"public","table":"big_nokey","truncated":true}'::jsonb,
  'a keyless table: truncated without row data');

-- The whole of a multi-byte row counts.
SELECT ok((SELECT octet_length(payload) FROM pgtest.notifications_of(
             $$INSERT INTO big VALUES (3, 'utf8', repeat('€', 3000))$$)) < 8000,
  '3000 three-byte characters are truncated too');

-- Durable: the outbox keeps the whole event, NOTIFY only rings the bell.
CREATE TEMP TABLE g_dur AS
  SELECT * FROM pgtest.notifications_of($$INSERT INTO big_durable VALUES (1, repeat('d', 20000))$$);
SELECT is((SELECT payload::jsonb - 'id' FROM g_dur), '{"v":1,"outbox":true}'::jsonb, 'a durable watch sends a doorbell');
SELECT is((SELECT length(payload -> 'new' ->> 'body') FROM pgfanout.outbox
            WHERE id = (SELECT (payload::jsonb ->> 'id')::bigint FROM g_dur)),
  20000, 'the outbox event is not truncated');
SELECT ok((SELECT NOT (payload ? 'truncated') FROM pgfanout.outbox
            WHERE id = (SELECT (payload::jsonb ->> 'id')::bigint FROM g_dur)), 'nor marked truncated');

-- A key that is itself huge: no row data, the write still succeeds.
SELECT pgtest.exec($$
  CREATE TABLE public.big_key (k text PRIMARY KEY);
  SELECT pgfanout.watch('big_key');
$$);
SELECT pgtest.listen('big_key_changed');
SELECT is((SELECT payload::jsonb ? 'new' FROM pgtest.notifications_of(
             $$INSERT INTO big_key VALUES (repeat(E'\x01', 1500))$$)),
  false, 'a key whose JSON is too long: no row data');
SELECT is(pgtest.value($$SELECT count(*) FROM big_key$$), '1', 'and the INSERT succeeded');

SELECT * FROM finish();
