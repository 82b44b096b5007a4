-- NULLs and column types whose JSON form needs care; every payload must be valid JSON.
SELECT plan(16);

SELECT pgtest.exec($$
  CREATE TABLE public.ty (
    id int PRIMARY KEY, t text, j jsonb, js json, ia int[], ta text[], b bytea, num numeric,
    ts timestamptz, d date, u uuid, flag boolean, f float8, p point, iv interval);
  SELECT pgfanout.watch('ty');
$$);
SELECT pgtest.listen('ty_changed');

CREATE TEMP TABLE y_null AS SELECT * FROM pgtest.notifications_of($$INSERT INTO ty (id) VALUES (1)$$);
SELECT is((SELECT payload::jsonb -> 'new' FROM y_null),
  '{"id":1,"t":null,"j":null,"js":null,"ia":null,"ta":null,"b":null,"num":null,"ts":null,"d":null,"u":null,"flag":null,"f":null,"p":null,"iv":null}'::jsonb,
  'NULL columns are JSON nulls');

CREATE TEMP TABLE y_val AS SELECT * FROM pgtest.notifications_of($$
  SET TimeZone = 'Europe/Berlin';
  INSERT INTO ty VALUES (2, E'line\nbreak "q" \\ tab\t', '{"a":[1,{"b":null}]}', '{"k": "v"}', '{1,NULL,3}',
    '{"x,y",z}', '\x00ff10', 1.50, '2026-11-22 11:00:00.123+01', '2026-11-22', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    true, 'NaN', '(1.5,2)', '1 day 02:00')
$$);
CREATE TEMP TABLE y_new AS SELECT payload::jsonb -> 'new' AS n FROM y_val;
SELECT is((SELECT n ->> 't' FROM y_new), E'line\nbreak "q" \\ tab\t', 'control characters and quotes survive');
SELECT is((SELECT n -> 'j' FROM y_new), '{"a":[1,{"b":null}]}'::jsonb, 'jsonb is nested, not a string');
SELECT is((SELECT n -> 'js' FROM y_new), '{"k":"v"}'::jsonb, 'json is nested, not a string');
SELECT is((SELECT n -> 'ia' FROM y_new), '[1,null,3]'::jsonb, 'int[] is a JSON array');
SELECT is((SELECT n -> 'ta' FROM y_new), '["x,y","z"]'::jsonb, 'text[] is a JSON array');
SELECT is((SELECT n ->> 'b' FROM y_new), '\x00ff10', 'bytea is its hex text');
SELECT is((SELECT (n -> 'num')::text FROM y_new), '1.50', 'numeric keeps its scale');
SELECT is((SELECT (n ->> 'ts')::timestamptz FROM y_new), '2026-11-22 10:00:00.123+00'::timestamptz,
  'timestamptz is an ISO string with offset');
SELECT is((SELECT n -> 'f' FROM y_new), '"NaN"'::jsonb, 'a NaN float is a string, the payload stays valid');
SELECT is((SELECT n ->> 'p' FROM y_new), '(1.5,2)', 'point is its text form');

-- point has no equality operator: the changed check compares JSON, so UPDATE still works.
SELECT is((SELECT payload::jsonb -> 'new' ->> 'p' FROM pgtest.notifications_of($$UPDATE ty SET p = '(3,4)' WHERE id = 2$$)),
  '(3,4)', 'an UPDATE of a table with a point column');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE ty SET p = p WHERE id = 2$$)), 0,
  '... and an unchanged one sends nothing');

-- PostGIS, when the extension is there: geometry becomes GeoJSON (PostGIS's cast to jsonb),
-- geography its hex EWKB text.
CREATE FUNCTION pg_temp.postgis_tests() RETURNS SETOF text LANGUAGE plpgsql AS $fn$
DECLARE
  p jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') THEN
    RETURN NEXT skip('postgis is not installed', 3);
    RETURN;
  END IF;
  PERFORM pgtest.exec($$
    CREATE TABLE public.geo (id int PRIMARY KEY, loc geometry(Point, 4326), area geometry, g geography);
    SELECT pgfanout.watch('geo');
  $$);
  PERFORM pgtest.listen('geo_changed');
  SELECT payload::jsonb INTO p FROM pgtest.notifications_of($$INSERT INTO geo VALUES (1, NULL, NULL, NULL)$$);
  RETURN NEXT is(p -> 'new', '{"id":1,"loc":null,"area":null,"g":null}'::jsonb, 'NULL geometry is null');
  SELECT payload::jsonb INTO p FROM pgtest.notifications_of($$
    INSERT INTO geo VALUES (2, ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326), 'POLYGON((0 0,1 0,1 1,0 0))', 'POINT(1 2)')$$);
  RETURN NEXT is((p -> 'new' -> 'loc') - 'crs', '{"type":"Point","coordinates":[13.4,52.5]}'::jsonb, 'a point is GeoJSON');
  SELECT payload::jsonb INTO p FROM pgtest.notifications_of($$UPDATE geo SET area = ST_Buffer(area, 1) WHERE id = 2$$);
  RETURN NEXT is(p -> 'old' -> 'area' ->> 'type', 'Polygon', 'an UPDATE of a geometry column is sent');
END
$fn$;
SELECT * FROM pg_temp.postgis_tests();

SELECT * FROM finish();
