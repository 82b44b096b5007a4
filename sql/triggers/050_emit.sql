-- pgfanout.emit(channel, payload): an app event carried in the WAL instead of NOTIFY (SQL version 5).
--
-- It writes a transactional logical message (prefix 'pgfanout', content channel || E'\n' ||
-- payload) that the daemon's WAL source delivers to the rules on `channel` like a notification,
-- once the transaction commits; a rollback takes it back. Unlike pg_notify it takes no lock at
-- commit and has no 8000-byte limit. Without the WAL source (no `wal:` in the daemon's config, or
-- wal_level below logical) nobody reads the message. See docs/wal.md.
--
-- pg_logical_emit_message is reserved to superusers by default; emit() runs as its owner (the
-- role that ran `pgfanout install`) so that any role may call it, and it can only write messages
-- with pgfanout's prefix on a valid channel.
CREATE OR REPLACE FUNCTION pgfanout.emit(channel text, payload text) RETURNS pg_catalog.pg_lsn
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
BEGIN
  -- The same rule as the daemon's channel names: 1 to 63 bytes, not reserved, and no newline
  -- (it ends the channel in the message).
  IF channel IS NULL OR octet_length(channel) NOT BETWEEN 1 AND 63 OR strpos(channel, E'\n') > 0
     OR starts_with(channel, 'pgfanout.') THEN
    RAISE EXCEPTION 'pgfanout.emit: invalid channel %', coalesce(quote_literal(channel), 'NULL')
      USING ERRCODE = '22023',
            HINT = 'a channel is 1 to 63 bytes without a newline and does not start with "pgfanout."';
  END IF;
  RETURN pg_logical_emit_message(true, 'pgfanout', channel || E'\n' || coalesce(payload, ''));
END
$fn$;

CREATE OR REPLACE FUNCTION pgfanout.emit(channel text, payload jsonb) RETURNS pg_catalog.pg_lsn
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT pgfanout.emit(channel, payload::text) $$;

COMMENT ON FUNCTION pgfanout.emit(text, text) IS
  'an app event for the pgfanout WAL source: a transactional logical message on channel';
