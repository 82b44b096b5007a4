-- Odd identifiers: capitals, spaces, quotes, semicolons. Names must arrive intact and must not
-- be able to inject SQL into the generated triggers.
SELECT plan(14);

SELECT pgtest.exec($$
  CREATE SCHEMA "Odd Schema";
  CREATE TABLE "Odd Schema"."Odd ""Name"" t" ("Id" int PRIMARY KEY, "My Col" text, "x'); DROP TABLE public.victim; --" text);
  CREATE TABLE public.victim (id int);
  SELECT pgfanout.watch('"Odd Schema"."Odd ""Name"" t"');
$$);
SELECT pgtest.listen('Odd "Name" t_changed');

CREATE TEMP TABLE q_ins AS SELECT * FROM pgtest.notifications_of($$
  INSERT INTO "Odd Schema"."Odd ""Name"" t" VALUES (1, 'it''s "quoted"', 'z')
$$);
SELECT is((SELECT channel FROM q_ins), 'Odd "Name" t_changed', 'the default channel keeps the table name as is');
SELECT is((SELECT payload::jsonb ->> 'schema' FROM q_ins), 'Odd Schema', 'schema name in the payload');
SELECT is((SELECT payload::jsonb ->> 'table' FROM q_ins), 'Odd "Name" t', 'table name in the payload');
SELECT is((SELECT payload::jsonb -> 'new' FROM q_ins),
  jsonb_build_object('Id', 1, 'My Col', 'it''s "quoted"', 'x''); DROP TABLE public.victim; --', 'z'),
  'odd column names and values arrive intact');

SELECT pgtest.exec($$
  SELECT pgfanout.watch('"Odd Schema"."Odd ""Name"" t"', channel => 'chan''); DROP TABLE public.victim; --',
                        columns => '{"My Col"}', changed => '{"My Col"}');
$$);
SELECT pgtest.listen('chan''); DROP TABLE public.victim; --');
CREATE TEMP TABLE q_upd AS SELECT * FROM pgtest.notifications_of($$
  UPDATE "Odd Schema"."Odd ""Name"" t" SET "My Col" = 'b' WHERE "Id" = 1
$$);
SELECT is((SELECT channel FROM q_upd), 'chan''); DROP TABLE public.victim; --', 'a channel with quotes works');
SELECT is((SELECT payload::jsonb -> 'new' FROM q_upd), '{"Id":1,"My Col":"b"}'::jsonb,
  'a column list with a spaced name, plus the capitalised key');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$
  UPDATE "Odd Schema"."Odd ""Name"" t" SET "x'); DROP TABLE public.victim; --" = 'q' WHERE "Id" = 1
$$)), 0, 'changed with a spaced name filters');

SELECT pgtest.exec($$
  SELECT pgfanout.watch('"Odd Schema"."Odd ""Name"" t"', per_statement => true);
$$);
SELECT is((SELECT payload::jsonb -> 'rows' FROM pgtest.notifications_of($$
  DELETE FROM "Odd Schema"."Odd ""Name"" t"
$$)), jsonb_build_array(jsonb_build_object('old',
  jsonb_build_object('Id', 1, 'My Col', 'b', 'x''); DROP TABLE public.victim; --', 'q'))),
  'per-statement on the odd table');

SELECT has_table('public', 'victim', 'nothing was injected');
SELECT is(pgtest.value($$SELECT pgfanout.unwatch('"Odd Schema"."Odd ""Name"" t"')$$), 't', 'unwatch of the odd table');
SELECT is_empty($$SELECT 1 FROM pg_trigger WHERE tgrelid = '"Odd Schema"."Odd ""Name"" t"'::regclass$$,
  'its triggers are gone');

-- Words that are keywords only in PL/pgSQL (quote_ident leaves them bare) as column names, in a
-- per-row watch with changed: (the generated code reads NEW.<column> and OLD.<column>).
SELECT pgtest.exec($$
  CREATE TABLE public.kw (id int PRIMARY KEY, "by" text, "open" text, "alias" int);
  SELECT pgfanout.watch('public.kw', changed => '{by,open}');
$$);
SELECT pgtest.listen('kw_changed');
SELECT is((SELECT payload::jsonb -> 'new' FROM pgtest.notifications_of($$
  INSERT INTO public.kw VALUES (1, 'ann', 'yes', 2)
$$)), '{"id":1,"by":"ann","open":"yes","alias":2}'::jsonb, 'columns named by, open and alias');
SELECT is((SELECT payload::jsonb -> 'old' ->> 'by' FROM pgtest.notifications_of($$
  UPDATE public.kw SET "by" = 'bob'
$$)), 'ann', 'changed: on a column named by');

-- Error messages quote the name so it can be pasted back.
SELECT throws_like($$SELECT pgfanout.watch('"Odd Schema"."Odd ""Name"" t"', columns => '{"my col"}')$$,
  '%"Odd Schema"."Odd ""Name"" t" has no column(s) {"my col"}%', 'column names are case-sensitive');

SELECT * FROM finish();
