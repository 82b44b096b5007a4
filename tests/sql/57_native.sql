-- Native watch triggers (sql/native): chosen when available and not switched off, switched back
-- and forth by pgfanout.native and rewatch(), safe against bad trigger arguments, and right on a
-- partition whose columns are numbered differently from its parent's. The byte-for-byte
-- comparison with the PL/pgSQL functions is 55_legacy_compare.sql, run with native triggers
-- by the sql_triggers_native_pgtest test. Skipped where the server has no native triggers.
SELECT plan(29);

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
    RETURN NEXT skip('native triggers are not enabled on this server or database', 29);
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
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'id', '0'$$,
                                  '%too few arguments%', 'the key column list missing: an error');
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
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '99999999999999999999', 'id', '0', '0'$$,
                                  '%malformed arguments (a column count)%', 'a count too large for any number: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '+1', 'id', '0', '0'$$,
                                  '%malformed arguments (a column count)%', 'a count with a sign: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'id', '0', '2', 'id', 'id'$$,
                                  '%names column "id" twice%', 'a column named twice in one list: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'x', '7999', '1', 'id', '0', '0'$$,
                                  '%durable is neither t nor f%', 'durable neither t nor f: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '9000', '1', 'id', '0', '0'$$,
                                  '%malformed arguments (the NOTIFY limit)%', 'a NOTIFY limit above NOTIFY''s: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '100', '1', 'id', '0', '0'$$,
                                  '%the NOTIFY limit is under 1024%', 'a NOTIFY limit too small for an envelope: an error');
  RETURN NEXT pg_temp.bad_trigger('AFTER', $$'ch', 'public', 'nt_bad', 'f', '7999', '1', 'id', '0', '1', 'id', 'extra'$$,
                                  '%arguments after the key columns%', 'arguments left over: an error');

  -- A key index may name a column twice: the key has it once, and the watch works.
  PERFORM pgtest.exec($$
    CREATE TABLE public.nt_twice (id int NOT NULL, v int);
    CREATE UNIQUE INDEX nt_twice_key ON public.nt_twice (id, id);
    ALTER TABLE public.nt_twice REPLICA IDENTITY USING INDEX nt_twice_key;
    SELECT pgfanout.watch('public.nt_twice', columns => '{v}');
  $$);
  RETURN NEXT is((pgfanout.key_columns('public.nt_twice')).columns, '{id}'::text[], 'an index naming a column twice: the key has it once');
  PERFORM pgtest.listen('nt_twice_changed');
  RETURN NEXT is((SELECT payload::jsonb - 'txid' - 'at' FROM pgtest.notifications_of($$INSERT INTO nt_twice VALUES (4, 5)$$)),
                 '{"v":1,"op":"INSERT","schema":"public","table":"nt_twice","new":{"id":4,"v":5}}'::jsonb,
                 '... and its watch sends the key once');

  -- The trigger functions are not for every role: without EXECUTE on them a role's watch() makes
  -- PL/pgSQL triggers and it cannot put them on a table by hand; granted, it may.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgfanout_native_tester') THEN  -- left by a run that failed
    DROP OWNED BY pgfanout_native_tester;
    DROP ROLE pgfanout_native_tester;
  END IF;
  CREATE ROLE pgfanout_native_tester NOLOGIN;
  CREATE TABLE public.nt_mine (id int PRIMARY KEY);
  ALTER TABLE public.nt_mine OWNER TO pgfanout_native_tester;
  SET LOCAL ROLE pgfanout_native_tester;
  RETURN NEXT is(pgfanout.native_enabled(), false, 'a role without EXECUTE on the native functions: native_enabled() is false');
  RETURN NEXT throws_like($$CREATE TRIGGER mine AFTER INSERT ON public.nt_mine FOR EACH ROW
                             EXECUTE FUNCTION pgfanout.native_row('ch', 'public', 'nt_mine', 'f', '7999', '1', 'id', '0', '0')$$,
                          '%permission denied%', '... and it cannot make a native trigger by hand');
  RESET ROLE;
  GRANT EXECUTE ON FUNCTION pgfanout.native_row(), pgfanout.native_statement() TO pgfanout_native_tester;
  SET LOCAL ROLE pgfanout_native_tester;
  RETURN NEXT is(pgfanout.native_enabled(), true, 'granted EXECUTE, native_enabled() is true for it');
  RESET ROLE;
  DROP OWNED BY pgfanout_native_tester;
  DROP ROLE pgfanout_native_tester;
END
$t$;

SELECT * FROM pg_temp.native_tests();
SELECT * FROM finish();
