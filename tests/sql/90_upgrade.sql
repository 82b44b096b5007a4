-- Upgrade in place: run.sh installed, watched public.upgrade_fixture, made its registry row look
-- like an older release's (another trigger format, trigger gone), and installed again.
SELECT plan(12);

SELECT is((SELECT trigger_format FROM pgfanout.watch_registry WHERE tbl = 'public.upgrade_fixture'::regclass),
  pgfanout.trigger_format(), 'installing again brought the watch to the current trigger format');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.upgrade_fixture'::regclass AND tgname = 'pgfanout_watch'),
  1, '... and re-created its trigger');
SELECT pgtest.listen('upgrade_fixture_changed');
SELECT is((SELECT payload::jsonb -> 'new' FROM pgtest.notifications_of($$INSERT INTO upgrade_fixture VALUES (1, 'u')$$)),
  '{"id":1,"name":"u"}'::jsonb, 'the upgraded watch sends notifications');

SELECT is(
  (SELECT array_agg(tg.tgname || ' ' || p.proname ORDER BY tg.tgname) FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
    WHERE tg.tgrelid = 'public.upgrade_fixture_v2'::regclass),
  CASE WHEN pgfanout.native_enabled()
       THEN ARRAY['pgfanout_watch_delete native_statement', 'pgfanout_watch_insert native_statement',
                  'pgfanout_watch_update native_statement']
       ELSE ARRAY['pgfanout_watch_delete watch_' || 'public.upgrade_fixture_v2'::regclass::oid || '_delete',
                  'pgfanout_watch_insert watch_' || 'public.upgrade_fixture_v2'::regclass::oid || '_insert',
                  'pgfanout_watch_update watch_' || 'public.upgrade_fixture_v2'::regclass::oid || '_update'] END,
  'a watch of trigger format 1 now runs generated (or native) functions');
SELECT pgtest.listen('upgrade_fixture_v2_changed');
SELECT is((SELECT payload::jsonb -> 'rows' FROM pgtest.notifications_of($$INSERT INTO upgrade_fixture_v2 VALUES (1, 'u')$$)),
  '[{"new":{"id":1,"name":"u"}}]'::jsonb, '... and sends notifications');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'pgfanout'::regnamespace
            AND proname IN ('notify_row', 'notify_statement')), 0, 'the generic functions of format 1 are gone');

SELECT is(pgfanout.rewatch(), 0, 'rewatch re-creates nothing when everything is current');
UPDATE pgfanout.watch_registry SET trigger_format = 0 WHERE tbl = 'public.upgrade_fixture'::regclass;
SELECT is(pgfanout.rewatch(), 1, 'rewatch re-creates a watch of another trigger format');
SELECT is(pgfanout.rewatch(force => true), (SELECT count(*)::int FROM pgfanout.watches), 'rewatch(force) re-creates all');

-- A primary key added after watch(): the event trigger re-creates the watch at once.
CREATE TABLE public.up_late_key (a int NOT NULL, b text);
SELECT pgfanout.watch('up_late_key', columns => '{b}');
ALTER TABLE up_late_key ADD PRIMARY KEY (a);
SELECT is((SELECT key_columns FROM pgfanout.watches WHERE tbl = 'up_late_key'::regclass), '{a}'::text[],
  'a key added by ALTER TABLE is picked up at once');
-- Without the event trigger (an install by a non-superuser), rewatch notices it.
ALTER EVENT TRIGGER pgfanout_watch_ddl DISABLE;
ALTER TABLE up_late_key DROP CONSTRAINT up_late_key_pkey;
SELECT is(pgfanout.rewatch(), 1, 'rewatch notices a changed key');
ALTER EVENT TRIGGER pgfanout_watch_ddl ENABLE;

-- A dropped table is forgotten.
DROP TABLE public.up_late_key;
SELECT pgfanout.rewatch();
SELECT is((SELECT count(*)::int FROM pgfanout.watch_registry WHERE tbl::oid NOT IN (SELECT oid FROM pg_class)), 0,
  'the registry forgets dropped tables');

SELECT * FROM finish();
