-- The generated row-level trigger functions have no SET search_path: they run under the writer's.
-- A schema placed before pg_catalog on it, full of look-alike functions, operators and types that
-- would each change the payload (or fail) if the body used them, changes nothing: the payloads
-- are the same text as under a plain search_path (but for txid and at).
SELECT plan(4);

SELECT pgtest.exec($$
  CREATE TABLE public.sp (id int PRIMARY KEY, name text NOT NULL, vc varchar(10), n numeric, ts timestamptz,
                          jb jsonb, js json, p point, big text);
  SELECT pgfanout.watch('sp');
  CREATE TABLE public.sp_stmt (id int PRIMARY KEY, name text, vc varchar(10));
  SELECT pgfanout.watch('sp_stmt', per_statement => true);
  CREATE TABLE public.sp_durable (id int PRIMARY KEY, name text, vc varchar(10));
  SELECT pgfanout.watch('sp_durable', durable => true);
$$);
SELECT pgtest.listen('sp_changed');
SELECT pgtest.listen('sp_stmt_changed');

-- The writes use no operator or function, so that they do the same under both search paths.
CREATE TEMP TABLE sp_writes (k int, sql text);
INSERT INTO sp_writes VALUES
 (1, $w$INSERT INTO sp VALUES (1, 'a "q"', 'v', 1.50, '2026-11-22 10:00:00.5+00', '{"a": 1}', '{"b":2}', '(1,2)', NULL)$w$),
 (2, $w$UPDATE sp SET vc = 'w' WHERE id OPERATOR(pg_catalog.=) 1$w$),
 (3, $w$UPDATE sp SET name = 'b', n = 2 WHERE id OPERATOR(pg_catalog.=) 1$w$),
 (4, $w$UPDATE sp SET jb = '{"a": 2}', p = '(3,4)' WHERE id OPERATOR(pg_catalog.=) 1$w$),
 (5, $w$UPDATE sp SET vc = 'w' WHERE id OPERATOR(pg_catalog.=) 1$w$),   -- no change: nothing sent
 (6, $w$INSERT INTO sp (id, name, big) VALUES (2, 'big', repeat('x', 9000))$w$),  -- over the limit
 (7, $w$DELETE FROM sp$w$),
 (8, $w$INSERT INTO sp_stmt VALUES (1, 'a', 'v'), (2, 'b', 'w')$w$),
 (9, $w$UPDATE sp_stmt SET vc = 'x'$w$),
 (10, $w$DELETE FROM sp_stmt$w$),
 (11, $w$INSERT INTO sp_durable VALUES (1, 'a', 'v'); UPDATE sp_durable SET vc = 'w'; DELETE FROM sp_durable$w$);

-- The payloads of all writes run with the given search_path, txid and at cut off; the outbox's
-- payloads (without txid and at) follow them.
CREATE FUNCTION pg_temp.sent(path text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  w record;
  acc text := '';
BEGIN
  DELETE FROM pgfanout.outbox WHERE channel = 'sp_durable_changed';
  FOR w IN SELECT * FROM sp_writes ORDER BY k LOOP
    acc := acc || coalesce((SELECT string_agg(regexp_replace(payload, ',"txid":"[0-9]+","at":"[^"]*"}$', '}'), E'\n' ORDER BY n)
                              FROM pgtest.notifications_of(format('SET search_path = %s; %s', path, w.sql))), '-')
               || E'\n';
  END LOOP;
  PERFORM pgtest.exec('RESET search_path');
  RETURN acc || (SELECT string_agg((payload - 'txid' - 'at')::text, E'\n' ORDER BY id)
                   FROM pgfanout.outbox WHERE channel = 'sp_durable_changed');
END
$$;

CREATE TEMP TABLE sp_plain AS SELECT pg_temp.sent('public') AS t;

-- The look-alikes: each would show in the payload, suppress it, or fail the write.
SELECT pgtest.exec($$
  CREATE SCHEMA evil;
  CREATE FUNCTION evil.cat(text, text) RETURNS text LANGUAGE sql AS $f$SELECT 'pwned'::pg_catalog.text$f$;
  CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.cat);
  DO $d$
  DECLARE
    o record;
  BEGIN
    FOR o IN SELECT * FROM (VALUES ('=', 'int4', 'true'), ('=', 'text', 'true'), ('=', 'varchar', 'true'),
                                   ('=', 'numeric', 'true'), ('=', 'jsonb', 'true'), ('=', 'timestamptz', 'true'),
                                   ('<>', 'text', 'false'), ('<=', 'int4', 'false')) AS v(op, typ, res) LOOP
      EXECUTE format('CREATE FUNCTION evil.%I(%s, %s) RETURNS boolean LANGUAGE sql AS %L',
                     'f_' || o.typ || '_' || md5(o.op), o.typ, o.typ, 'SELECT ' || o.res);
      EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.%I)',
                     o.op, o.typ, o.typ, 'f_' || o.typ || '_' || md5(o.op));
    END LOOP;
  END
  $d$;
  CREATE FUNCTION evil.to_json(text) RETURNS json LANGUAGE sql AS $f$SELECT '"pwned"'::pg_catalog.json$f$;
  CREATE FUNCTION evil.to_json(numeric) RETURNS json LANGUAGE sql AS $f$SELECT '"pwned"'::pg_catalog.json$f$;
  CREATE FUNCTION evil.to_json(timestamptz) RETURNS json LANGUAGE sql AS $f$SELECT '"pwned"'::pg_catalog.json$f$;
  CREATE FUNCTION evil.to_jsonb(point) RETURNS jsonb LANGUAGE sql AS $f$SELECT '"pwned"'::pg_catalog.jsonb$f$;
  CREATE FUNCTION evil.to_jsonb(json) RETURNS jsonb LANGUAGE sql AS $f$SELECT '"pwned"'::pg_catalog.jsonb$f$;
  CREATE FUNCTION evil.octet_length(text) RETURNS int LANGUAGE sql AS 'SELECT 99999';
  CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS
    $f$BEGIN RAISE EXCEPTION 'evil.pg_notify called'; END$f$;
  CREATE FUNCTION evil.pg_current_xact_id() RETURNS xid8 LANGUAGE sql AS $f$SELECT '1'::pg_catalog.xid8$f$;
  CREATE FUNCTION evil.to_char(timestamp, text) RETURNS text LANGUAGE sql AS $f$SELECT 'pwned'::pg_catalog.text$f$;
  CREATE DOMAIN evil.text AS pg_catalog.text CHECK (VALUE OPERATOR(pg_catalog.=) 'never');
  CREATE DOMAIN evil.jsonb AS pg_catalog.jsonb CHECK (false);
  CREATE DOMAIN evil.int8 AS pg_catalog.int8 CHECK (false);
$$);

-- The look-alikes do work where a name is not qualified (so the next tests prove something).
SELECT is(pgtest.value($$SET search_path = evil, pg_catalog, public;
                          SELECT ('a' || 'b') || to_json('x'::pg_catalog.text)::pg_catalog.text$$),
  'pwned', 'the look-alike schema takes over unqualified names');
SELECT pgtest.exec('RESET search_path');

SELECT is(pg_temp.sent('evil, pg_catalog, public'), (SELECT t FROM sp_plain),
  'with look-alikes before pg_catalog on search_path, every payload is unchanged');
SELECT is(pg_temp.sent('evil, public'), (SELECT t FROM sp_plain),
  'with look-alikes first and pg_catalog implied, every payload is unchanged');
SELECT ok((SELECT t FROM sp_plain) LIKE '%"new":{"id": 2},"truncated":true%'
          AND (SELECT t FROM sp_plain) LIKE '%"op":"DELETE"%' AND (SELECT t FROM sp_plain) LIKE '%"part":1%',
  'the writes did send payloads (plain, truncated, per statement)');

SELECT pgtest.exec('DROP SCHEMA evil CASCADE');
SELECT * FROM finish();
