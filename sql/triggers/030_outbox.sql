-- Durable outbox: events written in the writer's transaction, read in a safe order by consumers.
--
-- Ordering. Ids are taken when rows are inserted, but transactions commit in another order, so a
-- reader that follows ids could pass id 2 (committed) while id 1 is still in flight, and never
-- see id 1. Instead events are handed out only once every transaction that could have written
-- before them has ended: txid < pg_snapshot_xmin(pg_current_snapshot()), ordered by (txid, id).
-- New transactions always get a larger txid than that horizon, so a position (txid, id) never
-- has to move back. The price: one long-running writing transaction holds back delivery.

CREATE TABLE IF NOT EXISTS pgfanout.outbox (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel    text NOT NULL,
  payload    jsonb NOT NULL,
  txid       xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX IF NOT EXISTS outbox_txid_id_idx ON pgfanout.outbox (txid, id);
COMMENT ON TABLE pgfanout.outbox IS 'durable events of watches made with durable => true';

CREATE TABLE IF NOT EXISTS pgfanout.consumers (
  name       text PRIMARY KEY,
  last_txid  xid8 NOT NULL DEFAULT '0',
  last_id    bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),  -- the position last moved
  seen_at    timestamptz NOT NULL DEFAULT pg_catalog.now()   -- last fetch, ack or claim
);
COMMENT ON TABLE pgfanout.consumers IS
  'outbox positions: one row per consumer (outbox_fetch/outbox_ack) or group (outbox_claim)';

-- Registers a consumer if it is new and notes that it is alive (at most once a minute, to keep
-- polling from writing on every call). A new consumer starts before the oldest retained event,
-- or, with at_head, after the newest event that is already safe to read.
CREATE OR REPLACE FUNCTION pgfanout.outbox_register(consumer text, at_head boolean DEFAULT false)
RETURNS pgfanout.consumers
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  c pgfanout.consumers;
BEGIN
  IF consumer IS NULL OR consumer = '' THEN
    RAISE EXCEPTION 'pgfanout: consumer name must not be empty';
  END IF;
  UPDATE pgfanout.consumers AS x SET seen_at = now()
   WHERE x.name = consumer AND x.seen_at < now() - interval '1 minute'
  RETURNING * INTO c;
  IF FOUND THEN RETURN c; END IF;
  SELECT * INTO c FROM pgfanout.consumers AS x WHERE x.name = consumer;
  IF FOUND THEN RETURN c; END IF;

  INSERT INTO pgfanout.consumers AS x (name, last_txid, last_id)
  SELECT consumer, coalesce(h.txid, '0'), coalesce(h.id, 0)
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
      SELECT o.txid, o.id FROM pgfanout.outbox o
       WHERE at_head AND o.txid < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY o.txid DESC, o.id DESC LIMIT 1) AS h ON true
  ON CONFLICT (name) DO NOTHING;
  SELECT * INTO c FROM pgfanout.consumers AS x WHERE x.name = consumer;
  RETURN c;
END
$fn$;

-- The events after position (after_txid, after_id) that are safe to hand out, oldest first.
CREATE OR REPLACE FUNCTION pgfanout.outbox_after(after_txid xid8, after_id bigint,
  channels text[], max_rows integer)
RETURNS SETOF pgfanout.outbox
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  SELECT o.*
    FROM pgfanout.outbox o
   WHERE (o.txid, o.id) > (after_txid, after_id)
     AND o.txid < pg_snapshot_xmin(pg_current_snapshot())
     AND (channels IS NULL OR o.channel = ANY (channels))
   ORDER BY o.txid, o.id
   LIMIT max_rows
$$;

-- Moves a consumer's position forward (never back); true if it moved.
CREATE OR REPLACE FUNCTION pgfanout.outbox_move(consumer text, to_txid xid8, to_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
BEGIN
  UPDATE pgfanout.consumers AS x
     SET last_txid = to_txid, last_id = to_id, updated_at = now(), seen_at = now()
   WHERE x.name = consumer AND (x.last_txid, x.last_id) < (to_txid, to_id);
  RETURN FOUND;
END
$fn$;

-- With a channel filter, a consumer would otherwise never move past other channels' events (and
-- trim could never delete them): move it to the newest safe event before the first event of its
-- own channels. Computed in one statement, so in one snapshot: a caller that found nothing to
-- read took its snapshot earlier, and events of its channels may have become safe since; they
-- must never be passed over.
DROP FUNCTION IF EXISTS pgfanout.outbox_skip_idle(text, xid8, bigint);
CREATE OR REPLACE FUNCTION pgfanout.outbox_skip_idle(consumer text, after_txid xid8,
  after_id bigint, channels text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  h record;
BEGIN
  WITH mine AS (
    SELECT c.txid, c.id FROM pgfanout.outbox c
     WHERE (c.txid, c.id) > (after_txid, after_id) AND c.channel = ANY (channels)
     ORDER BY c.txid, c.id
     LIMIT 1)
  SELECT o.txid, o.id INTO h
    FROM pgfanout.outbox o
   WHERE (o.txid, o.id) > (after_txid, after_id)
     AND o.txid < pg_snapshot_xmin(pg_current_snapshot())
     AND (NOT EXISTS (SELECT 1 FROM mine) OR (o.txid, o.id) < (SELECT m.txid, m.id FROM mine m))
   ORDER BY o.txid DESC, o.id DESC
   LIMIT 1;
  IF FOUND THEN
    PERFORM pgfanout.outbox_move(consumer, h.txid, h.id);
  END IF;
END
$fn$;

-- The next events (at most max_rows; channels NULL: all) after the consumer's position. Does not
-- move the position: the same events come again until outbox_ack (at-least-once).
CREATE OR REPLACE FUNCTION pgfanout.outbox_fetch(consumer text, channels text[] DEFAULT NULL,
  max_rows integer DEFAULT 100)
RETURNS TABLE (id bigint, channel text, payload jsonb, txid xid8, created_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  pos pgfanout.consumers := pgfanout.outbox_register(consumer);
BEGIN
  RETURN QUERY
    SELECT o.id, o.channel, o.payload, o.txid, o.created_at
      FROM pgfanout.outbox_after(pos.last_txid, pos.last_id, channels, max_rows) AS o;
  IF NOT FOUND AND channels IS NOT NULL THEN
    PERFORM pgfanout.outbox_skip_idle(consumer, pos.last_txid, pos.last_id, channels);
  END IF;
END
$fn$;

-- Marks everything up to and including event (txid, id) as consumed. Never moves backwards;
-- returns true if the position moved. Refuses a position that is not yet safe to read.
CREATE OR REPLACE FUNCTION pgfanout.outbox_ack(consumer text, txid xid8, id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
BEGIN
  IF txid IS NULL OR id IS NULL THEN
    RAISE EXCEPTION 'pgfanout.outbox_ack: txid and id must not be NULL';
  END IF;
  IF txid >= pg_snapshot_xmin(pg_current_snapshot()) THEN
    RAISE EXCEPTION 'pgfanout.outbox_ack: (%, %) was not handed out by outbox_fetch', txid, id
      USING HINT = 'transactions older than that txid are still running';
  END IF;
  PERFORM pgfanout.outbox_register(consumer);
  RETURN pgfanout.outbox_move(consumer, txid, id);
END
$fn$;

-- For "sent by exactly one instance": instances share a group position. The first caller locks
-- the group's row (others get no rows until it commits or rolls back), receives the next batch,
-- and the position moves past the batch in the same transaction; the caller records what it
-- did with the batch in that transaction too. A rollback hands the batch out again.
CREATE OR REPLACE FUNCTION pgfanout.outbox_claim(grp text, channels text[] DEFAULT NULL,
  max_rows integer DEFAULT 100)
RETURNS TABLE (id bigint, channel text, payload jsonb, txid xid8, created_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  pos pgfanout.consumers;
  r pgfanout.outbox;
  last_txid xid8;
  last_id bigint;
BEGIN
  SELECT * INTO pos FROM pgfanout.consumers x WHERE x.name = grp FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    IF EXISTS (SELECT 1 FROM pgfanout.consumers x WHERE x.name = grp) THEN
      RETURN;  -- another instance holds the group
    END IF;
    -- A new group. Its row is not visible to others until this transaction commits, and an
    -- INSERT of the same name elsewhere would wait for it: an advisory lock makes the other
    -- instances return at once instead.
    IF NOT pg_try_advisory_xact_lock(1885824609, hashtext(grp)) THEN
      RETURN;
    END IF;
    PERFORM pgfanout.outbox_register(grp);
    SELECT * INTO pos FROM pgfanout.consumers x WHERE x.name = grp FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
      RETURN;
    END IF;
  END IF;

  FOR r IN SELECT * FROM pgfanout.outbox_after(pos.last_txid, pos.last_id, channels, max_rows) LOOP
    id := r.id; channel := r.channel; payload := r.payload; txid := r.txid; created_at := r.created_at;
    last_txid := r.txid; last_id := r.id;
    RETURN NEXT;
  END LOOP;

  IF last_id IS NOT NULL THEN
    PERFORM pgfanout.outbox_move(grp, last_txid, last_id);
  ELSIF channels IS NOT NULL THEN
    PERFORM pgfanout.outbox_skip_idle(grp, pos.last_txid, pos.last_id, channels);
  ELSE
    UPDATE pgfanout.consumers x SET seen_at = now() WHERE x.name = grp;
  END IF;
END
$fn$;

-- Forgets a consumer or group (its position no longer holds back trimming).
CREATE OR REPLACE FUNCTION pgfanout.outbox_forget(consumer text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
BEGIN
  DELETE FROM pgfanout.consumers x WHERE x.name = consumer;
  RETURN FOUND;
END
$fn$;

-- Deletes up to `batch` events that every live consumer has passed and that are older than
-- `keep`, oldest first, and returns how many. `keep` is the window in which clients can still
-- resume from an event (SSE Last-Event-ID) after the daemons consumed it. A consumer not seen for
-- max_age is ignored (a NOTICE names it). With no live consumer nothing is deleted. Call it
-- repeatedly (each call is one short transaction) until it returns less than `batch`.
DROP FUNCTION IF EXISTS pgfanout.outbox_trim(interval, integer);
CREATE OR REPLACE FUNCTION pgfanout.outbox_trim(max_age interval DEFAULT '7 days',
  batch integer DEFAULT 10000, keep interval DEFAULT '0')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  c record;
  low record;
  n bigint;
BEGIN
  FOR c IN SELECT x.name, x.seen_at FROM pgfanout.consumers x
            WHERE x.seen_at < now() - max_age ORDER BY x.name LOOP
    RAISE NOTICE 'pgfanout.outbox_trim: ignoring consumer "%", not seen since %', c.name, c.seen_at;
  END LOOP;
  SELECT x.last_txid, x.last_id INTO low
    FROM pgfanout.consumers x
   WHERE x.seen_at >= now() - max_age
   ORDER BY x.last_txid, x.last_id
   LIMIT 1;
  IF NOT FOUND THEN
    RAISE NOTICE 'pgfanout.outbox_trim: no live consumer, nothing trimmed';
    RETURN 0;
  END IF;
  DELETE FROM pgfanout.outbox o
   WHERE o.id IN (SELECT d.id FROM pgfanout.outbox d
                   WHERE (d.txid, d.id) <= (low.last_txid, low.last_id)
                     AND d.created_at < pg_catalog.now() - keep
                   ORDER BY d.txid, d.id
                   LIMIT batch);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;
