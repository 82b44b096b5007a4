-- per_statement => true: one notification per statement (split into parts under 8000 bytes),
-- rows paired by key, unchanged rows left out, oversized rows truncated to their key.
SELECT plan(27);

SELECT pgtest.exec($$
  CREATE TABLE public.ps_items (id int PRIMARY KEY, v text, n int);
  SELECT pgfanout.watch('ps_items', per_statement => true);
$$);
SELECT pgtest.listen('ps_items_changed');

SELECT is((SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'ps_items'::regclass),
  ARRAY['pgfanout_watch_delete', 'pgfanout_watch_insert', 'pgfanout_watch_update'],
  'one statement trigger per op (transition tables allow one event each)');

-- 2,000-row INSERT
CREATE TEMP TABLE s_ins AS SELECT * FROM pgtest.notifications_of($$
  INSERT INTO ps_items SELECT g, 'value ' || g, 0 FROM generate_series(1, 2000) g
$$);
SELECT cmp_ok((SELECT count(*)::int FROM s_ins), '>', 1, 'a 2,000-row INSERT is split into several parts');
SELECT ok((SELECT bool_and(octet_length(payload) < 8000) FROM s_ins), 'every part is under 8000 bytes');
SELECT results_eq($$SELECT (payload::jsonb ->> 'part')::int, (payload::jsonb ->> 'parts')::int FROM s_ins ORDER BY n$$,
  $$SELECT g, (SELECT count(*)::int FROM s_ins) FROM generate_series(1, (SELECT count(*)::int FROM s_ins)) g$$,
  'parts are numbered 1..n in order, each saying n');
CREATE TEMP TABLE s_ins_rows AS
  SELECT s.n, r.value AS r FROM s_ins s, jsonb_array_elements(s.payload::jsonb -> 'rows') r;
SELECT is((SELECT count(*)::int FROM s_ins_rows), 2000, '2,000 rows in all');
SELECT is((SELECT count(DISTINCT r -> 'new' ->> 'id')::int FROM s_ins_rows), 2000, 'every row exactly once');
SELECT is((SELECT r FROM s_ins_rows WHERE r -> 'new' ->> 'id' = '7'), '{"new":{"id":7,"v":"value 7","n":0}}'::jsonb,
  'an INSERT row carries new only');
SELECT is((SELECT count(DISTINCT payload::jsonb ->> 'txid')::int FROM s_ins), 1, 'one txid for all parts');
SELECT is((SELECT payload::jsonb - 'rows' - 'part' - 'parts' - 'txid' - 'at' FROM s_ins WHERE n = 1),
  '{"v":1,"op":"INSERT","schema":"public","table":"ps_items"}'::jsonb, 'the envelope, without top-level new/old');
SELECT matches((SELECT payload FROM s_ins WHERE n = 1),
  '^\{"v":1,"op":"INSERT","schema":"public","table":"ps_items","part":1,"parts":\d+,"rows":\[\{"new":',
  'envelope fields in the documented order');

-- 2,000-row UPDATE
CREATE TEMP TABLE s_upd AS SELECT * FROM pgtest.notifications_of($$UPDATE ps_items SET n = n + 1$$);
CREATE TEMP TABLE s_upd_rows AS
  SELECT s.n, r.value AS r FROM s_upd s, jsonb_array_elements(s.payload::jsonb -> 'rows') r;
SELECT cmp_ok((SELECT count(*)::int FROM s_upd), '>', 1, 'a 2,000-row UPDATE is split into several parts');
SELECT ok((SELECT bool_and(octet_length(payload) < 8000) FROM s_upd), 'every part is under 8000 bytes');
SELECT is((SELECT count(DISTINCT r -> 'new' ->> 'id')::int FROM s_upd_rows), 2000, 'every updated row present');
SELECT is((SELECT count(*)::int FROM s_upd_rows), 2000, '... exactly once');
SELECT ok((SELECT bool_and(r -> 'old' ->> 'id' = r -> 'new' ->> 'id'
                       AND (r -> 'new' ->> 'n')::int = (r -> 'old' ->> 'n')::int + 1) FROM s_upd_rows),
  'old and new are paired by primary key');

-- Only rows that changed.
CREATE TEMP TABLE s_half AS SELECT * FROM pgtest.notifications_of($$
  UPDATE ps_items SET v = CASE WHEN id % 2 = 0 THEN v || '!' ELSE v END WHERE id <= 100
$$);
SELECT is((SELECT count(*)::int FROM s_half, jsonb_array_elements(payload::jsonb -> 'rows')), 50,
  'rows the UPDATE did not change are left out');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE ps_items SET v = v WHERE id <= 100$$)), 0,
  'an UPDATE that changes no row sends nothing');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$DELETE FROM ps_items WHERE id < 0$$)), 0,
  'a statement that touches no row sends nothing');

-- A changed key: the old and the new image are separate entries.
SELECT bag_eq($$SELECT r FROM pgtest.notifications_of($Q$UPDATE ps_items SET id = id + 10000 WHERE id <= 2$Q$),
                         jsonb_array_elements(payload::jsonb -> 'rows') r$$,
  $$VALUES ('{"old":{"id":1,"v":"value 1","n":1}}'::jsonb), ('{"new":{"id":10001,"v":"value 1","n":1}}'),
           ('{"old":{"id":2,"v":"value 2!","n":1}}'), ('{"new":{"id":10002,"v":"value 2!","n":1}}')$$,
  'a row whose key changed appears as an old-only and a new-only entry');

-- DELETE
CREATE TEMP TABLE s_del AS SELECT * FROM pgtest.notifications_of($$DELETE FROM ps_items WHERE id <= 10$$);
SELECT is((SELECT payload::jsonb -> 'rows' FROM s_del),
  (SELECT jsonb_agg(jsonb_build_object('old', jsonb_build_object('id', g, 'v', 'value ' || g || CASE WHEN g % 2 = 0 THEN '!' ELSE '' END, 'n', 1)) ORDER BY g)
     FROM generate_series(3, 10) g),
  'a DELETE row carries old only');

-- A single row too large for a notification: its key only, marked truncated.
CREATE TEMP TABLE s_big AS SELECT * FROM pgtest.notifications_of($$
  UPDATE ps_items SET v = CASE WHEN id = 50 THEN repeat('x', 9000) ELSE v || '?' END WHERE id BETWEEN 49 AND 51
$$);
SELECT bag_eq($$SELECT r FROM s_big, jsonb_array_elements(payload::jsonb -> 'rows') r$$,
  $$VALUES ('{"new":{"id":49,"v":"value 49?","n":1},"old":{"id":49,"v":"value 49","n":1}}'::jsonb),
           ('{"new":{"id":50},"old":{"id":50},"truncated":true}'),
           ('{"new":{"id":51,"v":"value 51?","n":1},"old":{"id":51,"v":"value 51","n":1}}')$$,
  'an oversized row is truncated to its key, the others are whole');
SELECT ok((SELECT bool_and(octet_length(payload) < 8000) FROM s_big), 'still under 8000 bytes');

-- ops, columns and a keyless table.
SELECT pgtest.exec($$SELECT pgfanout.watch('ps_items', per_statement => true, ops => '{UPDATE}', columns => '{n}')$$);
SELECT is((SELECT array_agg(tgname::text) FROM pg_trigger WHERE tgrelid = 'ps_items'::regclass),
  ARRAY['pgfanout_watch_update'], 'ops => {UPDATE} makes only the UPDATE trigger');
SELECT is((SELECT payload::jsonb -> 'rows' FROM pgtest.notifications_of($$
             INSERT INTO ps_items VALUES (1, 'a', 0); UPDATE ps_items SET n = 5, v = 'b' WHERE id = 1$$)),
  '[{"new":{"id":1,"n":5},"old":{"id":1,"n":0}}]'::jsonb, 'columns limits the rows to those columns and the key');
SELECT is((SELECT count(*)::int FROM pgtest.notifications_of($$UPDATE ps_items SET v = 'c' WHERE id = 1$$)), 0,
  'a change outside the watched columns is left out');

SELECT pgtest.exec($$
  CREATE TABLE public.ps_nokey (a int, b text);
  INSERT INTO ps_nokey SELECT g, 'b' FROM generate_series(1, 300) g;
  SELECT pgfanout.watch('ps_nokey', per_statement => true);
$$);
SELECT pgtest.listen('ps_nokey_changed');
CREATE TEMP TABLE s_nokey AS
  SELECT r FROM pgtest.notifications_of($$UPDATE ps_nokey SET b = 'c' || a$$), jsonb_array_elements(payload::jsonb -> 'rows') r;
SELECT is((SELECT count(*)::int FROM s_nokey), 300, 'a keyless table: every updated row');
SELECT ok((SELECT bool_and(r -> 'old' ->> 'a' = r -> 'new' ->> 'a' AND r -> 'new' ->> 'b' = 'c' || (r -> 'old' ->> 'a'))
             FROM s_nokey), 'a keyless table: old and new images are paired');

SELECT * FROM finish();
