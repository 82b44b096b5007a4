-- Upgrade the triggers of existing watches in place, then record the version.
SELECT pgfanout.rewatch();

INSERT INTO pgfanout.schema_version (version) VALUES (pgfanout.script_version())
ON CONFLICT (version) DO NOTHING;
