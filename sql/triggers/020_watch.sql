-- Trigger generators: pgfanout.watch / unwatch, the registry they keep, and the trigger functions.
--
-- Trigger functions take their settings from the trigger's arguments (no lookup per row):
--   TG_ARGV[0] channel
--   TG_ARGV[1] columns carried in new/old, as a text[] literal, '' for all columns
--   TG_ARGV[2] columns whose change makes an UPDATE worth sending, '' for the carried columns
--   TG_ARGV[3] key columns (primary key or replica identity), text[] literal, '{}' for none
--   TG_ARGV[4] durable: 't' writes the event to pgfanout.outbox and NOTIFYs a doorbell
--   TG_ARGV[5] the watched table's name when watch() ran (a fast check that TG_TABLE_NAME is it)
-- The argument layout is trigger format 1 (pgfanout.trigger_format()); install re-creates every
-- watch whose registry row records another format.

CREATE OR REPLACE FUNCTION pgfanout.trigger_format() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT 1 $$;

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

-- Row-level trigger: one notification per changed row.
CREATE OR REPLACE FUNCTION pgfanout.notify_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  v_channel text := TG_ARGV[0];
  v_keep text[] := nullif(TG_ARGV[1], '')::text[];
  v_changed text[] := coalesce(nullif(TG_ARGV[2], '')::text[], v_keep);
  v_keys text[] := TG_ARGV[3]::text[];
  v_schema text := TG_TABLE_SCHEMA;
  v_table text := TG_TABLE_NAME;
  v_new jsonb;
  v_old jsonb;
  v_id bigint;
BEGIN
  IF TG_OP <> 'DELETE' THEN v_new := to_jsonb(NEW); END IF;
  IF TG_OP <> 'INSERT' THEN v_old := to_jsonb(OLD); END IF;
  -- jsonb, not the row, is compared: some column types (json, point, xml) have no equality.
  IF TG_OP = 'UPDATE' THEN
    IF v_changed IS NULL THEN
      IF v_new = v_old THEN RETURN NULL; END IF;
    ELSIF pgfanout.jsonb_pick(v_new, v_changed) IS NOT DISTINCT FROM pgfanout.jsonb_pick(v_old, v_changed) THEN
      RETURN NULL;
    END IF;
  END IF;
  IF v_keep IS NOT NULL THEN
    v_new := pgfanout.jsonb_pick(v_new, v_keep);
    v_old := pgfanout.jsonb_pick(v_old, v_keep);
  END IF;
  IF v_table IS DISTINCT FROM TG_ARGV[5] THEN
    SELECT w.schema_name, w.table_name INTO v_schema, v_table
      FROM pgfanout.watched_table(TG_RELID, TG_NAME) AS w;
  END IF;

  IF TG_ARGV[4]::boolean THEN
    -- The outbox keeps the whole event (no NOTIFY size limit there); NOTIFY only rings the bell.
    INSERT INTO pgfanout.outbox (channel, payload)
    VALUES (v_channel, pgfanout.build_payload(TG_OP, v_schema, v_table, v_new, v_old, v_keys, NULL)::jsonb)
    RETURNING id INTO v_id;
    PERFORM pg_notify(v_channel, '{"v":1,"outbox":true,"id":' || v_id || '}');
  ELSE
    PERFORM pg_notify(v_channel, pgfanout.build_payload(TG_OP, v_schema, v_table, v_new, v_old, v_keys));
  END IF;
  RETURN NULL;
END
$fn$;

-- Statement-level trigger (one per op, with transition tables pgfanout_new / pgfanout_old): the
-- changed rows go out as "rows":[{"new":..,"old":..},...] split into parts that each stay under
-- the NOTIFY limit, with "part":k,"parts":n.
CREATE OR REPLACE FUNCTION pgfanout.notify_statement() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
SET jit = off  -- compiling the row query costs more than it saves, on every statement
AS $fn$
DECLARE
  v_channel text := TG_ARGV[0];
  v_keep text[] := nullif(TG_ARGV[1], '')::text[];
  v_changed text[] := coalesce(nullif(TG_ARGV[2], '')::text[], v_keep);
  v_keys text[] := TG_ARGV[3]::text[];
  v_durable boolean := TG_ARGV[4]::boolean;
  v_all text[];
  v_drop text[] := '{}';       -- columns not carried in new/old
  v_nonkey text[];             -- columns outside the key
  v_unchanged text[] := '{}';  -- columns whose change alone does not count
  v_env record;
  v_fixed integer;             -- bytes of a part's envelope without its rows
  v_budget integer;            -- bytes left for the rows of one part
  v_row_budget integer;        -- a single row longer than this is truncated (NULL: never)
  v_source text;
  v_nj text;
  v_oj text;
  v_differs text;
  v_elems text[];
  v_elem text;
  v_len integer;
  v_part text[] := '{}';
  v_part_len integer := 0;
  v_parts text[] := '{}';
  v_payload text;
  v_id bigint;
  k integer;
BEGIN
  SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO v_all
    FROM pg_attribute a
   WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
  IF v_keep IS NOT NULL THEN
    v_drop := ARRAY(SELECT unnest(v_all) EXCEPT SELECT unnest(v_keep));
  END IF;
  v_nonkey := ARRAY(SELECT unnest(v_all) EXCEPT SELECT unnest(v_keys));
  IF v_changed IS NOT NULL THEN
    v_unchanged := ARRAY(SELECT unnest(v_all) EXCEPT SELECT unnest(v_changed));
  END IF;

  v_env := pgfanout.envelope_parts(TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
                                   pg_current_xact_id(), statement_timestamp());
  -- part and parts are counted as 10 digits each, the most an integer needs.
  v_fixed := octet_length(v_env.head || ',"part":,"parts":,"rows":[]' || v_env.tail) + 20;
  IF v_durable THEN
    v_budget := 1048576 - v_fixed;   -- outbox parts: about 1 MB, rows never truncated
    v_row_budget := NULL;
  ELSE
    v_budget := pgfanout.notify_max_bytes() - v_fixed;
    v_row_budget := v_budget;
  END IF;

  -- The rows as (nj, oj): new and old image as jsonb, NULL where the op has none.
  v_nj := CASE WHEN cardinality(v_drop) > 0 THEN '(r.nj - $3)' ELSE 'r.nj' END;
  v_oj := CASE WHEN cardinality(v_drop) > 0 THEN '(r.oj - $3)' ELSE 'r.oj' END;
  IF cardinality(v_unchanged) > 0 THEN
    v_differs := '(r.nj - $2) IS DISTINCT FROM (r.oj - $2)';
  ELSE
    v_differs := 'r.nj IS DISTINCT FROM r.oj';
  END IF;
  IF TG_OP = 'INSERT' THEN
    v_source := 'SELECT to_jsonb(pgfanout_n) AS nj, NULL::jsonb AS oj FROM pgfanout_new pgfanout_n';
  ELSIF TG_OP = 'DELETE' THEN
    v_source := 'SELECT NULL::jsonb AS nj, to_jsonb(pgfanout_o) AS oj FROM pgfanout_old pgfanout_o';
  ELSIF cardinality(v_keys) > 0 THEN
    -- Pair old and new rows by key, compared in the columns' own types (a hash join). A row
    -- whose key changed appears as an old-only and a new-only entry.
    v_source := format(
      'SELECT * FROM (SELECT to_jsonb(pgfanout_n) AS nj, to_jsonb(pgfanout_o) AS oj
                        FROM pgfanout_new pgfanout_n FULL JOIN pgfanout_old pgfanout_o ON %s
                      OFFSET 0) AS r
        WHERE r.nj IS NULL OR r.oj IS NULL OR %s',
      (SELECT string_agg(format('pgfanout_n.%1$I = pgfanout_o.%1$I', u.col), ' AND ') FROM unnest(v_keys) AS u(col)),
      v_differs);
  ELSE
    -- A keyless table: PostgreSQL stores the old and new image of each updated row at the same
    -- position of the two transition tables.
    v_source := format(
      'SELECT * FROM (SELECT n.nj, o.oj
                        FROM (SELECT row_number() OVER () AS rn, to_jsonb(pgfanout_n) AS nj FROM pgfanout_new pgfanout_n) AS n
                        JOIN (SELECT row_number() OVER () AS rn, to_jsonb(pgfanout_o) AS oj FROM pgfanout_old pgfanout_o) AS o
                          USING (rn)
                      OFFSET 0) AS r
        WHERE %s',
      v_differs);
  END IF;

  -- Each row as its JSON text; when longer than v_row_budget, its key only, marked truncated.
  -- (OFFSET 0 keeps the planner from inlining the subqueries, which would build each row's
  -- jsonb and text several times over.)
  EXECUTE format($q$
    SELECT array_agg(CASE
             WHEN $4 IS NULL OR octet_length(s.e) <= $4 THEN s.e
             WHEN cardinality($5::text[]) > 0
              AND octet_length('{' || concat_ws(',', '"new":' || (s.nj - $1)::text,
                                                '"old":' || (s.oj - $1)::text) || ',"truncated":true}') <= $4
               THEN '{' || concat_ws(',', '"new":' || (s.nj - $1)::text,
                                     '"old":' || (s.oj - $1)::text) || ',"truncated":true}'
             ELSE '{"truncated":true}'
           END)
      FROM (SELECT r.nj, r.oj, '{' || concat_ws(',', '"new":' || %s::text, '"old":' || %s::text) || '}' AS e
              FROM (%s) AS r
            OFFSET 0) AS s
  $q$, v_nj, v_oj, v_source)
  INTO v_elems
  USING v_nonkey, v_unchanged, v_drop, v_row_budget, v_keys;

  IF v_elems IS NULL THEN
    RETURN NULL;  -- no row changed
  END IF;

  -- Greedy packing, in the order the rows came.
  FOREACH v_elem IN ARRAY v_elems LOOP
    v_len := octet_length(v_elem);
    IF v_part_len > 0 AND v_part_len + 1 + v_len > v_budget THEN
      v_parts := v_parts || array_to_string(v_part, ',');
      v_part := '{}';
      v_part_len := 0;
    END IF;
    v_part_len := v_part_len + v_len + CASE WHEN v_part_len > 0 THEN 1 ELSE 0 END;
    v_part := v_part || v_elem;
  END LOOP;
  v_parts := v_parts || array_to_string(v_part, ',');

  FOR k IN 1 .. cardinality(v_parts) LOOP
    v_payload := v_env.head || ',"part":' || k || ',"parts":' || cardinality(v_parts)
      || ',"rows":[' || v_parts[k] || ']' || v_env.tail;
    IF v_durable THEN
      INSERT INTO pgfanout.outbox (channel, payload) VALUES (v_channel, v_payload::jsonb)
      RETURNING id INTO v_id;
    ELSE
      PERFORM pg_notify(v_channel, v_payload);
    END IF;
  END LOOP;
  IF v_durable THEN
    PERFORM pg_notify(v_channel, '{"v":1,"outbox":true,"id":' || v_id || '}');
  END IF;
  RETURN NULL;
END
$fn$;

-- The trigger names watch() owns on a table.
CREATE OR REPLACE FUNCTION pgfanout.trigger_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT '{pgfanout_watch,pgfanout_watch_insert,pgfanout_watch_update,pgfanout_watch_delete}'::text[] $$;

-- Drops pgfanout's triggers from a table; true if there were any.
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
  RETURN dropped;
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
  v_args text;
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
  v_args := format('%L, %L, %L, %L, %L, %L',
                   channel, coalesce(v_keep::text, ''), coalesce(changed::text, ''),
                   v_key.columns::text, durable::text, v_name);
  IF per_statement THEN
    FOREACH v_op IN ARRAY v_ops LOOP
      EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.%I REFERENCING %s FOR EACH STATEMENT '
                     'EXECUTE FUNCTION pgfanout.notify_statement(%s)',
                     'pgfanout_watch_' || lower(v_op), v_op, v_schema, v_name,
                     CASE v_op WHEN 'INSERT' THEN 'NEW TABLE AS pgfanout_new'
                               WHEN 'DELETE' THEN 'OLD TABLE AS pgfanout_old'
                               ELSE 'OLD TABLE AS pgfanout_old NEW TABLE AS pgfanout_new' END,
                     v_args);
    END LOOP;
  ELSE
    EXECUTE format('CREATE TRIGGER pgfanout_watch AFTER %s ON %I.%I FOR EACH ROW '
                   'EXECUTE FUNCTION pgfanout.notify_row(%s)',
                   array_to_string(v_ops, ' OR '), v_schema, v_name, v_args);
  END IF;

  INSERT INTO pgfanout.watch_registry AS r
    (tbl, channel, columns, ops, changed, per_statement, durable, key_columns, key_source, trigger_format)
  VALUES (tbl, channel, columns, v_ops, changed, per_statement, durable, v_key.columns, v_key.source,
          pgfanout.trigger_format())
  ON CONFLICT ON CONSTRAINT watch_registry_pkey DO UPDATE
    SET channel = EXCLUDED.channel, columns = EXCLUDED.columns, ops = EXCLUDED.ops,
        changed = EXCLUDED.changed, per_statement = EXCLUDED.per_statement,
        durable = EXCLUDED.durable, key_columns = EXCLUDED.key_columns,
        key_source = EXCLUDED.key_source, trigger_format = EXCLUDED.trigger_format,
        updated_at = now();
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

-- Re-creates the triggers of registered watches that were made by another trigger format, whose
-- triggers are missing, or whose key has changed since (force: all of them). Forgets watches of
-- tables that no longer exist. Returns the number of watches re-created. Run by install.
CREATE OR REPLACE FUNCTION pgfanout.rewatch(force boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  r record;
  n integer := 0;
  wanted integer;
BEGIN
  DELETE FROM pgfanout.watch_registry w
   WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = w.tbl);
  FOR r IN SELECT * FROM pgfanout.watch_registry ORDER BY tbl::oid LOOP
    wanted := CASE WHEN r.per_statement THEN cardinality(r.ops) ELSE 1 END;
    IF force
       OR r.trigger_format IS DISTINCT FROM pgfanout.trigger_format()
       OR r.key_columns IS DISTINCT FROM (pgfanout.key_columns(r.tbl)).columns
       OR wanted <> (SELECT count(*) FROM pg_trigger t
                      WHERE t.tgrelid = r.tbl AND t.tgname = ANY (pgfanout.trigger_names()))
    THEN
      PERFORM pgfanout.watch(r.tbl, r.channel, r.columns, r.ops, r.changed, r.per_statement, r.durable);
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$fn$;
