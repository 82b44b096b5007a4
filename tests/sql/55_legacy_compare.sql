-- The generated trigger functions send, byte for byte, what version 2's generic functions
-- (tests/sql/helpers/legacy_v2.sql) sent for the same writes. Both watch the same table on two
-- channels, so they see the same statements, txid and time; the payload texts must be equal.
SELECT plan(14);

SELECT pgtest.exec($$
  CREATE TYPE public.cmp_mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN public.cmp_pos AS int CHECK (VALUE > 0);
  CREATE TABLE public.cmp (
    id int PRIMARY KEY, s2 int2, i8 int8, num numeric, f4 float4, f8 float8, t text, vc varchar(20),
    bc char(5), nm name, flag boolean, u uuid, d date, ts timestamp, tstz timestamptz, tm time,
    tmz timetz, iv interval, js json, jb jsonb, b bytea, ia int[], ta text[], pt point, x xml,
    ip inet, mood cmp_mood, pos cmp_pos, "Odd ""Col""" text);
  CREATE TABLE public.cmp_nokey (a int, b text, p point);
  -- For a trigger that fires before both watches, row by row: each row is written out under
  -- another time zone, so a timestamptz text kept from the row before would be wrong.
  CREATE FUNCTION public.cmp_tz_by_row() RETURNS trigger LANGUAGE plpgsql AS $f$
  BEGIN
    PERFORM set_config('TimeZone', CASE WHEN NEW.id % 2 = 0 THEN 'Europe/Berlin' ELSE 'America/New_York' END, false);
    RETURN NULL;
  END $f$;
$$);
SELECT pgtest.listen('cmp_new');
SELECT pgtest.listen('cmp_old');

-- The payloads each side sent for sql, in order, as one text each (so a difference shows whole).
CREATE FUNCTION pg_temp.sent(sql text, OUT new_side text, OUT old_side text, OUT n integer) LANGUAGE sql AS $$
  SELECT string_agg(payload, E'\n' ORDER BY n) FILTER (WHERE channel = 'cmp_new'),
         string_agg(payload, E'\n' ORDER BY n) FILTER (WHERE channel = 'cmp_old'),
         (count(*) FILTER (WHERE channel = 'cmp_new'))::int
    FROM pgtest.notifications_of(sql)
$$;
-- Watches tbl both ways with the same options.
CREATE FUNCTION pg_temp.watch_both(tbl text, opts text) RETURNS void LANGUAGE sql AS $$
  SELECT pgtest.exec(format($q$
    SELECT pgfanout.unwatch(%1$L);
    DO $d$ DECLARE t record; BEGIN
      FOR t IN SELECT tgname FROM pg_trigger WHERE tgrelid = %1$L::regclass AND tgname LIKE 'legacy_watch%%' LOOP
        EXECUTE format('DROP TRIGGER %%I ON %%s', t.tgname, %1$L);
      END LOOP; END $d$;
    SELECT pgfanout.watch(%1$L, channel => 'cmp_new' %2$s);
    SELECT pgfanout_v2.watch(%1$L, channel => 'cmp_old' %2$s);
  $q$, tbl, opts))
$$;

-- Writes covering every type, NULLs, odd values and UPDATEs the JSON comparison treats specially.
CREATE TEMP TABLE writes (k int, sql text);
INSERT INTO writes VALUES
 (1, $w$SET TimeZone = 'Asia/Kolkata';
      INSERT INTO cmp VALUES (1, 2, 9007199254740993, 1.50, 1.5, 1e20, E'a "q" \\ \n\t é €', 'vc', 'ab', 'nm', true,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-11-22', '2026-11-22 10:00:00.5', '2026-11-22 10:00:00.123456+01',
        '10:00', '10:00+02', '1 day 02:00', '{"b" : [1, 2], "a":null}', '{"z": {"y": 1}, "a": "x"}', '\x00ff',
        '{1,NULL,3}', '{"x,y",z}', '(1.5,2)', '<a>x</a>', '10.0.0.1/24', 'ok', 5, 'odd');
      INSERT INTO cmp (id) VALUES (2);
      INSERT INTO cmp (id, f8, f4, num) VALUES (3, 'NaN', '-Infinity', 'NaN'), (4, -0.0, 1.5e-7, 'Infinity')$w$),
 (2, $w$UPDATE cmp SET t = 'changed' WHERE id = 1$w$),
 (3, $w$UPDATE cmp SET num = 1.500, js = '{"a":null, "b":[1,2]}' WHERE id = 1$w$),   -- same JSON: nothing
 (4, $w$UPDATE cmp SET iv = '26 hours' WHERE id = 1$w$),                            -- equal interval, other text
 (5, $w$UPDATE cmp SET pt = '(1.5,2)', x = '<a>x</a>' WHERE id = 1$w$),             -- no equality operator
 (6, $w$UPDATE cmp SET pt = '(3,4)' WHERE id = 1$w$),
 (7, $w$UPDATE cmp SET f8 = f8 WHERE id IN (3, 4); UPDATE cmp SET mood = 'happy', pos = 7, "Odd ""Col""" = 'o2'$w$),
 (8, $w$UPDATE cmp SET id = id + 100 WHERE id IN (1, 2)$w$),
 (9, $w$INSERT INTO cmp (id, t) SELECT g, repeat('x', 10000) FROM generate_series(10, 12) g;
      INSERT INTO cmp (id, t) SELECT g, 'row ' || g FROM generate_series(200, 600) g$w$),
 (10, $w$UPDATE cmp SET t = t || '!' WHERE id % 3 = 0 OR id = 11$w$),
 -- Runs of one timestamp among others and NULLs, across Europe's change to summer time; a
 -- row-level watch writes each row under another time zone (a_tz fires before both watches, row
 -- by row), then all of them under one.
 (11, $w$CREATE OR REPLACE TRIGGER a_tz AFTER INSERT OR UPDATE ON cmp FOR EACH ROW EXECUTE FUNCTION public.cmp_tz_by_row();
       INSERT INTO cmp (id, ts, tstz, d)
       SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE timestamp '2026-11-22 10:00' + (g % 2) * interval '1 hour' END,
              CASE WHEN g % 7 = 0 THEN NULL ELSE timestamptz '2026-03-29 00:00+00' + ((g - 1000) / 4) * interval '20 min' END,
              date '2026-11-22' + g / 5
         FROM generate_series(1000, 1040) g$w$),
 (12, $w$UPDATE cmp SET t = 'u' WHERE id >= 1000$w$),
 (13, $w$DROP TRIGGER IF EXISTS a_tz ON cmp; SET TimeZone = 'Asia/Kolkata'; UPDATE cmp SET i8 = id WHERE id >= 1000$w$),
 (14, $w$DELETE FROM cmp$w$);

-- Runs the writes against both sides; one test per option set.
CREATE FUNCTION pg_temp.compare(label text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  w record;
  r record;
  sent integer := 0;
BEGIN
  -- A run that stopped at a difference may have left write 11's trigger behind.
  PERFORM pgtest.exec('DROP TRIGGER IF EXISTS a_tz ON cmp; TRUNCATE cmp, cmp_nokey');
  FOR w IN SELECT * FROM writes ORDER BY k LOOP
    r := pg_temp.sent(w.sql);
    IF r.new_side IS DISTINCT FROM r.old_side THEN
      RETURN NEXT is(r.new_side, r.old_side, label || ': write ' || w.k);
      RETURN;
    END IF;
    sent := sent + coalesce(r.n, 0);
  END LOOP;
  RETURN NEXT ok(sent > 0, format('%s: the same %s notifications', label, sent));
END
$$;

SELECT pg_temp.watch_both('cmp', '');
SELECT * FROM pg_temp.compare('row level');
SELECT pg_temp.watch_both('cmp', $$, columns => '{t,pt,"Odd \"Col\""}'$$);
SELECT * FROM pg_temp.compare('row level, columns');
SELECT pg_temp.watch_both('cmp', $$, changed => '{iv,pt,x,f8}', ops => '{UPDATE,DELETE}'$$);
SELECT * FROM pg_temp.compare('row level, changed');
SELECT pg_temp.watch_both('cmp', ', per_statement => true');
SELECT * FROM pg_temp.compare('per statement');
SELECT pg_temp.watch_both('cmp', $$, per_statement => true, columns => '{t,js}', changed => '{t}'$$);
SELECT * FROM pg_temp.compare('per statement, columns and changed');

-- A keyless table.
DELETE FROM writes;
INSERT INTO writes VALUES
 (1, $w$INSERT INTO cmp_nokey SELECT g, 'b' || g, point(g, g) FROM generate_series(1, 300) g$w$),
 (2, $w$INSERT INTO cmp_nokey VALUES (0, repeat('z', 9000), NULL)$w$),
 (3, $w$UPDATE cmp_nokey SET b = b || '!' WHERE a % 2 = 0$w$),
 (4, $w$UPDATE cmp_nokey SET p = point(a + 1, a) WHERE a < 50$w$),
 (5, $w$DELETE FROM cmp_nokey$w$);
SELECT pg_temp.watch_both('cmp_nokey', '');
SELECT * FROM pg_temp.compare('keyless, row level');
SELECT pg_temp.watch_both('cmp_nokey', ', per_statement => true');
SELECT * FROM pg_temp.compare('keyless, per statement');
SELECT pg_temp.watch_both('cmp_nokey', $$, per_statement => true, columns => '{b}'$$);
SELECT * FROM pg_temp.compare('keyless, per statement, columns');

-- Durable: the outbox rows of both sides are equal, in order; each side rings its own bell.
CREATE FUNCTION pg_temp.compare_outbox(label text, tbl text, opts text, sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  r record;
  v_new jsonb[];
  v_old jsonb[];
BEGIN
  PERFORM pg_temp.watch_both(tbl, opts || ', durable => true');
  r := pg_temp.sent(sql);
  SELECT array_agg(payload ORDER BY id) FILTER (WHERE channel = 'cmp_new'),
         array_agg(payload ORDER BY id) FILTER (WHERE channel = 'cmp_old') INTO v_new, v_old
    FROM pgfanout.outbox WHERE txid = (SELECT max(txid) FROM pgfanout.outbox);
  RETURN NEXT is(v_new, v_old, label || ': the same outbox events');
  RETURN NEXT is(r.new_side,
    (SELECT string_agg(format('{"v":1,"outbox":true,"id":%s}', id), E'\n' ORDER BY id) FROM pgfanout.outbox
      WHERE channel = 'cmp_new' AND txid = (SELECT max(txid) FROM pgfanout.outbox)
        AND (opts NOT LIKE '%per_statement%' OR id = (SELECT max(id) FROM pgfanout.outbox WHERE channel = 'cmp_new'))),
    label || ': the doorbells name the events (per statement: the last part)');
END
$$;
SELECT * FROM pg_temp.compare_outbox('durable, row level', 'cmp', '',
  $$INSERT INTO cmp (id, t) SELECT g, repeat('d', g * 100) FROM generate_series(1, 150) g$$);
SELECT * FROM pg_temp.compare_outbox('durable, per statement', 'cmp', ', per_statement => true',
  $$UPDATE cmp SET t = t || '?'$$);
SELECT * FROM pg_temp.compare_outbox('durable, per statement, keyless', 'cmp_nokey', ', per_statement => true',
  $$INSERT INTO cmp_nokey SELECT g, repeat('k', 3000), NULL FROM generate_series(1, 600) g$$);

-- Leave nothing behind for the outbox tests.
SELECT pgtest.exec($$SELECT pgfanout.unwatch('cmp'); SELECT pgfanout.unwatch('cmp_nokey');
                     DROP TABLE cmp, cmp_nokey; DELETE FROM pgfanout.outbox$$);

SELECT * FROM finish();
