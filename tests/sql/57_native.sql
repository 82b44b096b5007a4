-- Native watch triggers (sql/native): chosen when available and not switched off, switched back
-- and forth by pgfanout.native and rewatch(), safe against bad trigger arguments, and right on a
-- partition whose columns are numbered differently from its parent's. The byte-for-byte
-- comparison with the PL/pgSQL functions is 55_legacy_compare.sql, run with native triggers
-- by the sql_triggers_native_pgtest test. Skipped where the server has no native triggers.
SELECT plan(16);

-- A trigger on nt_bad (level: ROW or STATEMENT) calling fn with the given arguments: an INSERT
-- must fail with an error like pattern.
CREATE FUNCTION pg_temp.bad_trigger(timing text, args text, pattern text, label text,
  level text DEFAULT 'ROW', fn text DEFAULT 'native_row') RETURNS text
LANGUAGE plpgsql AS $b$
BEGIN
  PERFORM pgtest.exec(format('DROP TRIGGER IF EXISTS bad ON public.nt_bad; '
                             'CREATE TRIGGER bad %s INSERT ON public.nt_bad FOR EACH %s '
                             'EXECUTE FUNCTION pgfanout.%I(%s)', timing, level, fn, args));
  RETURN throws_like($$SELECT pgtest.exec('INSERT INTO nt_bad VALUES (1)')$$, pattern, label);
END
$b$;

CREATE FUNCTION pg_temp.native_tests() RETURNS SETOF text LANGUAGE plpgsql AS $t$
DECLARE
  fn text;
BEGIN
  IF NOT pgfanout.native_enabled() THEN
    RETURN NEXT skip('native triggers are not enabled on this server or database', 16);
    RETURN;
  END IF;

  PERFORM pgtest.exec($$
    CREATE TABLE public.nt (id int PRIMARY KEY, name text, note text);
    SELECT pgfanout.watch('public.nt', columns => '{name}');
  $$);
  PERFORM pgtest.listen('nt_changed');
  RETURN NEXT is((SELECT p.proname::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                   WHERE t.tgrelid = 'public.nt'::regclass), 'native_row', 'watch() makes a native row trigger');
  RETURN NEXT is((SELECT native FROM pgfanout.watches WHERE tbl = 'public.nt'::regclass), true,
                 'the watches view says so');
  RETURN NEXT is((SELECT payload::jsonb - 'txid' - 'at' FROM pgtest.notifications_of($$INSERT INTO nt VALUES (1, 'a', 'x')$$)),
                 '{"v":1,"op":"INSERT","schema":"public","table":"nt","new":{"id":1,"name":"a"}}'::jsonb,
                 'it sends the envelope with the carried columns and the key');

  -- Switched off for this session: rewatch() goes back to generated functions, and on again.
  SET LOCAL pgfanout.native = off;
  RETURN NEXT is(pgfanout.rewatch(tables => ARRAY['public.nt'::regclass]), 1, 'with pgfanout.native = off rewatch() re-creates it');
  SELECT p.proname::text INTO fn FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = 'public.nt'::regclass;
  RETURN NEXT matches(fn, '^watch_[0-9]+$', '... with a generated PL/pgSQL function');
  SET LOCAL pgfanout.native = on;
  RETURN NEXT is(pgfanout.rewatch(tables => ARRAY['public.nt'::regclass]), 1, 'and back on');
  RETURN NEXT is((SELECT native FROM pgfanout.watch_registry WHERE tbl = 'public.nt'::regclass), true, '... native again');

  -- A partitioned table whose partition has its columns in another order and a dropped one:
  -- the row trigger fires on the partition, finds the columns by name and names the parent.
  PERFORM pgtest.exec($$
    CREATE TABLE public.nt_parted (region text NOT NULL, id int NOT NULL, v numeric, PRIMARY KEY (region, id))
      PARTITION BY LIST (region);
    CREATE TABLE public.nt_eu (junk int, v numeric, id int NOT NULL, region text NOT NULL);
    ALTER TABLE public.nt_eu DROP COLUMN junk;
    ALTER TABLE public.nt_parted ATTACH PARTITION public.nt_eu FOR VALUES IN ('eu');
    SELECT pgfanout.watch('public.nt_parted');
  $$);
  PERFORM pgtest.listen('nt_parted_changed');
  RETURN NEXT is((SELECT payload::jsonb - 'txid' - 'at'
                    FROM pgtest.notifications_of($$UPDATE nt_parted SET v = 2.50 WHERE id = 7$$)), NULL::jsonb,
                 'no row, no notification');
  RETURN NEXT is((SELECT payload::jsonb - 'txid' - 'at'
                    FROM pgtest.notifications_of($$INSERT INTO nt_parted VALUES ('eu', 7, 1.50)$$)),
                 '{"v":1,"op":"INSERT","schema":"public","table":"nt_parted","new":{"id":7,"v":1.50,"region":"eu"}}'::jsonb,
                 'a partition with other column numbers sends the right values under the parent''s name');

  -- Per statement, an UPDATE pairs the images of a row by its key also when the key's type is
  -- compared through jsonb for "changed" (char(n) ignores trailing spaces; jsonb does not).
  PERFORM pgtest.exec($$
    CREATE TABLE public.nt_char (code char(3) PRIMARY KEY, n int);
    INSERT INTO public.nt_char VALUES ('a', 1), ('b', 2);
    SELECT pgfanout.watch('public.nt_char', per_statement => true);
  $$);
  PERFORM pgtest.listen('nt_char_changed');
  RETURN NEXT is((SELECT payload::jsonb -> 'rows' FROM pgtest.notifications_of($$UPDATE nt_char SET n = n + 1$$)),
                 '[{"new":{"n":2,"code":"a  "},"old":{"n":1,"code":"a  "}},
                   {"new":{"n":3,"code":"b  "},"old":{"n":2,"code":"b  "}}]'::jsonb,
                 'per statement, an UPDATE of a char(n)-keyed table pairs old and new by key');

  -- Bad arguments (a trigger not made by watch()) fail the write with a clear error, no crash.
  PERFORM pgtest.exec('CREATE TABLE public.nt_bad (id int PRIMARY KEY)');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch'$$, '%too few arguments%', 'too few arguments: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'nope', '0', '0'$$,
                                  '%"nope"%does not exist%', 'a column that is not there: an error naming it');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', 'x', 'id', '0', '0'$$,
                                  '%malformed arguments%', 'a count that is not a number: an error');
  RETURN NEXT pg_temp.bad_trigger('BEFORE', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'id', '0', '0'$$,
                                  '%AFTER ROW trigger%', 'a BEFORE trigger: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'id', '0', '0'$$,
                                  '%AFTER STATEMENT trigger%', 'native_statement for each row: an error',
                                  'ROW', 'native_statement');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'id', '0', '0'$$,
                                  '%no transition table%', 'native_statement without its transition table: an error',
                                  'STATEMENT', 'native_statement');
END
$t$;

SELECT * FROM pg_temp.native_tests();
SELECT * FROM finish();
