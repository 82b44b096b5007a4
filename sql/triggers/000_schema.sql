-- pgfanout trigger generators and durable outbox: schema, version and install lock.
--
-- The files in sql/triggers/ are applied in file-name order as ONE script in ONE transaction
-- (`pgfanout install` sends their concatenation as a single simple query; by hand use
-- `psql -1 -f` or `psql -c "$(pgfanout sql)"`). Every statement is idempotent, so running the
-- script again is harmless, and a newer script upgrades an older installation in place.

-- Two concurrent installs serialize here; the lock is released when the transaction ends.
SELECT pg_catalog.pg_advisory_xact_lock(1885824609, 1852798324);  -- 'pgfa', 'nout'
SET LOCAL client_min_messages = warning;  -- no "already exists, skipping" on every re-install

CREATE SCHEMA IF NOT EXISTS pgfanout;
COMMENT ON SCHEMA pgfanout IS 'pgfanout: NOTIFY trigger generators and durable outbox';

CREATE TABLE IF NOT EXISTS pgfanout.schema_version (
  version    integer PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pgfanout.schema_version IS 'one row per pgfanout SQL version applied to this database';

-- Refuse to downgrade: an older script would replace newer functions with older ones.
DO $do$
BEGIN
  IF EXISTS (SELECT 1 FROM pgfanout.schema_version WHERE version > 8) THEN
    RAISE EXCEPTION 'pgfanout: the database has pgfanout SQL version % installed, this script is version 8',
      (SELECT max(version) FROM pgfanout.schema_version)
      USING HINT = 'install the newer pgfanout release instead';
  END IF;
END
$do$;

-- The version this script installs. Bump it (and the check above) with every change to sql/triggers.
CREATE OR REPLACE FUNCTION pgfanout.script_version() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT 8 $$;

-- The version recorded in the database (NULL until the install transaction has finished).
CREATE OR REPLACE FUNCTION pgfanout.installed_version() RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pgfanout, pg_temp
AS $$ SELECT max(version) FROM pgfanout.schema_version $$;

-- Any role may look up pgfanout's objects; what it may do with them is governed by table grants.
GRANT USAGE ON SCHEMA pgfanout TO PUBLIC;
