-- pgTAP tests of examples/location: the seed's table and its hand-written notification trigger.
--
-- A notification is only delivered when its transaction commits, and this test runs inside one
-- that rolls back. So it opens two more sessions with dblink: "listener" LISTENs, "writer"
-- changes people (each statement commits), and dblink_get_notify() reads what the listener got.
-- The writer removes its people again at the end (DELETE does not notify).
BEGIN;
SELECT plan(15);

-- A conninfo for this very database, over TCP when this session uses TCP, else the socket.
CREATE FUNCTION pg_temp.self_conninfo() RETURNS text
  LANGUAGE sql AS $$
  SELECT string_agg(format('%s=''%s''', k, replace(replace(v, '\', '\\'), '''', '\''')), ' ')
    FROM (VALUES
      ('host', coalesce(host(inet_server_addr()),
                        btrim(split_part(current_setting('unix_socket_directories'), ',', 1)))),
      ('port', current_setting('port')),
      ('dbname', current_database()),
      ('user', current_user)) AS c (k, v)
$$;

-- Waits up to five seconds for the listener's next notification.
CREATE FUNCTION pg_temp.next_notification(OUT channel text, OUT payload text)
  LANGUAGE plpgsql AS $$
BEGIN
  FOR attempt IN 1..100 LOOP
    SELECT n.notify_name, n.extra INTO channel, payload FROM dblink_get_notify('listener') n LIMIT 1;
    IF FOUND THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RAISE EXCEPTION 'no notification within 5 s';
END
$$;

-- What the listener got within the given time.
CREATE FUNCTION pg_temp.notifications_within(seconds float8) RETURNS SETOF text
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(seconds);
  RETURN QUERY SELECT n.notify_name || ': ' || n.extra FROM dblink_get_notify('listener') n;
END
$$;

-- A statement run by the writer session (committed at once).
CREATE FUNCTION pg_temp.writer(statement text) RETURNS text
  LANGUAGE sql AS $$ SELECT dblink_exec('writer', statement) $$;

-- the table and the trigger -------------------------------------------------------------------

SELECT columns_are('public', 'person', ARRAY['id', 'name', 'loc']);
SELECT col_type_is('public', 'person', 'loc', 'geography(Point,4326)', 'loc is a WGS 84 point');
SELECT trigger_is('public', 'person', 'person_update_notify', 'public', 'update_person_table',
  'person_update_notify calls update_person_table()');
SELECT ok((SELECT count(*) >= 12 FROM public.person WHERE loc IS NOT NULL), 'people.sql added a dozen people');

-- its notifications ---------------------------------------------------------------------------

DO $$
BEGIN
  PERFORM dblink_connect('listener', pg_temp.self_conninfo());
  PERFORM dblink_exec('listener', 'LISTEN person_updated');
  PERFORM dblink_connect('writer', pg_temp.self_conninfo());
END
$$;

SELECT id AS walker FROM dblink('writer', $$
  INSERT INTO public.person (name, loc)
  VALUES ('pgtap walker', ST_GeogFromText('SRID=4326;POINT(-122.25 37.87)'))
  RETURNING id $$) AS t (id int) \gset

CREATE TEMP TABLE got AS SELECT * FROM pg_temp.next_notification();
SELECT is((SELECT channel FROM got), 'person_updated', 'an INSERT notifies on channel person_updated');
SELECT is((SELECT payload::jsonb FROM got),
  jsonb_build_object('id', :walker, 'loc', '{"type": "Point", "coordinates": [-122.25, 37.87]}'::jsonb),
  'its payload is {"id": <id>, "loc": <GeoJSON point>}');
SELECT is((SELECT payload FROM got),
  format('{"id": %s, "loc": {"type":"Point","coordinates":[-122.25,37.87]}}', :walker),
  'the payload text is exactly the seed''s');

SELECT is(pg_temp.writer(format(
  $$ UPDATE public.person SET loc = ST_GeogFromText('SRID=4326;POINT(-122.26 37.868)') WHERE id = %s $$, :walker)),
  'UPDATE 1', 'the walker walks');
TRUNCATE got;
INSERT INTO got SELECT * FROM pg_temp.next_notification();
SELECT is((SELECT payload::jsonb FROM got),
  jsonb_build_object('id', :walker, 'loc', '{"type": "Point", "coordinates": [-122.26, 37.868]}'::jsonb),
  'an UPDATE of loc notifies the new location');

SELECT is(pg_temp.writer(format($$ UPDATE public.person SET name = 'pgtap stroller' WHERE id = %s $$, :walker)),
  'UPDATE 1', 'the walker is renamed');
TRUNCATE got;
INSERT INTO got SELECT * FROM pg_temp.next_notification();
SELECT is((SELECT (payload::jsonb ->> 'id')::int FROM got), :walker,
  'seed behaviour: an UPDATE of the name alone notifies too (with the unchanged location)');

SELECT id AS ghost FROM dblink('writer', $$
  INSERT INTO public.person (name) VALUES ('pgtap ghost') RETURNING id $$) AS t (id int) \gset
TRUNCATE got;
INSERT INTO got SELECT * FROM pg_temp.next_notification();
SELECT is((SELECT channel FROM got), 'person_updated', 'a person without a location notifies as well');
SELECT is((SELECT payload FROM got), '',
  'seed flaw: a NULL loc makes the payload empty (text || NULL is NULL), so it names nobody');

SELECT is(pg_temp.writer($$ DELETE FROM public.person WHERE name LIKE 'pgtap %' $$), 'DELETE 2',
  'the writer removes its people again');
SELECT is_empty($$ SELECT * FROM pg_temp.notifications_within(0.3) $$,
  'a DELETE does not notify, and nothing else was sent');

DO $$
BEGIN
  PERFORM dblink_disconnect('writer');
  PERFORM dblink_disconnect('listener');
END
$$;

SELECT * FROM finish();
ROLLBACK;
