-- Trigger generators: pgfanout.watch / unwatch, the registry they keep, and the trigger functions
-- they generate.
--
-- Trigger format 3 (pgfanout.trigger_format()): watch() generates one trigger function per watched
-- table (per op for per-statement watches), pgfanout.watch_<table oid>[_<op>], with the settings
-- and the table's schema and name compiled into its body; the triggers take no arguments. The
-- row-level function has no SET clause: its body names every function, operator and type with its
-- schema (see generate_row_function). Format 2 looked the names up per row and pinned search_path;
-- format 1 used the generic functions notify_row / notify_statement with the settings as trigger
-- arguments. Install re-creates every watch whose registry row records another format, and every
-- watch whose table was renamed or moved, or whose columns changed, since its functions were
-- generated.

CREATE OR REPLACE FUNCTION pgfanout.trigger_format() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT 3 $$;

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
-- Since version 7: the triggers call the native functions (pgfanout_native, see below).
ALTER TABLE pgfanout.watch_registry ADD COLUMN IF NOT EXISTS native boolean NOT NULL DEFAULT false;

-- The table as generated code depends on it: its schema and name (compiled into the payload),
-- then number, name and type of each column.
CREATE OR REPLACE FUNCTION pgfanout.table_shape(tbl regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ';'
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl)
      || string_agg(a.attnum || ':' || quote_ident(a.attname) || ':' || a.atttypid || ':' || a.attcollation,
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
-- Names in generated code are quoted with format('%I'), values with format('%L'). The expressions
-- below are immune to the caller's search_path: every function, operator and type in them is
-- qualified with pg_catalog (functions as pg_catalog.f(..), operators as OPERATOR(pg_catalog.||),
-- types as ::pg_catalog.text), and they use no construct that looks up an operator by its bare
-- name (IS DISTINCT FROM, simple CASE, IN, NULLIF resolve "=" through search_path).

-- A column name for generated code, always double-quoted: quote_ident leaves words that are
-- keywords only in PL/pgSQL (by, open, alias...) bare, and NEW.by does not compile there.
CREATE OR REPLACE FUNCTION pgfanout.quote_column(name name) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT '"' || replace(name::text, '"', '""') || '"' $$;

-- The SQL expression (text) that gives the JSON text to_jsonb(value)::text would give, for a
-- value expression `val` of type typ (a domain counts as its base type); 'null' for NULL. Common
-- types get a cheaper expression with the same output; any other type goes through to_jsonb.
CREATE OR REPLACE FUNCTION pgfanout.json_text_sql(val text, typ oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT 'coalesce(' || CASE
           -- Integers print as JSON numbers already.
           WHEN b.t IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN val || '::pg_catalog.text'
           -- JSON strings and literals, escaped as jsonb escapes them; numeric prints its digits
           -- (NaN and infinities become strings, as in jsonb); dates and timestamps use the
           -- same ISO encoding as jsonb.
           WHEN b.t IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype,
                        'bool'::regtype, 'numeric'::regtype, 'uuid'::regtype, 'date'::regtype,
                        'timestamp'::regtype, 'timestamptz'::regtype)
             THEN 'pg_catalog.to_json(' || val || ')::pg_catalog.text'
           WHEN b.t = 'jsonb'::regtype THEN val || '::pg_catalog.text'
           -- float (jsonb re-parses it as numeric: 1e+20 prints as 100000000000000000000), json
           -- (jsonb normalizes it), arrays, composites, PostGIS and anything else.
           ELSE 'pg_catalog.to_jsonb(' || val || ')::pg_catalog.text'
         END || ', ''null'')'
    FROM (SELECT coalesce(nullif(t.typbasetype, 0), t.oid)::regtype AS t
            FROM pg_type t WHERE t.oid = typ) AS b
$$;

-- The SQL expression (boolean) that is true when a column's value differs between the images
-- `a` and `b`, with the meaning of the jsonb comparison the payload implies. The column's own
-- equality where the type's equality is exactly "same JSON": integers, numeric (1.0 = 1.00 both
-- ways), text types under a deterministic collation, bool, uuid, dates, timestamps, jsonb.
-- Otherwise the column's jsonb images are compared: types without an equality operator (json,
-- point, xml), and types whose equality ignores what the JSON shows (interval: '1 day' =
-- '24:00:00'; bpchar ignores trailing spaces; case-insensitive collations and citext; float under
-- a low extra_float_digits; arrays compare their bounds, jsonb does not).
-- The test means `a IS DISTINCT FROM b`, written with OPERATOR(pg_catalog.=) because IS DISTINCT
-- FROM looks "=" up through search_path: NOT (a = b) for a NOT NULL column (notnull; the other
-- side of a per-statement full join is NULL only where the row is sent anyway), else
-- (a = b) IS NOT TRUE AND (a IS NOT NULL OR b IS NOT NULL).
CREATE OR REPLACE FUNCTION pgfanout.differs_sql(a text, b text, typ oid, coll oid, not_null boolean) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT CASE WHEN not_null AND NOT x.via_jsonb
              THEN format('NOT (%s OPERATOR(pg_catalog.=) %s)', x.l, x.r)
              ELSE format('(%1$s OPERATOR(pg_catalog.=) %2$s) IS NOT TRUE AND (%1$s IS NOT NULL OR %2$s IS NOT NULL)',
                          x.l, x.r)
         END
    FROM (SELECT CASE WHEN y.native THEN a ELSE 'pg_catalog.to_jsonb(' || a || ')' END AS l,
                 CASE WHEN y.native THEN b ELSE 'pg_catalog.to_jsonb(' || b || ')' END AS r,
                 NOT y.native AS via_jsonb
            FROM (SELECT z.t IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype,
                                 'bool'::regtype, 'uuid'::regtype, 'date'::regtype, 'timestamp'::regtype,
                                 'timestamptz'::regtype, 'jsonb'::regtype)
                         OR (z.t IN ('text'::regtype, 'varchar'::regtype, 'name'::regtype)
                             AND coalesce((SELECT c.collisdeterministic FROM pg_collation c WHERE c.oid = coll), true))
                         AS native
                    FROM (SELECT coalesce(nullif(t.typbasetype, 0), t.oid)::regtype AS t
                            FROM pg_type t WHERE t.oid = typ) AS z) AS y) AS x
$$;
-- Version 3's differs_sql had no not_null.
DROP FUNCTION IF EXISTS pgfanout.differs_sql(text, text, oid, oid);

-- The SQL expression (text) of the jsonb text of an object of the given columns of tbl, taken
-- from the row alias `img` (e.g. NEW): '{"a": 1, "b": "x"}', keys in jsonb's order (shorter
-- first, then bytewise), so that it equals the jsonb text byte for byte.
CREATE OR REPLACE FUNCTION pgfanout.object_sql(tbl regclass, img text, cols text[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT coalesce(
           quote_literal('{' || string_agg(CASE WHEN k.i = 1 THEN to_json(k.attname::text)::text || ': ' END, ''))
             || ' OPERATOR(pg_catalog.||) ' || string_agg(
               CASE WHEN k.i > 1 THEN quote_literal(', ' || to_json(k.attname::text)::text || ': ')
                                      || ' OPERATOR(pg_catalog.||) ' ELSE '' END
               || pgfanout.json_text_sql(img || '.' || pgfanout.quote_column(k.attname), k.atttypid),
               ' OPERATOR(pg_catalog.||) ' ORDER BY k.i) || ' OPERATOR(pg_catalog.||) ''}''',
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
  SELECT coalesce(string_agg('(' || pgfanout.differs_sql(a || '.' || pgfanout.quote_column(x.attname),
                                                        b || '.' || pgfanout.quote_column(x.attname),
                                                        x.atttypid, x.attcollation, x.attnotnull) || ')',
                             ' OR ' ORDER BY x.attnum),
                  'false')
    FROM pg_attribute x
   WHERE x.attrelid = tbl AND x.attnum > 0 AND NOT x.attisdropped AND x.attname = ANY (cols)
$$;

-- The envelope's head as a SQL expression: '{"v":1,"op":"..","schema":..,"table":..' with the
-- schema and name of tbl compiled in (op_sql gives an op name, which needs no JSON escaping).
-- A rename changes table_shape(), so the functions are generated again.
CREATE OR REPLACE FUNCTION pgfanout.head_sql(op_sql text, tbl regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT quote_literal('{"v":1,"op":"') || ' OPERATOR(pg_catalog.||) ' || op_sql || ' OPERATOR(pg_catalog.||) '
      || quote_literal('","schema":' || to_json(n.nspname::text)::text || ',"table":' || to_json(c.relname::text)::text)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = tbl
$$;
-- Version 3's head_sql took the names as expressions.
DROP FUNCTION IF EXISTS pgfanout.head_sql(text, text, text);

-- The envelope's tail: ',"txid":"..","at":".."}' of this transaction and statement.
CREATE OR REPLACE FUNCTION pgfanout.tail_sql() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT $s$',"txid":"' OPERATOR(pg_catalog.||) pg_catalog.pg_current_xact_id()::pg_catalog.text OPERATOR(pg_catalog.||) '","at":"' OPERATOR(pg_catalog.||) pg_catalog.to_char(pg_catalog.statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') OPERATOR(pg_catalog.||) '"}'$s$
$$;

-- The names of tbl's columns, in order: what a watch carries and compares when it names none.
CREATE OR REPLACE FUNCTION pgfanout.all_columns(tbl regclass) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT ARRAY(SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
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
--
-- The function runs once per row, so it has no SET clause: a function with one cannot be inlined
-- into the trigger call and saves and restores the setting on every call, which costs about as
-- much as the rest of the function. Instead the body does not depend on search_path: every
-- function, operator and type in it is written with its schema (pg_catalog. or pgfanout.), so a
-- schema earlier on the writer's search_path that holds look-alike functions, operators or types
-- cannot change what it sends. (A name without a schema would not be safe even with pg_catalog
-- searched first when the path does not list it: the path may list it late, and an exact-match
-- operator such as varchar = varchar in another schema wins over pg_catalog's text = text.) The
-- function is SECURITY INVOKER, like every pgfanout function: it runs with the writer's rights,
-- so it gives no role anything it could not do itself, and what it does (read NEW and OLD, call
-- pg_notify, in the durable variant insert into pgfanout.outbox) needs no other rights than the
-- write it fires for, plus the outbox grant documented in docs/triggers.md. The schema and name
-- of the table are compiled in (a partitioned table's row trigger fires on the partition, but the
-- payload names the watched table, which is tbl); a rename regenerates the function (see
-- table_shape and on_ddl).
CREATE OR REPLACE FUNCTION pgfanout.generate_row_function(tbl regclass, channel text, keep text[],
  changed text[], keys text[], durable boolean) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_keep text[] := coalesce(keep, pgfanout.all_columns(tbl));
  v_changed text[] := coalesce(changed, v_keep);
  v_schema text;
  v_table text;
  v_name text := pgfanout.generated_name(tbl, '');
  v_new text := pgfanout.object_sql(tbl, 'NEW', v_keep);
  v_old text := pgfanout.object_sql(tbl, 'OLD', v_keep);
  v_send text;
BEGIN
  SELECT n.nspname, c.relname INTO v_schema, v_table
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  IF durable THEN
    -- The outbox keeps the whole event (no NOTIFY size limit there); NOTIFY only rings the bell.
    v_send := format($s$
  INSERT INTO pgfanout.outbox (channel, payload) VALUES (%1$L, v_payload::pg_catalog.jsonb) RETURNING id INTO v_id;
  IF pg_catalog.pg_notify(%1$L, '{"v":1,"outbox":true,"id":' OPERATOR(pg_catalog.||) v_id::pg_catalog.text
                                OPERATOR(pg_catalog.||) '}') IS NULL THEN NULL; END IF;$s$, channel);
  ELSE
    -- Over the limit, build_payload makes the key-only (or row-less) form; it is evaluated only then.
    v_send := format($s$
  -- Called in an IF, not by PERFORM: an expression, not a query to start per row.
  IF pg_catalog.pg_notify(%1$L, CASE WHEN pg_catalog.octet_length(v_payload) OPERATOR(pg_catalog.<=) %2$s THEN v_payload
      ELSE pgfanout.build_payload(TG_OP, %3$L, %4$L,
             CASE WHEN TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN (%5$s)::pg_catalog.jsonb END,
             CASE WHEN TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN (%6$s)::pg_catalog.jsonb END, %7$L) END) IS NULL THEN
    NULL;
  END IF;$s$, channel, pgfanout.notify_max_bytes(), v_schema, v_table, v_new, v_old, keys);
  END IF;

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION pgfanout.%1$I() RETURNS trigger
LANGUAGE plpgsql
AS $body$
-- Generated by pgfanout.watch(%2$s); re-run watch() to change it. Every name in it is
-- schema-qualified: it runs under the writer's search_path.
DECLARE
  v_payload pg_catalog.text;
  v_id pg_catalog.int8;
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NOT (%5$s) THEN
    RETURN NULL;
  END IF;
  v_payload := %6$s
    OPERATOR(pg_catalog.||) CASE WHEN TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN ',"new":' OPERATOR(pg_catalog.||) %3$s ELSE '' END
    OPERATOR(pg_catalog.||) CASE WHEN TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN ',"old":' OPERATOR(pg_catalog.||) %4$s ELSE '' END
    OPERATOR(pg_catalog.||) %7$s;%8$s
  RETURN NULL;
END
$body$$f$,
    v_name, quote_literal(tbl::text), v_new, v_old,
    pgfanout.changed_sql(tbl, 'NEW', 'OLD', v_changed),
    pgfanout.head_sql('TG_OP', tbl), pgfanout.tail_sql(), v_send);
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
-- The elements are computed once, into an array; one pass over it in PL/pgSQL cuts oversized
-- elements and packs the rest greedily in row order (a part is closed when the next element would
-- not fit), joining each part's elements as it is closed; the parts are then sent. The function
-- runs once per statement, so it keeps its SET clauses (they cost once per statement, not per row).
CREATE OR REPLACE FUNCTION pgfanout.generate_statement_function(tbl regclass, op text, channel text,
  keep text[], changed text[], keys text[], durable boolean) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_keep text[] := coalesce(keep, pgfanout.all_columns(tbl));
  v_changed text[] := coalesce(changed, v_keep);
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
                         (SELECT string_agg(format('n.%1$I OPERATOR(pg_catalog.=) o.%1$I', k), ' AND ')
                            FROM unnest(keys) AS k),
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
    SELECT %L, (v_head || ',"part":' || p.k || ',"parts":' || cardinality(v_parts) || ',"rows":[' || p.r || ']' || v_tail)::jsonb
      FROM unnest(v_parts) WITH ORDINALITY AS p(r, k)
     ORDER BY p.k
    RETURNING id)
  SELECT max(id) INTO v_id FROM ins;
  PERFORM pg_notify(%1$L, '{"v":1,"outbox":true,"id":' || v_id || '}');$s$, channel);
  ELSE
    v_send := format($s$
  FOR k IN 1 .. cardinality(v_parts) LOOP
    IF pg_notify(%L, v_head || ',"part":' || k || ',"parts":' || cardinality(v_parts) || ',"rows":[' || v_parts[k] || ']'
                     || v_tail) IS NULL THEN
      NULL;
    END IF;
  END LOOP;$s$, channel);
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
  v_len integer;
  v_used integer := -1;      -- bytes of the open part's rows; -1: the part is empty
  v_part text[] := '{}';     -- the open part's elements
  v_parts text[] := '{}';    -- the closed parts' rows, each joined with ','
  v_id bigint;
BEGIN
  SELECT array_agg(r.e) INTO v_elems
    FROM (SELECT %6$s AS e
          %7$s
          OFFSET 0) AS r;
  IF v_elems IS NULL THEN
    RETURN NULL;  -- no row changed
  END IF;
  -- Greedy packing in row order.
  FOR i IN 1 .. cardinality(v_elems) LOOP
    v_len := octet_length(v_elems[i]);%8$s
    IF v_used >= 0 AND v_used + 1 + v_len > v_budget THEN
      v_parts := array_append(v_parts, array_to_string(v_part, ','));
      v_part := ARRAY[v_elems[i]];
      v_used := v_len;
    ELSE
      v_part := array_append(v_part, v_elems[i]);
      v_used := v_used + 1 + v_len;
    END IF;
  END LOOP;
  v_parts := array_append(v_parts, array_to_string(v_part, ','));
%9$s
  RETURN NULL;
END
$body$$f$,
    v_name, quote_literal(tbl::text),
    pgfanout.head_sql(quote_literal(op), tbl), pgfanout.tail_sql(),
    v_max, v_elem, v_source,
    CASE WHEN NOT durable THEN format($s$
    IF v_len > v_budget THEN  -- alone it would not fit a notification: cut to its key
      v_elems[i] := pgfanout.cut_element(v_elems[i], %L, v_budget);
      v_len := octet_length(v_elems[i]);
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

-- Native triggers (docs/triggers.md#native-triggers). When the server has the library
-- pgfanout_native (sql/native, installed into its $libdir on the database host), install declares
-- its trigger functions, and watch() makes triggers that call them with the watch's settings as
-- arguments instead of generating PL/pgSQL functions; they send the same text byte for byte at a
-- fraction of the writer's cost. Declaring a C function needs a superuser; without one, or
-- without the library, watches use the generated PL/pgSQL functions. A database or role can
-- opt out with SET pgfanout.native = off (then SELECT pgfanout.rewatch()).
DO $do$
BEGIN
  IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
    RETURN;
  END IF;
  BEGIN
    CREATE OR REPLACE FUNCTION pgfanout.native_version() RETURNS integer
      LANGUAGE c STRICT AS 'pgfanout_native', 'pgfanout_native_version';
    CREATE OR REPLACE FUNCTION pgfanout.native_row() RETURNS trigger
      LANGUAGE c AS 'pgfanout_native', 'pgfanout_native_row';
    CREATE OR REPLACE FUNCTION pgfanout.native_statement() RETURNS trigger
      LANGUAGE c AS 'pgfanout_native', 'pgfanout_native_statement';
    -- C code that takes its settings from trigger arguments: only roles granted it may put it
    -- on a table (CREATE TRIGGER checks EXECUTE); watch() run by any other role makes PL/pgSQL
    -- triggers. Triggers already made go on firing whoever writes.
    REVOKE ALL ON FUNCTION pgfanout.native_row() FROM PUBLIC;
    REVOKE ALL ON FUNCTION pgfanout.native_statement() FROM PUBLIC;
  EXCEPTION WHEN OTHERS THEN
    -- No library on this server (undefined_file), or one built for another server version.
    RAISE NOTICE 'pgfanout: native triggers not available (%); watches use PL/pgSQL triggers', SQLERRM;
  END;
END
$do$;

-- True when watch() makes native triggers: the library's functions are declared, the library
-- loads and speaks this script's interface, the current role may use the trigger functions
-- (superusers, and roles granted EXECUTE on them) and pgfanout.native is not off.
CREATE OR REPLACE FUNCTION pgfanout.native_enabled() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
BEGIN
  IF coalesce(current_setting('pgfanout.native', true), '') IN ('off', 'false', '0', 'no')
     OR to_regprocedure('pgfanout.native_version()') IS NULL
     OR to_regprocedure('pgfanout.native_row()') IS NULL
     OR to_regprocedure('pgfanout.native_statement()') IS NULL
     OR NOT has_function_privilege('pgfanout.native_row()', 'EXECUTE')
     OR NOT has_function_privilege('pgfanout.native_statement()', 'EXECUTE') THEN
    RETURN false;
  END IF;
  RETURN pgfanout.native_version() = 1;
EXCEPTION WHEN OTHERS THEN
  RETURN false;  -- declared, but the library is gone from the server
END
$fn$;

-- The arguments of a native trigger (see sql/native/pgfanout_native.c): channel, schema, table,
-- durable, the NOTIFY limit, then each column list as its length followed by its names.
CREATE OR REPLACE FUNCTION pgfanout.native_args(tbl regclass, channel text, keep text[], changed text[],
  keys text[], durable boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_keep text[] := coalesce(keep, pgfanout.all_columns(tbl));
  v_changed text[] := coalesce(changed, v_keep);
  v_args text[];
BEGIN
  SELECT ARRAY[channel, n.nspname::text, c.relname::text, CASE WHEN durable THEN 't' ELSE 'f' END,
               pgfanout.notify_max_bytes()::text] INTO v_args
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  v_args := v_args || cardinality(v_keep)::text || v_keep
                   || cardinality(v_changed)::text || v_changed
                   || cardinality(keys)::text || keys;
  RETURN (SELECT string_agg(quote_literal(a), ', ' ORDER BY i) FROM unnest(v_args) WITH ORDINALITY AS u(a, i));
END
$fn$;

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
  v_native boolean;
  v_args text;
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
  v_native := pgfanout.native_enabled();
  IF v_native THEN
    v_args := pgfanout.native_args(tbl, channel, v_keep, changed, v_key.columns, durable);
  END IF;
  IF per_statement THEN
    FOREACH v_op IN ARRAY v_ops LOOP
      EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.%I REFERENCING %s FOR EACH STATEMENT '
                     'EXECUTE FUNCTION pgfanout.%s',
                     'pgfanout_watch_' || lower(v_op), v_op, v_schema, v_name,
                     CASE v_op WHEN 'INSERT' THEN 'NEW TABLE AS pgfanout_new'
                               WHEN 'DELETE' THEN 'OLD TABLE AS pgfanout_old'
                               ELSE 'OLD TABLE AS pgfanout_old NEW TABLE AS pgfanout_new' END,
                     CASE WHEN v_native THEN 'native_statement(' || v_args || ')'
                          ELSE quote_ident(pgfanout.generate_statement_function(tbl, v_op, channel, v_keep, changed,
                                                                                v_key.columns, durable)) || '()' END);
    END LOOP;
  ELSE
    EXECUTE format('CREATE TRIGGER pgfanout_watch AFTER %s ON %I.%I FOR EACH ROW '
                   'EXECUTE FUNCTION pgfanout.%s',
                   array_to_string(v_ops, ' OR '), v_schema, v_name,
                   CASE WHEN v_native THEN 'native_row(' || v_args || ')'
                        ELSE quote_ident(pgfanout.generate_row_function(tbl, channel, v_keep, changed,
                                                                        v_key.columns, durable)) || '()' END);
  END IF;

  INSERT INTO pgfanout.watch_registry AS r
    (tbl, channel, columns, ops, changed, per_statement, durable, key_columns, key_source, trigger_format,
     column_nums, changed_nums, shape, native)
  VALUES (tbl, channel, columns, v_ops, changed, per_statement, durable, v_key.columns, v_key.source,
          pgfanout.trigger_format(), pgfanout.column_nums(tbl, columns), pgfanout.column_nums(tbl, changed),
          pgfanout.table_shape(tbl), v_native)
  ON CONFLICT ON CONSTRAINT watch_registry_pkey DO UPDATE
    SET channel = EXCLUDED.channel, columns = EXCLUDED.columns, ops = EXCLUDED.ops,
        changed = EXCLUDED.changed, per_statement = EXCLUDED.per_statement,
        durable = EXCLUDED.durable, key_columns = EXCLUDED.key_columns,
        key_source = EXCLUDED.key_source, trigger_format = EXCLUDED.trigger_format,
        column_nums = EXCLUDED.column_nums, changed_nums = EXCLUDED.changed_nums,
        shape = EXCLUDED.shape, native = EXCLUDED.native, updated_at = now();
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
         r.key_columns, r.key_source, r.created_at, r.updated_at, r.native
    FROM pgfanout.watch_registry r
   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.tbl);
COMMENT ON VIEW pgfanout.watches IS 'tables watched by pgfanout.watch()';

-- Version 2's rewatch(force) gained a parameter.
DROP FUNCTION IF EXISTS pgfanout.rewatch(boolean);

-- Re-creates the triggers of registered watches that were made by another trigger format, or
-- natively where native triggers are not (or no longer) enabled and the other way round, whose
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
       OR r.native IS DISTINCT FROM pgfanout.native_enabled()
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
-- table (a column added, dropped, renamed or retyped, the table renamed or moved to another
-- schema) and after ALTER SCHEMA on its schema (renamed) its functions are generated again, and a
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
                     WHERE c.classid = 'pg_class'::regclass
                    UNION
                    SELECT w.tbl FROM pg_event_trigger_ddl_commands() c
                      JOIN pg_class t ON t.relnamespace = c.objid
                      JOIN pgfanout.watch_registry w ON w.tbl = t.oid
                     WHERE c.classid = 'pg_namespace'::regclass);
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
  -- Before SQL version 4 it fired on ALTER TABLE only.
  IF EXISTS (SELECT 1 FROM pg_event_trigger
              WHERE evtname = 'pgfanout_watch_ddl' AND evttags IS DISTINCT FROM '{"ALTER TABLE","ALTER SCHEMA"}') THEN
    DROP EVENT TRIGGER pgfanout_watch_ddl;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgfanout_watch_ddl') THEN
    CREATE EVENT TRIGGER pgfanout_watch_ddl ON ddl_command_end WHEN TAG IN ('ALTER TABLE', 'ALTER SCHEMA')
      EXECUTE FUNCTION pgfanout.on_ddl();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgfanout_watch_drop') THEN
    CREATE EVENT TRIGGER pgfanout_watch_drop ON sql_drop WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA')
      EXECUTE FUNCTION pgfanout.on_ddl();
  END IF;
END
$do$;
