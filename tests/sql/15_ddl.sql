-- Generated trigger functions follow the table: renamed, added and dropped columns, a renamed
-- table and schema, DROP TABLE, and the same without the event triggers (rewatch() then fixes it).
SELECT plan(15);

SELECT pgtest.exec($$
  CREATE TABLE public.dd (id int PRIMARY KEY, a text, b text, c text);
  SELECT pgfanout.watch('dd', columns => '{a}', changed => '{a}');
  CREATE TABLE public.dd_all (id int PRIMARY KEY, a text);
  SELECT pgfanout.watch('dd_all', per_statement => true);
$$);
SELECT pgtest.listen('dd_changed');
SELECT pgtest.listen('dd_all_changed');

-- A renamed column listed in columns and changed: followed, under its new name.
SELECT pgtest.exec($$ALTER TABLE dd RENAME COLUMN a TO "A 2"$$);
SELECT is((SELECT payload::jsonb -> 'new' FROM pgtest.notifications_of($$INSERT INTO dd VALUES (1, 'x', 'y', 'z')$$)),
  '{"id":1,"A 2":"x"}'::jsonb, 'a renamed carried column arrives under its new name');
SELECT is((SELECT columns FROM pgfanout.watches WHERE tbl = 'dd'::regclass), '{"A 2"}'::text[], 'watches shows the new name');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE dd SET "A 2" = 'x2' WHERE id = 1$$)), 1,
  'the renamed changed column still counts');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE dd SET b = 'y2' WHERE id = 1$$)), 0,
  '... and the others still do not');

-- Renaming the key and the table.
SELECT pgtest.exec($$ALTER TABLE dd RENAME COLUMN id TO "Id"; ALTER TABLE dd RENAME TO dd_renamed$$);
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM pgtest.notifications_of($$DELETE FROM dd_renamed$$)),
  '{"v":1,"op":"DELETE","schema":"public","table":"dd_renamed","old":{"Id":1,"A 2":"x2"}}'::jsonb,
  'a renamed key and table: new names in the payload, same channel');

-- A renamed schema: the payload carries the new name (the names are compiled into the function).
SELECT pgtest.exec($$CREATE SCHEMA dd_s; CREATE TABLE dd_s.t (id int PRIMARY KEY); SELECT pgfanout.watch('dd_s.t', 'dd_s_changed');
                    ALTER SCHEMA dd_s RENAME TO "dd S2"$$);
SELECT pgtest.listen('dd_s_changed');
SELECT is((SELECT payload::jsonb - 'txid' - 'at' FROM pgtest.notifications_of($$INSERT INTO "dd S2".t VALUES (1)$$)),
  '{"v":1,"op":"INSERT","schema":"dd S2","table":"t","new":{"id":1}}'::jsonb, 'a renamed schema: its new name in the payload');

-- All columns, per statement: an added column is carried, a dropped one is gone, writes work.
SELECT pgtest.exec($$ALTER TABLE dd_all ADD COLUMN n int DEFAULT 7$$);
SELECT is((SELECT payload::jsonb -> 'rows' FROM pgtest.notifications_of($$INSERT INTO dd_all VALUES (1, 'a')$$)),
  '[{"new":{"id":1,"a":"a","n":7}}]'::jsonb, 'an added column is carried');
SELECT pgtest.exec($$ALTER TABLE dd_all DROP COLUMN a; ALTER TABLE dd_all RENAME COLUMN n TO m$$);
SELECT is((SELECT payload::jsonb -> 'rows' FROM pgtest.notifications_of($$UPDATE dd_all SET m = 8$$)),
  '[{"new":{"id":1,"m":8},"old":{"id":1,"m":7}}]'::jsonb, 'a dropped column is gone, a renamed one renamed');

-- A dropped carried column: the watch goes on without it.
SELECT pgtest.exec($$ALTER TABLE dd_renamed DROP COLUMN "A 2"$$);
SELECT is((SELECT payload::jsonb -> 'new' FROM pgtest.notifications_of($$INSERT INTO dd_renamed VALUES (2, 'b', 'c')$$)),
  '{"Id":2}'::jsonb, 'a dropped carried column: the key still goes');

-- Without the event triggers nothing is regenerated until rewatch().
ALTER EVENT TRIGGER pgfanout_watch_ddl DISABLE;
SELECT pgtest.exec($$ALTER TABLE dd_all RENAME COLUMN m TO k$$);
SELECT throws_like($$SELECT * FROM pgtest.notifications_of('UPDATE dd_all SET k = 9')$$, '%m%does not exist%',
  'without the event trigger a stale function refuses the write (see docs/triggers.md)');
SELECT is(pgfanout.rewatch(), 1, 'rewatch notices the changed columns');
SELECT is((SELECT payload::jsonb -> 'rows' -> 0 -> 'new' FROM pgtest.notifications_of($$UPDATE dd_all SET k = 10$$)),
  '{"id":1,"k":10}'::jsonb, '... and after it the payload is right');
ALTER EVENT TRIGGER pgfanout_watch_ddl ENABLE;

-- DROP TABLE: the registry forgets it and its generated functions go.
CREATE TEMP TABLE dd_fns AS
  SELECT p.oid, p.prolang FROM pg_proc p JOIN pg_trigger t ON t.tgfoid = p.oid WHERE t.tgrelid = 'dd_all'::regclass;
SELECT is((SELECT count(*)::int FROM dd_fns), 3, 'a per-statement watch has three triggers');
SELECT pgtest.exec($$DROP TABLE dd_all$$);
-- (Native triggers share pgfanout.native_statement, which stays.)
SELECT is((SELECT count(*)::int FROM pg_proc
            WHERE oid IN (SELECT oid FROM dd_fns WHERE prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c'))),
  0, 'DROP TABLE drops its generated functions');
SELECT is((SELECT count(*)::int FROM pgfanout.watch_registry WHERE tbl::oid NOT IN (SELECT oid FROM pg_class)), 0,
  'and the registry forgets the table');

SELECT * FROM finish();
