-- Payload building: the notification envelope, the 8000-byte size guard, key and column filters.
--
-- Envelope (row level):
--   {"v":1,"op":"UPDATE","schema":"public","table":"users","new":{...},"old":{...},
--    "txid":"1234","at":"2026-11-22T10:00:00.123Z"}
-- The text is assembled by hand (not through jsonb) so that the fields keep this order.

-- NOTIFY rejects a payload of 8000 bytes or more and aborts the writer's transaction.
CREATE OR REPLACE FUNCTION pgfanout.notify_max_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT 7999 $$;

-- The object j restricted to the given keys; j itself when keys is NULL.
CREATE OR REPLACE FUNCTION pgfanout.jsonb_pick(j jsonb, keys text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
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
CREATE OR REPLACE FUNCTION pgfanout.envelope_parts(
  op text, schema_name text, table_name text, txid xid8, at timestamptz,
  OUT head text, OUT tail text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
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
CREATE OR REPLACE FUNCTION pgfanout.build_payload(
  op text, schema_name text, table_name text, new_row jsonb, old_row jsonb,
  key_columns text[] DEFAULT '{}', max_bytes integer DEFAULT pgfanout.notify_max_bytes(),
  txid xid8 DEFAULT pg_catalog.pg_current_xact_id(), at timestamptz DEFAULT pg_catalog.statement_timestamp())
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
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
      || coalesce(',"new":' || pgfanout.jsonb_pick(new_row, key_columns)::text, '')
      || coalesce(',"old":' || pgfanout.jsonb_pick(old_row, key_columns)::text, '')
      || ',"truncated":true' || tail;
    IF octet_length(payload) <= max_bytes THEN
      RETURN payload;
    END IF;
  END IF;
  RETURN head || ',"truncated":true' || tail;
END
$fn$;

-- The key of a table: its primary key columns, else the columns of its REPLICA IDENTITY index,
-- else an empty array (a keyless table). In index order, each column once (an index may name a
-- column twice).
CREATE OR REPLACE FUNCTION pgfanout.key_columns(tbl regclass, OUT columns text[], OUT source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT coalesce(
           (SELECT array_agg(c.attname ORDER BY c.ord)
              FROM (SELECT a.attname::text AS attname, min(k.ord) AS ord
                      FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     GROUP BY a.attname) AS c),
           '{}'::text[]),
         CASE WHEN i.indrelid IS NULL THEN 'none'
              WHEN i.indisprimary THEN 'primary key'
              ELSE 'replica identity' END
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
      SELECT x.indrelid, x.indkey, x.indisprimary
        FROM pg_index x
       WHERE x.indrelid = tbl AND (x.indisprimary OR x.indisreplident)
       ORDER BY x.indisprimary DESC
       LIMIT 1) AS i ON true
$$;
