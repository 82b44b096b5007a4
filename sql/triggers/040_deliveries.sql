-- Webhook deliveries of durable rules: recorded once for all instances, sent by any of them.
--
-- An instance claims outbox events for the webhook group (pgfanout.outbox_claim) and, in the same
-- transaction, records one row per webhook the event triggers (delivery_record), so each event's
-- deliveries are recorded exactly once however many instances run. Any instance then takes due
-- rows (delivery_take: FOR UPDATE SKIP LOCKED, with a lease), sends them and reports the outcome
-- (delivery_report). An instance that dies mid-delivery leaves its rows 'sending' until the lease
-- ends; then another instance (or the restarted one) takes them again: at-least-once, with the
-- same webhook-id. Rows keep the rendered target and body, not the headers: headers and secrets
-- come from the current config when a row is sent, so secrets are never stored here.

CREATE TABLE IF NOT EXISTS pgfanout.deliveries (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event           bigint,            -- the outbox id; NULL for a dead letter of a non-durable rule
  rule            text NOT NULL,
  action          integer NOT NULL,  -- position of the webhook in the rule's actions, from 0
  webhook_id      text NOT NULL UNIQUE,
  url             text NOT NULL,     -- scheme://host:port when recorded (for people: the current
                                     -- config's endpoint is used when sending)
  target          text NOT NULL,     -- rendered path and query
  body            text NOT NULL,
  state           text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'sending', 'done', 'dead')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  locked_by       text,
  locked_until    timestamptz,
  last_status     integer,
  last_error      text,              -- the reason and a response body excerpt
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX IF NOT EXISTS deliveries_due_idx ON pgfanout.deliveries (next_attempt_at)
  WHERE state IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS deliveries_dead_idx ON pgfanout.deliveries (id) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS deliveries_done_idx ON pgfanout.deliveries (updated_at)
  WHERE state = 'done';
COMMENT ON TABLE pgfanout.deliveries IS
  'webhook deliveries of durable rules, and dead letters (see pgfanout deliveries list)';

-- Records deliveries (parallel arrays, one element per delivery). A webhook_id already recorded
-- is skipped, so recording the same event twice cannot send it twice. Returns the rows added.
CREATE OR REPLACE FUNCTION pgfanout.delivery_record(events bigint[], rules text[],
  actions integer[], webhook_ids text[], urls text[], targets text[], bodies text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  n integer;
BEGIN
  INSERT INTO pgfanout.deliveries AS d (event, rule, action, webhook_id, url, target, body)
  SELECT * FROM unnest(events, rules, actions, webhook_ids, urls, targets, bodies)
  ON CONFLICT (webhook_id) DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

-- Takes up to max_rows due deliveries for `worker`: pending ones whose time has come, and
-- 'sending' ones whose lease ran out (their instance died). Each taken row is 'sending', leased
-- until now() + lease, and its attempts count is incremented; the count identifies this attempt
-- in delivery_report. Rows other instances are taking are skipped, not waited for.
CREATE OR REPLACE FUNCTION pgfanout.delivery_take(worker text, lease interval, max_rows integer)
RETURNS SETOF pgfanout.deliveries
LANGUAGE sql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  UPDATE pgfanout.deliveries d
     SET state = 'sending', attempts = d.attempts + 1, locked_by = worker,
         locked_until = now() + lease, next_attempt_at = now() + lease, updated_at = now()
   WHERE d.id IN (SELECT x.id FROM pgfanout.deliveries x
                   WHERE x.state IN ('pending', 'sending') AND x.next_attempt_at <= now()
                   ORDER BY x.next_attempt_at
                   LIMIT max_rows
                   FOR UPDATE SKIP LOCKED)
  RETURNING d.*
$$;

-- Reports attempts (parallel arrays): the new state ('done', 'pending' to retry after delay_ms,
-- or 'dead'), the HTTP status (NULL: none) and the error. A report whose attempt number no longer
-- matches (the lease ran out and another attempt started) is ignored. Returns the rows updated.
CREATE OR REPLACE FUNCTION pgfanout.delivery_report(ids bigint[], attempt_numbers integer[],
  states text[], statuses integer[], errors text[], delays_ms bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  n integer;
BEGIN
  UPDATE pgfanout.deliveries d
     SET state = r.state, last_status = r.status, last_error = r.error,
         next_attempt_at = CASE WHEN r.state = 'pending'
                                THEN now() + r.delay_ms * interval '1 millisecond'
                                ELSE d.next_attempt_at END,
         locked_by = NULL, locked_until = NULL, updated_at = now()
    FROM unnest(ids, attempt_numbers, states, statuses, errors, delays_ms)
           AS r(id, attempt, state, status, error, delay_ms)
   WHERE d.id = r.id AND d.attempts = r.attempt AND d.state = 'sending';
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

-- Records a dead letter of a non-durable rule (its deliveries live in memory until they fail).
CREATE OR REPLACE FUNCTION pgfanout.delivery_dead_letter(rule text, action integer,
  webhook_id text, url text, target text, body text, attempts integer, last_status integer,
  last_error text)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$
  INSERT INTO pgfanout.deliveries (rule, action, webhook_id, url, target, body, state, attempts,
                                   last_status, last_error)
  VALUES (rule, action, webhook_id, url, target, body, 'dead', attempts, last_status, last_error)
  ON CONFLICT (webhook_id) DO NOTHING
  RETURNING id
$$;

-- Sends dead letters again: the given ids (NULL: every dead letter) become pending with their
-- attempt count reset. Returns the rows changed.
CREATE OR REPLACE FUNCTION pgfanout.deliveries_retry(ids bigint[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  n integer;
BEGIN
  UPDATE pgfanout.deliveries d
     SET state = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
   WHERE d.state = 'dead' AND (ids IS NULL OR d.id = ANY (ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

-- Deletes up to `batch` delivered rows last updated more than `keep` ago; returns how many.
CREATE OR REPLACE FUNCTION pgfanout.deliveries_trim(keep interval DEFAULT '1 day',
  batch integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pgfanout, pg_temp
AS $fn$
DECLARE
  n bigint;
BEGIN
  DELETE FROM pgfanout.deliveries d
   WHERE d.id IN (SELECT x.id FROM pgfanout.deliveries x
                   WHERE x.state = 'done' AND x.updated_at < now() - keep
                   LIMIT batch);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;
