-- Helpers for the pgTAP tests (not a test file itself). They drive other sessions through dblink,
-- so a test can commit writes and watch the notifications they really send.
CREATE SCHEMA IF NOT EXISTS pgtest;

-- The conninfo of this database (run.sh stores it as a database setting).
CREATE OR REPLACE FUNCTION pgtest.dsn() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT current_setting('pgfanout_test.dsn') $$;

-- Opens the named dblink session once per test session; returns its name.
CREATE OR REPLACE FUNCTION pgtest.conn(name text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT (name = ANY (coalesce(dblink_get_connections(), '{}'))) THEN
    PERFORM dblink_connect(name, pgtest.dsn());
  END IF;
  RETURN name;
END
$$;

-- Runs sql in another session (autocommit, so it is committed when this returns unless it opens
-- a transaction). The trailing no-op lets the script end with a SELECT, which dblink_exec refuses.
CREATE OR REPLACE FUNCTION pgtest.exec(sql text, session text DEFAULT 'writer') RETURNS text
LANGUAGE sql AS $$ SELECT dblink_exec(pgtest.conn(session), sql || E'\n;DO $pgtest$BEGIN END$pgtest$') $$;

-- One value of a query run in another session, as text.
CREATE OR REPLACE FUNCTION pgtest.value(sql text, session text DEFAULT 'writer') RETURNS text
LANGUAGE sql AS $$ SELECT v FROM dblink(pgtest.conn(session), sql) AS t(v text) $$;

-- Makes the listening session LISTEN on channel (any spelling: it is quoted).
CREATE OR REPLACE FUNCTION pgtest.listen(channel text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM dblink_exec(pgtest.conn('listener'), format('LISTEN %I', channel));
END
$$;

-- Commits sql in the writer session and returns, in order, the notifications the listening
-- session received because of it. A sentinel NOTIFY committed right after marks the end, so
-- "nothing was sent" is a definite answer, not a timeout.
CREATE OR REPLACE FUNCTION pgtest.notifications_of(sql text)
RETURNS TABLE (n integer, channel text, payload text)
LANGUAGE plpgsql AS $$
DECLARE
  token text := md5(random()::text || clock_timestamp()::text);
  deadline timestamptz := clock_timestamp() + interval '20 seconds';
  got record;
  done boolean := false;
BEGIN
  n := 0;
  PERFORM pgtest.listen('pgtest_sentinel');
  PERFORM pgtest.exec(sql);
  PERFORM pgtest.exec(format('NOTIFY pgtest_sentinel, %L', token));
  LOOP
    FOR got IN SELECT * FROM dblink_get_notify('listener') LOOP
      IF got.notify_name = 'pgtest_sentinel' THEN
        IF got.extra = token THEN done := true; EXIT; END IF;
        CONTINUE;
      END IF;
      n := n + 1; channel := got.notify_name; payload := got.extra;
      RETURN NEXT;
    END LOOP;
    EXIT WHEN done;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'pgtest: the sentinel notification did not arrive';
    END IF;
    PERFORM pg_sleep(0.005);
  END LOOP;
END
$$;

-- outbox_fetch run in another session (so this session's transaction cannot hold back xmin).
CREATE OR REPLACE FUNCTION pgtest.fetch(consumer text, channels text[] DEFAULT NULL,
  max_rows integer DEFAULT 100, session text DEFAULT 'consumer')
RETURNS TABLE (id bigint, channel text, payload jsonb, txid xid8)
LANGUAGE sql AS $$
  SELECT * FROM dblink(pgtest.conn(session),
    format('SELECT id, channel, payload, txid FROM pgfanout.outbox_fetch(%L, %L, %s)',
           consumer, channels, max_rows))
    AS t(id bigint, channel text, payload jsonb, txid xid8)
$$;

-- outbox_claim run in another session, inside whatever transaction that session has open.
CREATE OR REPLACE FUNCTION pgtest.claim(grp text, session text, channels text[] DEFAULT NULL,
  max_rows integer DEFAULT 100)
RETURNS TABLE (id bigint, channel text, payload jsonb, txid xid8)
LANGUAGE sql AS $$
  SELECT * FROM dblink(pgtest.conn(session),
    format('SELECT id, channel, payload, txid FROM pgfanout.outbox_claim(%L, %L, %s)',
           grp, channels, max_rows))
    AS t(id bigint, channel text, payload jsonb, txid xid8)
$$;
