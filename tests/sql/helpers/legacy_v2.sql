-- The trigger functions of SQL version 2 (trigger format 1), kept verbatim in their own schema
-- (only the schema name differs) so that tests can compare what they send with what the
-- generated trigger functions send for the same writes (tests/sql/55_legacy_compare.sql), and can
-- build watches the way version 2 did (tests/sql/run.sh, upgrade in place). Not installed by
-- pgfanout. Trigger arguments of format 1:
--   TG_ARGV[0] channel, [1] carried columns ('' all), [2] changed columns ('' carried),
--   [3] key columns, [4] durable, [5] the table's name when watch() ran.
CREATE SCHEMA IF NOT EXISTS pgfanout_v2;

-- NOTIFY rejects a payload of 8000 bytes or more and aborts the writer's transaction.
CREATE OR REPLACE FUNCTION pgfanout_v2.notify_max_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout_v2, pg_temp
AS $$ SELECT 7999 $$;

-- The object j restricted to the given keys; j itself when keys is NULL.
CREATE OR REPLACE FUNCTION pgfanout_v2.jsonb_pick(j jsonb, keys text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout_v2, pg_temp
AS $$
  SELECT CASE
    WHEN j IS NULL OR keys IS NULL THEN j
    ELSE (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
            FROM jsonb_each(j) AS e
           WHERE e.key = ANY (keys))
  END
$$;

-- The fixed parts of an envelope: head is '{"v":1,"op":..,"schema":..,"table":..' (no trailing
-- comma), tail is ',"txid":"..","at":".."}'. Everything between them starts with a comma.
CREATE OR REPLACE FUNCTION pgfanout_v2.envelope_parts(
  op text, schema_name text, table_name text, txid xid8, at timestamptz,
  OUT head text, OUT tail text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout_v2, pg_temp
AS $$
  SELECT '{"v":1,"op":' || to_json(op)::text
           || ',"schema":' || to_json(schema_name)::text
           || ',"table":' || to_json(table_name)::text,
         ',"txid":"' || txid::text
           || '","at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}'
$$;

-- The payload text of one row-level event. new_row / old_row are already filtered to the watched
-- columns; a NULL one is left out. When the text would exceed max_bytes (NULL: no limit) it is
-- sent with only the key columns and "truncated":true, and if even that is too long (or the table
-- has no key) with no row data at all. The result is never NULL and never longer than max_bytes.
CREATE OR REPLACE FUNCTION pgfanout_v2.build_payload(
  op text, schema_name text, table_name text, new_row jsonb, old_row jsonb,
  key_columns text[] DEFAULT '{}', max_bytes integer DEFAULT pgfanout_v2.notify_max_bytes(),
  txid xid8 DEFAULT pg_catalog.pg_current_xact_id(), at timestamptz DEFAULT pg_catalog.statement_timestamp())
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgfanout_v2, pg_temp
AS $fn$
DECLARE
  -- The same text as envelope_parts(), written out: this runs once per row.
  head text := '{"v":1,"op":' || to_json(op)::text
               || ',"schema":' || to_json(schema_name)::text
               || ',"table":' || to_json(table_name)::text;
  tail text := ',"txid":"' || txid::text
               || '","at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}';
  payload text;
BEGIN
  payload := head
    || coalesce(',"new":' || new_row::text, '')
    || coalesce(',"old":' || old_row::text, '')
    || tail;
  IF max_bytes IS NULL OR octet_length(payload) <= max_bytes THEN
    RETURN payload;
  END IF;
  IF cardinality(key_columns) > 0 THEN
    payload := head
      || coalesce(',"new":' || pgfanout_v2.jsonb_pick(new_row, key_columns)::text, '')
      || coalesce(',"old":' || pgfanout_v2.jsonb_pick(old_row, key_columns)::text, '')
      || ',"truncated":true' || tail;
    IF octet_length(payload) <= max_bytes THEN
      RETURN payload;
    END IF;
  END IF;
  RETURN head || ',"truncated":true' || tail;
END
$fn$;

-- The schema and name of the table a trigger was created on. A row trigger on a partitioned table
-- is cloned onto each partition and fires there, so TG_TABLE_NAME is the partition's name; follow
-- the clone back to the trigger that watch() created.
CREATE OR REPLACE FUNCTION pgfanout_v2.watched_table(relid oid, trigger_name name,
  OUT schema_name text, OUT table_name text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgfanout_v2, pg_temp
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
CREATE OR REPLACE FUNCTION pgfanout_v2.notify_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout_v2, pg_temp
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
    ELSIF pgfanout_v2.jsonb_pick(v_new, v_changed) IS NOT DISTINCT FROM pgfanout_v2.jsonb_pick(v_old, v_changed) THEN
      RETURN NULL;
    END IF;
  END IF;
  IF v_keep IS NOT NULL THEN
    v_new := pgfanout_v2.jsonb_pick(v_new, v_keep);
    v_old := pgfanout_v2.jsonb_pick(v_old, v_keep);
  END IF;
  IF v_table IS DISTINCT FROM TG_ARGV[5] THEN
    SELECT w.schema_name, w.table_name INTO v_schema, v_table
      FROM pgfanout_v2.watched_table(TG_RELID, TG_NAME) AS w;
  END IF;

  IF TG_ARGV[4]::boolean THEN
    -- The outbox keeps the whole event (no NOTIFY size limit there); NOTIFY only rings the bell.
    INSERT INTO pgfanout.outbox (channel, payload)
    VALUES (v_channel, pgfanout_v2.build_payload(TG_OP, v_schema, v_table, v_new, v_old, v_keys, NULL)::jsonb)
    RETURNING id INTO v_id;
    PERFORM pg_notify(v_channel, '{"v":1,"outbox":true,"id":' || v_id || '}');
  ELSE
    PERFORM pg_notify(v_channel, pgfanout_v2.build_payload(TG_OP, v_schema, v_table, v_new, v_old, v_keys));
  END IF;
  RETURN NULL;
END
$fn$;

-- Statement-level trigger (one per op, with transition tables pgfanout_new / pgfanout_old): the
-- changed rows go out as "rows":[{"new":..,"old":..},...] split into parts that each stay under
-- the NOTIFY limit, with "part":k,"parts":n.
CREATE OR REPLACE FUNCTION pgfanout_v2.notify_statement() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout_v2, pg_temp
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

  v_env := pgfanout_v2.envelope_parts(TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
                                   pg_current_xact_id(), statement_timestamp());
  -- part and parts are counted as 10 digits each, the most an integer needs.
  v_fixed := octet_length(v_env.head || ',"part":,"parts":,"rows":[]' || v_env.tail) + 20;
  IF v_durable THEN
    v_budget := 1048576 - v_fixed;   -- outbox parts: about 1 MB, rows never truncated
    v_row_budget := NULL;
  ELSE
    v_budget := pgfanout_v2.notify_max_bytes() - v_fixed;
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

-- Creates the triggers version 2's watch() would have created on tbl, but named legacy_watch*
-- and calling the functions above, so that they can run next to a current watch of the same
-- table. Returns the channel.
CREATE OR REPLACE FUNCTION pgfanout_v2.watch(tbl regclass, channel text, columns text[] DEFAULT NULL,
  ops text[] DEFAULT '{INSERT,UPDATE,DELETE}', changed text[] DEFAULT NULL,
  per_statement boolean DEFAULT false, durable boolean DEFAULT false,
  prefix text DEFAULT 'legacy_watch', fn_schema text DEFAULT 'pgfanout_v2')
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout_v2, pg_temp
AS $fn$
DECLARE
  v_schema text;
  v_name text;
  v_key text[] := (pgfanout.key_columns(tbl)).columns;
  v_keep text[];
  v_args text;
  v_op text;
BEGIN
  SELECT n.nspname, c.relname INTO v_schema, v_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  IF columns IS NOT NULL THEN
    v_keep := ARRAY(SELECT c FROM unnest(v_key || columns) WITH ORDINALITY AS u(c, i)
                     GROUP BY c ORDER BY min(i));
  END IF;
  v_args := format('%L, %L, %L, %L, %L, %L',
                   channel, coalesce(v_keep::text, ''), coalesce(changed::text, ''),
                   v_key::text, durable::text, v_name);
  IF per_statement THEN
    FOREACH v_op IN ARRAY ops LOOP
      EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.%I REFERENCING %s FOR EACH STATEMENT '
                     'EXECUTE FUNCTION %I.notify_statement(%s)',
                     prefix || '_' || lower(v_op), v_op, v_schema, v_name,
                     CASE v_op WHEN 'INSERT' THEN 'NEW TABLE AS pgfanout_new'
                               WHEN 'DELETE' THEN 'OLD TABLE AS pgfanout_old'
                               ELSE 'OLD TABLE AS pgfanout_old NEW TABLE AS pgfanout_new' END,
                     fn_schema, v_args);
    END LOOP;
  ELSE
    EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.%I FOR EACH ROW EXECUTE FUNCTION %I.notify_row(%s)',
                   prefix, array_to_string(ops, ' OR '), v_schema, v_name, fn_schema, v_args);
  END IF;
  RETURN channel;
END
$fn$;
