-- Upgrade the triggers of existing watches in place, then record the version.
SELECT pgfanout.rewatch();

-- The generic trigger functions of trigger format 1 (SQL version 2), once no trigger uses them.
DO $do$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'pgfanout'::regnamespace AND p.proname IN ('notify_row', 'notify_statement')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgfoid = p.oid) LOOP
    EXECUTE pg_catalog.format('DROP FUNCTION %s', f);
  END LOOP;
END
$do$;

INSERT INTO pgfanout.schema_version (version) VALUES (pgfanout.script_version())
ON CONFLICT (version) DO NOTHING;
