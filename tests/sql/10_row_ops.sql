-- Row-level watches: every op, payload envelope, column lists, changed columns, ops, channels.
-- Writes are committed in another session (pgtest helpers) and the notifications they really
-- sent are read back from a listening session.
SELECT plan(43);

SELECT pgtest.exec($$
  CREATE TABLE public.rt_users (id int PRIMARY KEY, username text, email text, secret text);
  SELECT pgfanout.watch('public.rt_users');
$$);
SELECT pgtest.listen('rt_users_changed');

-- INSERT
CREATE TEMP TABLE n_ins AS
  SELECT * FROM pgtest.notifications_of($$INSERT INTO rt_users VALUES (1, 'ann', 'ann@example.com', 's3')$$);
SELECT is((SELECT count(*)::int FROM n_ins), 1, 'INSERT sends one notification');
SELECT is((SELECT channel FROM n_ins), 'rt_users_changed', 'default channel is <table>_changed');
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM n_ins),
  '{"v":1,"op":"INSERT","schema":"public","table":"rt_users",
    "new":{"id":1,"username":"ann","email":"ann@example.com","secret":"s3"}}'::jsonb,
  'INSERT payload carries the new row and no old');
SELECT matches((SELECT payload::jsonb ->> 'txid' FROM n_ins), '^[0-9]+$', 'txid is a decimal string');
SELECT is((SELECT jsonb_typeof(payload::jsonb -> 'txid') FROM n_ins), 'string', 'txid is a JSON string');
SELECT matches((SELECT payload::jsonb ->> 'at' FROM n_ins),
  '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', 'at is UTC ISO-8601 with milliseconds and Z');
SELECT ok(abs(extract(epoch FROM ((SELECT payload::jsonb ->> 'at' FROM n_ins)::timestamptz - now()))) < 60,
  'at is the time of the write');
SELECT matches((SELECT payload FROM n_ins), '^\{"v":1,"op":"INSERT","schema":"public","table":"rt_users","new":\{',
  'envelope fields come in the documented order');

-- UPDATE
CREATE TEMP TABLE n_upd AS
  SELECT * FROM pgtest.notifications_of($$UPDATE rt_users SET username = 'anne' WHERE id = 1$$);
SELECT is((SELECT count(*)::int FROM n_upd), 1, 'UPDATE sends one notification');
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM n_upd),
  '{"v":1,"op":"UPDATE","schema":"public","table":"rt_users",
    "new":{"id":1,"username":"anne","email":"ann@example.com","secret":"s3"},
    "old":{"id":1,"username":"ann","email":"ann@example.com","secret":"s3"}}'::jsonb,
  'UPDATE payload carries new and old');
SELECT isnt((SELECT payload::jsonb ->> 'txid' FROM n_upd), (SELECT payload::jsonb ->> 'txid' FROM n_ins),
  'another transaction, another txid');

-- UPDATE that changes nothing
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE rt_users SET username = 'anne' WHERE id = 1$$)),
  0, 'an UPDATE that changes nothing sends nothing');

-- DELETE
CREATE TEMP TABLE n_del AS SELECT * FROM pgtest.notifications_of($$DELETE FROM rt_users WHERE id = 1$$);
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM n_del),
  '{"v":1,"op":"DELETE","schema":"public","table":"rt_users",
    "old":{"id":1,"username":"anne","email":"ann@example.com","secret":"s3"}}'::jsonb,
  'DELETE payload carries the old row and no new');

-- Several rows in one statement: one notification each, same txid.
CREATE TEMP TABLE n_multi AS
  SELECT * FROM pgtest.notifications_of($$INSERT INTO rt_users SELECT g, 'u' || g, NULL, NULL FROM generate_series(10, 14) g$$);
SELECT results_eq($$SELECT (payload::jsonb -> 'new' ->> 'id')::int FROM n_multi ORDER BY n$$,
  ARRAY[10, 11, 12, 13, 14], 'a five-row INSERT sends five notifications in row order');
SELECT is((SELECT count(DISTINCT payload::jsonb ->> 'txid')::int FROM n_multi), 1, 'all with the same txid');

-- A rolled back write sends nothing.
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$BEGIN; INSERT INTO rt_users VALUES (2, 'x'); ROLLBACK$$)),
  0, 'a rolled back INSERT sends nothing');

-- columns: new/old carry only those plus the primary key.
SELECT pgtest.exec($$SELECT pgfanout.watch('rt_users', columns => '{username}')$$);
CREATE TEMP TABLE n_cols AS
  SELECT * FROM pgtest.notifications_of($$UPDATE rt_users SET username = 'v10', email = 'e' WHERE id = 10$$);
SELECT is((SELECT payload::jsonb -> 'new' FROM n_cols), '{"id":10,"username":"v10"}'::jsonb,
  'columns limits new to those columns and the key');
SELECT is((SELECT payload::jsonb -> 'old' FROM n_cols), '{"id":10,"username":"u10"}'::jsonb,
  'columns limits old the same way');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE rt_users SET secret = 'changed' WHERE id = 10$$)),
  0, 'an UPDATE of unwatched columns only sends nothing');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'rt_users'::regclass AND tgname LIKE 'pgfanout%'),
  1, 'watching again replaces the trigger');

-- changed: only a change of these columns counts; new/old still carry every column.
SELECT pgtest.exec($$SELECT pgfanout.watch('rt_users', changed => '{email}')$$);
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE rt_users SET username = 'w10' WHERE id = 10$$)),
  0, 'an UPDATE outside changed sends nothing');
CREATE TEMP TABLE n_chg AS
  SELECT * FROM pgtest.notifications_of($$UPDATE rt_users SET email = 'new@example.com' WHERE id = 10$$);
SELECT is((SELECT count(*)::int FROM n_chg), 1, 'an UPDATE of a changed column is sent');
SELECT is((SELECT payload::jsonb -> 'new' FROM n_chg),
  '{"id":10,"username":"w10","email":"new@example.com","secret":"changed"}'::jsonb,
  'with changed and no columns, new carries every column');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$DELETE FROM rt_users WHERE id = 14$$)),
  1, 'changed does not filter DELETE');

-- ops
SELECT pgtest.exec($$SELECT pgfanout.watch('rt_users', ops => '{delete}')$$);
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$INSERT INTO rt_users VALUES (20, 'x'); UPDATE rt_users SET username = 'y' WHERE id = 20$$)),
  0, 'ops => {delete}: INSERT and UPDATE send nothing');
SELECT is((SELECT payload::jsonb ->> 'op' FROM pgtest.notifications_of($$DELETE FROM rt_users WHERE id = 20$$)),
  'DELETE', 'ops => {delete}: DELETE is sent (ops are case-insensitive)');
SELECT is((SELECT ops FROM pgfanout.watches WHERE tbl = 'rt_users'::regclass), '{DELETE}'::text[], 'watches shows the ops');

-- A channel name is case-sensitive and may contain spaces.
SELECT pgtest.exec($$SELECT pgfanout.watch('rt_users', channel => 'Users Feed')$$);
SELECT pgtest.listen('users feed');
SELECT pgtest.listen('Users Feed');
CREATE TEMP TABLE n_chan AS SELECT * FROM pgtest.notifications_of($$INSERT INTO rt_users VALUES (21, 'x')$$);
SELECT results_eq($$SELECT channel FROM n_chan$$, ARRAY['Users Feed'], 'the notification goes to the exact channel');

-- watches view and unwatch
SELECT is(
  (SELECT row(channel, columns, ops, changed, per_statement, durable, key_columns)::text
     FROM pgfanout.watches WHERE tbl = 'rt_users'::regclass),
  row('Users Feed', NULL::text[], '{DELETE,INSERT,UPDATE}'::text[], NULL::text[], false, false, '{id}'::text[])::text,
  'watches lists channel, columns, ops, changed, per_statement, durable and key');
SELECT is(pgtest.value($$SELECT pgfanout.unwatch('rt_users')$$), 't', 'unwatch returns true for a watched table');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$INSERT INTO rt_users VALUES (22, 'x')$$)),
  0, 'after unwatch nothing is sent');
SELECT is_empty($$SELECT 1 FROM pgfanout.watches WHERE tbl = 'rt_users'::regclass$$, 'unwatch removes it from watches');
SELECT is_empty($$SELECT 1 FROM pg_trigger WHERE tgrelid = 'rt_users'::regclass$$, 'unwatch drops the trigger');
SELECT is(pgtest.value($$SELECT pgfanout.unwatch('rt_users')$$), 'f', 'unwatch of an unwatched table returns false');

-- A table without primary key: all columns, truncation without row data (see 30_size_guard).
SELECT pgtest.exec($$
  CREATE TABLE public.rt_nokey (a int, b text);
  SELECT pgfanout.watch('rt_nokey', columns => '{b}');
$$);
SELECT pgtest.listen('rt_nokey_changed');
SELECT is((SELECT payload::jsonb -> 'new' FROM pgtest.notifications_of($$INSERT INTO rt_nokey VALUES (1, 'x')$$)),
  '{"b":"x"}'::jsonb, 'a keyless table: columns are taken as given');
SELECT is((SELECT key_source FROM pgfanout.watches WHERE tbl = 'rt_nokey'::regclass), 'none', 'its key source is none');

-- A REPLICA IDENTITY index stands in for a missing primary key.
SELECT pgtest.exec($$
  CREATE TABLE public.rt_ident (code text NOT NULL, region text NOT NULL, note text, extra text);
  CREATE UNIQUE INDEX rt_ident_code ON rt_ident (region, code);
  ALTER TABLE rt_ident REPLICA IDENTITY USING INDEX rt_ident_code;
  SELECT pgfanout.watch('rt_ident', columns => '{note}');
$$);
SELECT pgtest.listen('rt_ident_changed');
SELECT is((SELECT payload::jsonb -> 'new' FROM pgtest.notifications_of($$INSERT INTO rt_ident VALUES ('c', 'eu', 'n', 'x')$$)),
  '{"code":"c","region":"eu","note":"n"}'::jsonb, 'the replica identity columns are the key');
SELECT is((SELECT key_columns FROM pgfanout.watches WHERE tbl = 'rt_ident'::regclass), '{region,code}'::text[],
  'key columns in index order');

-- A partitioned table: the payload names the watched table, not the partition.
SELECT pgtest.exec($$
  CREATE TABLE public.rt_parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
  CREATE TABLE public.rt_parted_1 PARTITION OF rt_parted FOR VALUES FROM (0) TO (100);
  SELECT pgfanout.watch('rt_parted');
$$);
SELECT pgtest.listen('rt_parted_changed');
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM pgtest.notifications_of($$INSERT INTO rt_parted VALUES (5, 'p')$$)),
  '{"v":1,"op":"INSERT","schema":"public","table":"rt_parted","new":{"id":5,"v":"p"}}'::jsonb,
  'a partitioned table reports itself as the table');

-- A renamed table reports its new name.
SELECT pgtest.exec($$ALTER TABLE rt_nokey RENAME TO rt_nokey_renamed$$);
SELECT is((SELECT payload::jsonb ->> 'table' FROM pgtest.notifications_of($$INSERT INTO rt_nokey_renamed VALUES (2, 'y')$$)),
  'rt_nokey_renamed', 'a renamed table reports its new name on the same channel');

-- Arguments watch() refuses.
SELECT throws_like($$SELECT pgfanout.watch('rt_ident', columns => '{nope}')$$,
  '%has no column(s) {nope}%', 'an unknown column is an error');
SELECT throws_like($$SELECT pgfanout.watch('rt_ident', ops => '{TRUNCATE}')$$,
  '%ops must be a non-empty subset%', 'an unknown op is an error');
SELECT throws_like($$SELECT pgfanout.watch('rt_ident', channel => repeat('c', 64))$$,
  '%must be 1 to 63 bytes long%', 'a channel NOTIFY would refuse is an error');

SELECT * FROM finish();
