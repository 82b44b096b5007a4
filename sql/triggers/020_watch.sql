-- Trigger generators: pgfanout.watch / unwatch, the registry they keep, and the trigger functions
-- they generate.
--
-- Trigger format 2 (pgfanout.trigger_format()): watch() generates one trigger function per watched
-- table (per op for per-statement watches), pgfanout.watch_<table oid>[_<op>], with the settings
-- compiled into its body; the triggers take no arguments. Format 1 used the generic functions
-- notify_row / notify_statement with the settings as trigger arguments. Install re-creates every
-- watch whose registry row records another format, and every watch whose table's columns changed
-- since its functions were generated.

CREATE OR REPLACE FUNCTION pgfanout.trigger_format() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT 2 $$;

CREATE TABLE IF NOT EXISTS pgfanout.watch_registry (
  tbl            regclass PRIMARY KEY,
  channel        text NOT NULL,
  columns        text[],
  ops            text[] NOT NULL,
  changed        text[],
  per_statement  boolean NOT NULL DEFAULT false,
  durable        boolean NOT NULL DEFAULT false,
  key_columns    text[] NOT NULL DEFAULT '{}',
  key_source     text NOT NULL DEFAULT 'none',
  trigger_format integer NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pgfanout.watch_registry IS
  'tables watched by pgfanout.watch(); install re-creates their triggers from here on upgrade';
-- Since version 3: the column numbers of columns / changed (so that a renamed column is followed)
-- and the table's columns (number, name, type) the trigger functions were generated for.
ALTER TABLE pgfanout.watch_registry ADD COLUMN IF NOT EXISTS column_nums smallint[];
ALTER TABLE pgfanout.watch_registry ADD COLUMN IF NOT EXISTS changed_nums smallint[];
ALTER TABLE pgfanout.watch_registry ADD COLUMN IF NOT EXISTS shape text;

-- The columns of a table as generated code depends on them: number, name and type of each.
CREATE OR REPLACE FUNCTION pgfanout.table_shape(tbl regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT string_agg(a.attnum || ':' || quote_ident(a.attname) || ':' || a.atttypid || ':' || a.attcollation,
                    ',' ORDER BY a.attnum)
    FROM pg_attribute a
   WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- The schema and name of the table a trigger was created on. A row trigger on a partitioned table
-- is cloned onto each partition and fires there, so TG_TABLE_NAME is the partition's name; follow
-- the clone back to the trigger that watch() created.
CREATE OR REPLACE FUNCTION pgfanout.watched_table(relid oid, trigger_name name,
  OUT schema_name text, OUT table_name text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  t_oid oid;
  t_rel oid := relid;
  t_parent oid;
BEGIN
  SELECT t.oid, t.tgparentid INTO t_oid, t_parent
    FROM pg_trigger t WHERE t.tgrelid = relid AND t.tgname = trigger_name;
  WHILE t_parent IS NOT NULL AND t_parent <> 0 LOOP
    SELECT t.tgrelid, t.tgparentid INTO t_rel, t_parent FROM pg_trigger t WHERE t.oid = t_parent;
  END LOOP;
  SELECT n.nspname, c.relname INTO schema_name, table_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = t_rel;
END
$fn$;

-- Trigger functions are generated per watched table by watch(): the channel, the carried columns,
-- the changed-columns test and the key are compiled into the function's body, so a trigger does
-- no per-row lookup, builds no image of columns it does not carry and calls no helper function.
-- Names in generated code are quoted with format('%I'), values with format('%L').

-- The SQL expression (text) that gives the JSON text to_jsonb(value)::text would give, for a
-- value expression `val` of type typ (a domain counts as its base type); 'null' for NULL. Common
-- types get a cheaper expression with the same output; any other type goes through to_jsonb.
CREATE OR REPLACE FUNCTION pgfanout.json_text_sql(val text, typ oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT 'coalesce(' || CASE
           -- Integers print as JSON numbers already.
           WHEN b.t IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN val || '::text'
           -- JSON strings and literals, escaped as jsonb escapes them; numeric prints its digits
           -- (NaN and infinities become strings, as in jsonb); dates and timestamps use the
           -- same ISO encoding as jsonb.
           WHEN b.t IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype,
                        'bool'::regtype, 'numeric'::regtype, 'uuid'::regtype, 'date'::regtype,
                        'timestamp'::regtype, 'timestamptz'::regtype)
             THEN 'to_json(' || val || ')::text'
           WHEN b.t = 'jsonb'::regtype THEN val || '::text'
           -- float (jsonb re-parses it as numeric: 1e+20 prints as 100000000000000000000), json
           -- (jsonb normalizes it), arrays, composites, PostGIS and anything else.
           ELSE 'to_jsonb(' || val || ')::text'
         END || ', ''null'')'
    FROM (SELECT coalesce(nullif(t.typbasetype, 0), t.oid)::regtype AS t
            FROM pg_type t WHERE t.oid = typ) AS b
$$;

-- The SQL expression (boolean) that is true when a column's value differs between the images
-- `a` and `b`, with the meaning of the jsonb comparison the payload implies. IS DISTINCT FROM on
-- the column itself where the type's equality is exactly "same JSON": integers, numeric (1.0 =
-- 1.00 both ways), text types under a deterministic collation, bool, uuid, dates, timestamps,
-- jsonb. Otherwise the column's jsonb images are compared: types without an equality operator
-- (json, point, xml), and types whose equality ignores what the JSON shows (interval: '1 day' =
-- '24:00:00'; bpchar ignores trailing spaces; case-insensitive collations and citext; float under
-- a low extra_float_digits; arrays compare their bounds, jsonb does not).
CREATE OR REPLACE FUNCTION pgfanout.differs_sql(a text, b text, typ oid, coll oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT CASE
           WHEN x.t IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype,
                        'bool'::regtype, 'uuid'::regtype, 'date'::regtype, 'timestamp'::regtype,
                        'timestamptz'::regtype, 'jsonb'::regtype)
             OR (x.t IN ('text'::regtype, 'varchar'::regtype, 'name'::regtype)
                 AND coalesce((SELECT c.collisdeterministic FROM pg_collation c WHERE c.oid = coll), true))
             THEN a || ' IS DISTINCT FROM ' || b
           ELSE 'to_jsonb(' || a || ') IS DISTINCT FROM to_jsonb(' || b || ')'
         END
    FROM (SELECT coalesce(nullif(t.typbasetype, 0), t.oid)::regtype AS t
            FROM pg_type t WHERE t.oid = typ) AS x
$$;

-- The SQL expression (text) of the jsonb text of an object of the given columns of tbl, taken
-- from the row alias `img` (e.g. NEW): '{"a": 1, "b": "x"}', keys in jsonb's order (shorter
-- first, then bytewise), so that it equals the jsonb text byte for byte.
CREATE OR REPLACE FUNCTION pgfanout.object_sql(tbl regclass, img text, cols text[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT coalesce(
           '''{'' || ' || string_agg(
             quote_literal(CASE WHEN k.i > 1 THEN ', ' ELSE '' END || to_json(k.attname::text)::text || ': ')
               || ' || ' || pgfanout.json_text_sql(img || '.' || quote_ident(k.attname), k.atttypid),
             ' || ' ORDER BY k.i) || ' || ''}''',
           quote_literal('{}'))
    FROM (SELECT a.attname, a.atttypid,
                 row_number() OVER (ORDER BY octet_length(a.attname::text), a.attname::text::bytea) AS i
            FROM pg_attribute a
           WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
             AND a.attname = ANY (cols)) AS k
$$;

-- The SQL expression (boolean): some of cols differs between images a and b; false for none.
CREATE OR REPLACE FUNCTION pgfanout.changed_sql(tbl regclass, a text, b text, cols text[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT coalesce(string_agg(pgfanout.differs_sql(a || '.' || quote_ident(x.attname), b || '.' || quote_ident(x.attname),
                                                  x.atttypid, x.attcollation), ' OR ' ORDER BY x.attnum),
                  'false')
    FROM pg_attribute x
   WHERE x.attrelid = tbl AND x.attnum > 0 AND NOT x.attisdropped AND x.attname = ANY (cols)
$$;

-- The envelope's head as a SQL expression: '{"v":1,"op":"..","schema":..,"table":..' (op_sql
-- gives an op name, which needs no JSON escaping).
CREATE OR REPLACE FUNCTION pgfanout.head_sql(op_sql text, schema_sql text, table_sql text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT quote_literal('{"v":1,"op":"') || ' || ' || op_sql || ' || ' || quote_literal('","schema":')
    || ' || to_json(' || schema_sql || ')::text || '
    || quote_literal(',"table":') || ' || to_json(' || table_sql || ')::text'
$$;

-- The envelope's tail: ',"txid":"..","at":".."}' of this transaction and statement.
CREATE OR REPLACE FUNCTION pgfanout.tail_sql() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT $s$',"txid":"' || pg_current_xact_id()::text || '","at":"' || to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}'$s$
$$;

-- A free name for a generated function of tbl: watch_<table oid><suffix>, or with a counter when
-- a function of that name still serves another table (a name kept through dump and restore).
CREATE OR REPLACE FUNCTION pgfanout.generated_name(tbl regclass, suffix text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_name text;
  i integer := 0;
BEGIN
  LOOP
    v_name := 'watch_' || tbl::oid || suffix || CASE WHEN i > 0 THEN '_' || i ELSE '' END;
    EXIT WHEN NOT EXISTS (
      SELECT 1 FROM pg_proc p JOIN pg_trigger t ON t.tgfoid = p.oid
       WHERE p.pronamespace = 'pgfanout'::regnamespace AND p.proname = v_name AND t.tgrelid <> tbl);
    i := i + 1;
  END LOOP;
  RETURN v_name;
END
$fn$;

-- Generates the row-level trigger function of a watch and returns its name (in schema pgfanout).
-- keep: carried columns (NULL: all); changed: the columns whose change counts (NULL: keep);
-- keys: the key columns.
CREATE OR REPLACE FUNCTION pgfanout.generate_row_function(tbl regclass, channel text, keep text[],
  changed text[], keys text[], durable boolean) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_all text[] := ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum);
  v_keep text[] := coalesce(keep, v_all);
  v_changed text[] := coalesce(changed, keep, v_all);
  v_parted boolean := (SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = tbl);
  v_name text := pgfanout.generated_name(tbl, '');
  v_send text;
BEGIN
  IF durable THEN
    -- The outbox keeps the whole event (no NOTIFY size limit there); NOTIFY only rings the bell.
    v_send := format($s$
  INSERT INTO pgfanout.outbox (channel, payload) VALUES (%1$L, v_payload::jsonb) RETURNING id INTO v_id;
  IF pg_notify(%1$L, '{"v":1,"outbox":true,"id":' || v_id || '}') IS NULL THEN NULL; END IF;$s$, channel);
  ELSE
    -- Over the limit, build_payload makes the key-only (or row-less) form.
    v_send := format($s$
  IF octet_length(v_payload) > %2$s THEN
    v_payload := pgfanout.build_payload(TG_OP, v_schema, v_table, v_new::jsonb, v_old::jsonb, %3$L);
  END IF;
  -- Called in an IF, not by PERFORM: an expression, not a query to start per row.
  IF pg_notify(%1$L, v_payload) IS NULL THEN NULL; END IF;$s$, channel, pgfanout.notify_max_bytes(), keys);
  END IF;

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION pgfanout.%1$I() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $body$
-- Generated by pgfanout.watch(%2$s); re-run watch() to change it.
DECLARE
  v_schema text := TG_TABLE_SCHEMA;
  v_table text := TG_TABLE_NAME;
  v_new text;
  v_old text;
  v_payload text;
  v_id bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_new := %3$s;
  ELSIF TG_OP = 'UPDATE' THEN
    IF NOT (%5$s) THEN
      RETURN NULL;
    END IF;
    v_new := %3$s;
    v_old := %4$s;
  ELSE
    v_old := %4$s;
  END IF;%6$s
  v_payload := %7$s
    || coalesce(',"new":' || v_new, '') || coalesce(',"old":' || v_old, '')
    || %8$s;%9$s
  RETURN NULL;
END
$body$$f$,
    v_name, quote_literal(tbl::text),
    pgfanout.object_sql(tbl, 'NEW', v_keep), pgfanout.object_sql(tbl, 'OLD', v_keep),
    pgfanout.changed_sql(tbl, 'NEW', 'OLD', v_changed),
    CASE WHEN v_parted THEN $s$
  -- A partitioned table: the trigger fires on the partition, the payload names the watched table.
  SELECT w.schema_name, w.table_name INTO v_schema, v_table
    FROM pgfanout.watched_table(TG_RELID, TG_NAME) AS w;$s$ ELSE '' END,
    pgfanout.head_sql('TG_OP', 'v_schema', 'v_table'), pgfanout.tail_sql(), v_send);
  RETURN v_name;
END
$fn$;

-- A per-statement element {"new":..,"old":..} too long for a notification, cut to its key
-- columns and marked truncated; '{"truncated":true}' when there is no key or even that is longer
-- than budget.
CREATE OR REPLACE FUNCTION pgfanout.cut_element(elem text, keys text[], budget integer) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT CASE WHEN cardinality(keys) > 0 AND octet_length(k.e) <= budget THEN k.e
              ELSE '{"truncated":true}' END
    FROM (SELECT '{' || concat_ws(',', '"new":' || pgfanout.jsonb_pick(j -> 'new', keys)::text,
                                       '"old":' || pgfanout.jsonb_pick(j -> 'old', keys)::text)
                 || ',"truncated":true}' AS e
            FROM (SELECT elem::jsonb AS j) AS x) AS k
$$;

-- Generates the statement-level trigger function of a watch for one op (its trigger has the
-- transition tables pgfanout_new / pgfanout_old) and returns its name. One query over the
-- transition tables gives the changed rows' elements {"new":..,"old":..} in order, each cut to
-- its key when alone it would not fit a notification; they are packed into parts that each stay
-- under the NOTIFY limit (about 1 MB in the outbox), sent in order with "part":k,"parts":n.
-- UPDATE pairs old and new rows by key (a row whose key changed gives an old-only and a new-only
-- element); a keyless table pairs the n-th old row with the n-th new row.
CREATE OR REPLACE FUNCTION pgfanout.generate_statement_function(tbl regclass, op text, channel text,
  keep text[], changed text[], keys text[], durable boolean) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_all text[] := ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum);
  v_keep text[] := coalesce(keep, v_all);
  v_changed text[] := coalesce(changed, keep, v_all);
  v_name text := pgfanout.generated_name(tbl, '_' || lower(op));
  v_elem text;      -- an element, from n (new) and o (old)
  v_source text;    -- FROM and WHERE of the rows
  v_max integer := CASE WHEN durable THEN 1048576 ELSE pgfanout.notify_max_bytes() END;
  v_send text;
BEGIN
  IF op = 'INSERT' THEN
    v_elem := $s$'{"new":' || $s$ || pgfanout.object_sql(tbl, 'n', v_keep) || $s$ || '}'$s$;
    v_source := 'FROM pgfanout_new n';
  ELSIF op = 'DELETE' THEN
    v_elem := $s$'{"old":' || $s$ || pgfanout.object_sql(tbl, 'o', v_keep) || $s$ || '}'$s$;
    v_source := 'FROM pgfanout_old o';
  ELSE
    IF cardinality(keys) > 0 THEN
      -- Key columns are NOT NULL, so a NULL key marks the missing side of the full join.
      v_elem := format($s$'{' || concat_ws(',', CASE WHEN n.%1$I IS NOT NULL THEN '"new":' || %2$s END,
                                                CASE WHEN o.%1$I IS NOT NULL THEN '"old":' || %3$s END) || '}'$s$,
                       keys[1], pgfanout.object_sql(tbl, 'n', v_keep), pgfanout.object_sql(tbl, 'o', v_keep));
      v_source := format('FROM pgfanout_new n FULL JOIN pgfanout_old o ON %s WHERE n.%I IS NULL OR o.%I IS NULL OR %s',
                         (SELECT string_agg(format('n.%1$I = o.%1$I', k), ' AND ') FROM unnest(keys) AS k),
                         keys[1], keys[1], pgfanout.changed_sql(tbl, 'n', 'o', v_changed));
    ELSE
      -- PostgreSQL records the old and new image of each updated row at the same position of the
      -- two transition tables.
      v_elem := format($s$'{"new":' || %s || ',"old":' || %s || '}'$s$,
                       pgfanout.object_sql(tbl, 'n', v_keep), pgfanout.object_sql(tbl, 'o', v_keep));
      v_source := format('FROM (SELECT row_number() OVER () AS pgfanout_rn, * FROM pgfanout_new) AS n
                          JOIN (SELECT row_number() OVER () AS pgfanout_rn, * FROM pgfanout_old) AS o
                            ON n.pgfanout_rn = o.pgfanout_rn
                         WHERE %s ORDER BY n.pgfanout_rn', pgfanout.changed_sql(tbl, 'n', 'o', v_changed));
    END IF;
  END IF;

  IF durable THEN
    v_send := format($s$
  WITH ins AS (
    INSERT INTO pgfanout.outbox (channel, payload)
    SELECT %L, (v_head || ',"part":' || x.k || ',"parts":' || v_part || ',"rows":[' || x.r || ']' || v_tail)::jsonb
      FROM (SELECT u.k, string_agg(u.e, ',' ORDER BY u.i) AS r
              FROM unnest(v_elems, v_part_of) WITH ORDINALITY AS u(e, k, i) GROUP BY u.k) AS x
     ORDER BY x.k
    RETURNING id)
  SELECT max(id) INTO v_id FROM ins;
  PERFORM pg_notify(%1$L, '{"v":1,"outbox":true,"id":' || v_id || '}');$s$, channel);
  ELSE
    v_send := format($s$
  PERFORM pg_notify(%L, v_head || ',"part":' || x.k || ',"parts":' || v_part || ',"rows":[' || x.r || ']' || v_tail)
     FROM (SELECT u.k, string_agg(u.e, ',' ORDER BY u.i) AS r
             FROM unnest(v_elems, v_part_of) WITH ORDINALITY AS u(e, k, i) GROUP BY u.k) AS x
    ORDER BY x.k;$s$, channel);
  END IF;

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION pgfanout.%1$I() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
SET jit = off  -- compiling the row query costs more than it saves, on every statement
AS $body$
-- Generated by pgfanout.watch(%2$s); re-run watch() to change it.
DECLARE
  v_head text := %3$s;
  v_tail text := %4$s;
  -- Bytes left for the rows of one part: the envelope without its rows, part and parts counted
  -- as 10 digits each (the most an integer needs).
  v_budget integer := %5$s - (octet_length(v_head || ',"part":,"parts":,"rows":[]' || v_tail) + 20);
  v_elems text[];
  v_lens integer[];
  v_part_of integer[] := '{}';
  v_part integer := 1;
  v_used integer := 0;
  v_id bigint;
BEGIN
  SELECT array_agg(r.e), array_agg(octet_length(r.e)) INTO v_elems, v_lens
    FROM (SELECT %6$s AS e
          %7$s
          OFFSET 0) AS r;
  IF v_elems IS NULL THEN
    RETURN NULL;  -- no row changed
  END IF;
  -- Greedy packing in row order: the part of each element, from the lengths alone.
  FOR i IN 1 .. cardinality(v_lens) LOOP%8$s
    IF v_used > 0 AND v_used + 1 + v_lens[i] > v_budget THEN
      v_part := v_part + 1;
      v_used := v_lens[i];
    ELSIF v_used > 0 THEN
      v_used := v_used + 1 + v_lens[i];
    ELSE
      v_used := v_lens[i];
    END IF;
    v_part_of := array_append(v_part_of, v_part);
  END LOOP;
%9$s
  RETURN NULL;
END
$body$$f$,
    v_name, quote_literal(tbl::text),
    pgfanout.head_sql(quote_literal(op), 'TG_TABLE_SCHEMA', 'TG_TABLE_NAME'), pgfanout.tail_sql(),
    v_max, v_elem, v_source,
    CASE WHEN NOT durable THEN format($s$
    IF v_lens[i] > v_budget THEN  -- alone it would not fit a notification: cut to its key
      v_elems[i] := pgfanout.cut_element(v_elems[i], %L, v_budget);
      v_lens[i] := octet_length(v_elems[i]);
    END IF;$s$, keys) ELSE '' END,
    v_send);
  RETURN v_name;
END
$fn$;

-- The trigger names watch() owns on a table.
CREATE OR REPLACE FUNCTION pgfanout.trigger_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT '{pgfanout_watch,pgfanout_watch_insert,pgfanout_watch_update,pgfanout_watch_delete}'::text[] $$;

-- Drops generated trigger functions (pgfanout.watch_*) that no trigger uses any more.
CREATE OR REPLACE FUNCTION pgfanout.drop_unused_functions() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  f record;
  n integer := 0;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS fn
      FROM pg_proc p
     WHERE p.pronamespace = 'pgfanout'::regnamespace AND p.proname ~ '^watch_[0-9]+'
       AND p.prorettype = 'trigger'::regtype
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid)
  LOOP
    EXECUTE format('DROP FUNCTION %s', f.fn);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$fn$;

-- Drops pgfanout's triggers from a table, and the functions generated for them; true if there
-- were any triggers.
CREATE OR REPLACE FUNCTION pgfanout.drop_watch_triggers(tbl regclass) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  t record;
  dropped boolean := false;
BEGIN
  FOR t IN
    SELECT tg.tgname, n.nspname, c.relname
      FROM pg_trigger tg
      JOIN pg_class c ON c.oid = tg.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE tg.tgrelid = tbl AND tg.tgname = ANY (pgfanout.trigger_names()) AND tg.tgparentid = 0
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %I.%I', t.tgname, t.nspname, t.relname);
    dropped := true;
  END LOOP;
  PERFORM pgfanout.drop_unused_functions();
  RETURN dropped;
END
$fn$;

-- The numbers of the named columns of tbl, in the same order (NULL for NULL).
CREATE OR REPLACE FUNCTION pgfanout.column_nums(tbl regclass, names text[]) RETURNS smallint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT CASE WHEN names IS NOT NULL THEN ARRAY(
    SELECT a.attnum FROM unnest(names) WITH ORDINALITY AS u(c, i)
      JOIN pg_attribute a ON a.attrelid = tbl AND a.attname = u.c AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY u.i) END
$$;

-- The current names of columns of tbl given by number, in the same order; dropped ones are left
-- out (NULL for NULL).
CREATE OR REPLACE FUNCTION pgfanout.column_names(tbl regclass, nums smallint[]) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT CASE WHEN nums IS NOT NULL THEN ARRAY(
    SELECT a.attname::text FROM unnest(nums) WITH ORDINALITY AS u(n, i)
      JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = u.n AND NOT a.attisdropped
     ORDER BY u.i) END
$$;

-- Creates (or replaces) the triggers that make tbl send notifications on channel; returns the
-- channel. See docs/triggers.md.
CREATE OR REPLACE FUNCTION pgfanout.watch(
  tbl regclass,
  channel text DEFAULT NULL,
  columns text[] DEFAULT NULL,
  ops text[] DEFAULT '{INSERT,UPDATE,DELETE}',
  changed text[] DEFAULT NULL,
  per_statement boolean DEFAULT false,
  durable boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_schema text;
  v_name text;
  v_kind "char";
  v_ops text[];
  v_unknown text[];
  v_key record;
  v_keep text[];
  v_op text;
BEGIN
  IF tbl IS NULL THEN
    RAISE EXCEPTION 'pgfanout.watch: table is NULL';
  END IF;
  SELECT n.nspname, c.relname, c.relkind INTO v_schema, v_name, v_kind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = tbl;
  IF v_kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'pgfanout.watch: %.% is not a table', quote_ident(v_schema), quote_ident(v_name);
  END IF;

  channel := coalesce(channel, v_name || '_changed');
  IF channel = '' OR octet_length(channel) >= 64 THEN
    RAISE EXCEPTION 'pgfanout.watch: channel "%" must be 1 to 63 bytes long', channel
      USING HINT = 'pass a shorter channel => ''...''';
  END IF;

  v_ops := ARRAY(SELECT DISTINCT upper(o) FROM unnest(ops) AS o ORDER BY 1);
  IF cardinality(v_ops) = 0 OR NOT v_ops <@ '{INSERT,UPDATE,DELETE}'::text[] THEN
    RAISE EXCEPTION 'pgfanout.watch: ops must be a non-empty subset of {INSERT,UPDATE,DELETE}, got %', ops;
  END IF;

  v_unknown := ARRAY(
    SELECT c FROM unnest(coalesce(columns, '{}') || coalesce(changed, '{}')) AS c
     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = tbl AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped));
  IF cardinality(v_unknown) > 0 THEN
    RAISE EXCEPTION 'pgfanout.watch: %.% has no column(s) %', quote_ident(v_schema), quote_ident(v_name), v_unknown;
  END IF;

  v_key := pgfanout.key_columns(tbl);
  IF columns IS NOT NULL THEN
    -- The key columns always travel, so a consumer can tell which row changed.
    v_keep := ARRAY(SELECT c FROM unnest(v_key.columns || columns) WITH ORDINALITY AS u(c, i)
                     GROUP BY c ORDER BY min(i));
  END IF;

  PERFORM pgfanout.drop_watch_triggers(tbl);
  IF per_statement THEN
    FOREACH v_op IN ARRAY v_ops LOOP
      EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.%I REFERENCING %s FOR EACH STATEMENT '
                     'EXECUTE FUNCTION pgfanout.%I()',
                     'pgfanout_watch_' || lower(v_op), v_op, v_schema, v_name,
                     CASE v_op WHEN 'INSERT' THEN 'NEW TABLE AS pgfanout_new'
                               WHEN 'DELETE' THEN 'OLD TABLE AS pgfanout_old'
                               ELSE 'OLD TABLE AS pgfanout_old NEW TABLE AS pgfanout_new' END,
                     pgfanout.generate_statement_function(tbl, v_op, channel, v_keep, changed,
                                                          v_key.columns, durable));
    END LOOP;
  ELSE
    EXECUTE format('CREATE TRIGGER pgfanout_watch AFTER %s ON %I.%I FOR EACH ROW '
                   'EXECUTE FUNCTION pgfanout.%I()',
                   array_to_string(v_ops, ' OR '), v_schema, v_name,
                   pgfanout.generate_row_function(tbl, channel, v_keep, changed, v_key.columns, durable));
  END IF;

  INSERT INTO pgfanout.watch_registry AS r
    (tbl, channel, columns, ops, changed, per_statement, durable, key_columns, key_source, trigger_format,
     column_nums, changed_nums, shape)
  VALUES (tbl, channel, columns, v_ops, changed, per_statement, durable, v_key.columns, v_key.source,
          pgfanout.trigger_format(), pgfanout.column_nums(tbl, columns), pgfanout.column_nums(tbl, changed),
          pgfanout.table_shape(tbl))
  ON CONFLICT ON CONSTRAINT watch_registry_pkey DO UPDATE
    SET channel = EXCLUDED.channel, columns = EXCLUDED.columns, ops = EXCLUDED.ops,
        changed = EXCLUDED.changed, per_statement = EXCLUDED.per_statement,
        durable = EXCLUDED.durable, key_columns = EXCLUDED.key_columns,
        key_source = EXCLUDED.key_source, trigger_format = EXCLUDED.trigger_format,
        column_nums = EXCLUDED.column_nums, changed_nums = EXCLUDED.changed_nums,
        shape = EXCLUDED.shape, updated_at = now();
  RETURN channel;
END
$fn$;

-- Drops the triggers watch() created on tbl and forgets it; true if it was watched.
CREATE OR REPLACE FUNCTION pgfanout.unwatch(tbl regclass) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  dropped boolean;
BEGIN
  dropped := pgfanout.drop_watch_triggers(tbl);
  DELETE FROM pgfanout.watch_registry r WHERE r.tbl = unwatch.tbl;
  RETURN dropped OR FOUND;
END
$fn$;

CREATE OR REPLACE VIEW pgfanout.watches AS
  SELECT r.tbl, r.channel, r.columns, r.ops, r.changed, r.per_statement, r.durable,
         r.key_columns, r.key_source, r.created_at, r.updated_at
    FROM pgfanout.watch_registry r
   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.tbl);
COMMENT ON VIEW pgfanout.watches IS 'tables watched by pgfanout.watch()';

-- Version 2's rewatch(force) gained a parameter.
DROP FUNCTION IF EXISTS pgfanout.rewatch(boolean);

-- Re-creates the triggers of registered watches that were made by another trigger format, whose
-- triggers are missing, whose key has changed, or whose table's columns changed since (a column
-- added, dropped, renamed or of another type; force: all of them). Columns named in columns /
-- changed are followed through a rename by their number; a dropped one is left out. Forgets
-- watches of tables that no longer exist and drops their functions. Returns the number of
-- watches re-created. Run by install and, after ALTER TABLE, by the pgfanout_watch_ddl event
-- trigger (tables: the altered tables).
CREATE OR REPLACE FUNCTION pgfanout.rewatch(force boolean DEFAULT false, tables regclass[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  r record;
  n integer := 0;
  wanted integer;
  v_columns text[];
  v_changed text[];
BEGIN
  DELETE FROM pgfanout.watch_registry w
   WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = w.tbl);
  FOR r IN SELECT * FROM pgfanout.watch_registry w
            WHERE tables IS NULL OR w.tbl = ANY (tables) ORDER BY w.tbl::oid LOOP
    wanted := CASE WHEN r.per_statement THEN cardinality(r.ops) ELSE 1 END;
    IF force
       OR r.trigger_format IS DISTINCT FROM pgfanout.trigger_format()
       OR r.shape IS DISTINCT FROM pgfanout.table_shape(r.tbl)
       OR r.key_columns IS DISTINCT FROM (pgfanout.key_columns(r.tbl)).columns
       OR wanted <> (SELECT count(*) FROM pg_trigger t
                      WHERE t.tgrelid = r.tbl AND t.tgname = ANY (pgfanout.trigger_names()))
    THEN
      v_columns := coalesce(pgfanout.column_names(r.tbl, r.column_nums), r.columns);
      v_changed := coalesce(pgfanout.column_names(r.tbl, r.changed_nums), r.changed);
      IF r.column_nums IS NOT NULL AND cardinality(v_columns) < cardinality(r.column_nums)
         OR r.changed_nums IS NOT NULL AND cardinality(v_changed) < cardinality(r.changed_nums) THEN
        RAISE WARNING 'pgfanout: a column watched on % was dropped; the watch goes on without it', r.tbl;
      END IF;
      IF r.changed IS NOT NULL AND cardinality(v_changed) = 0 THEN
        v_changed := NULL;  -- every changed column is gone: fall back to the carried columns
      END IF;
      PERFORM pgfanout.watch(r.tbl, r.channel, v_columns, r.ops, v_changed, r.per_statement, r.durable);
      n := n + 1;
    END IF;
  END LOOP;
  PERFORM pgfanout.drop_unused_functions();
  RETURN n;
END
$fn$;

-- Event triggers, so that generated functions follow the table: after ALTER TABLE on a watched
-- table (a column added, dropped, renamed or retyped) its functions are generated again, and a
-- dropped table's functions are dropped with it. A failure there (e.g. the altering role may not
-- create functions in schema pgfanout) does not fail the ALTER TABLE: it is reported as a warning
-- and pgfanout.rewatch() fixes it later. Creating event triggers needs a superuser; an install
-- by another role goes without them (see docs/triggers.md).
CREATE OR REPLACE FUNCTION pgfanout.on_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_tables regclass[];
BEGIN
  IF TG_EVENT = 'sql_drop' THEN
    IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d
                WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
                  AND d.objid IN (SELECT w.tbl FROM pgfanout.watch_registry w)) THEN
      DELETE FROM pgfanout.watch_registry w
       WHERE w.tbl::oid IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d
                             WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0);
      PERFORM pgfanout.drop_unused_functions();
    END IF;
    RETURN;
  END IF;
  v_tables := ARRAY(SELECT DISTINCT w.tbl FROM pg_event_trigger_ddl_commands() c
                      JOIN pgfanout.watch_registry w ON w.tbl = c.objid
                     WHERE c.classid = 'pg_class'::regclass);
  IF cardinality(v_tables) > 0 THEN
    BEGIN
      PERFORM pgfanout.rewatch(tables => v_tables);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'pgfanout: could not update the watch of %: %', v_tables, SQLERRM
        USING HINT = 'run SELECT pgfanout.rewatch() as a role that may create functions in schema pgfanout';
    END;
  END IF;
END
$fn$;

DO $do$
BEGIN
  IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
    RAISE WARNING 'pgfanout: installed without event triggers (they need a superuser)'
      USING HINT = 'after ALTER TABLE on a watched table, run SELECT pgfanout.rewatch()';
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgfanout_watch_ddl') THEN
    CREATE EVENT TRIGGER pgfanout_watch_ddl ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
      EXECUTE FUNCTION pgfanout.on_ddl();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgfanout_watch_drop') THEN
    CREATE EVENT TRIGGER pgfanout_watch_drop ON sql_drop WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA')
      EXECUTE FUNCTION pgfanout.on_ddl();
  END IF;
END
$do$;
