#!/usr/bin/env bash
# Runs the pgTAP tests of sql/triggers/ in a fresh, uniquely named database.
#
#   PGFANOUT_TEST_DSN='host=... port=... user=postgres' tests/sql/run.sh
#   tests/harness/with-servers.sh tests/sql/run.sh          # with a throwaway cluster
#
# PGFANOUT_TEST_DSN is the libpq conninfo (keyword=value form) of a superuser connection to a
# throwaway cluster. The script installs the SQL the way `pgfanout install` does (the files'
# concatenation as one simple query, so one transaction): twice at once on the empty database
# (the advisory lock must serialize them), then again over an existing watch whose triggers are
# out of date (upgrade in place). Then it runs pg_prove over tests/sql/*.sql, one file after
# another: the outbox tests need that no other test holds a transaction open. Extra arguments go
# to pg_prove (e.g. -v). Exits non-zero if anything fails.
#
# PGFANOUT_SQLTEST_NATIVE=on runs everything with the native watch triggers (sql/native; the
# database's pgfanout.native setting): the comparison tests then hold them to the text of the
# PL/pgSQL generators. It exits 77 (skipped) when the server cannot load them
# (PGFANOUT_TEST_NATIVE, set by the harness, is not 1). Default off: the PL/pgSQL triggers.
set -euo pipefail

native=${PGFANOUT_SQLTEST_NATIVE:-off}
if [ "$native" = on ] && [ "${PGFANOUT_TEST_NATIVE:-0}" != 1 ]; then
  echo "run.sh: the server cannot load the native triggers (build/pgfanout_native.so); skipped" >&2
  exit 77
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
: "${PGFANOUT_TEST_DSN:?set PGFANOUT_TEST_DSN to a superuser conninfo (or run under tests/harness/with-servers.sh)}"

db="pgfanout_sqltest_${native}_$(date +%s)_$$_${RANDOM}"
dsn="$PGFANOUT_TEST_DSN dbname=$db"
psql_admin() { psql "$PGFANOUT_TEST_DSN" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_db() { psql "$dsn" -X -q -v ON_ERROR_STOP=1 "$@"; }

sql=$(cat "$root"/sql/triggers/[0-9][0-9][0-9]_*.sql)
install() { psql_db -c "$sql" >/dev/null; }

cleanup() {
  set +e
  psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

psql_admin -c "CREATE DATABASE \"$db\""
psql_db -c "ALTER DATABASE \"$db\" SET pgfanout_test.dsn = '${dsn//\'/\'\'}'"
psql_db -c "ALTER DATABASE \"$db\" SET pgfanout.native = $native"
psql_db -c "CREATE EXTENSION pgtap; CREATE EXTENSION dblink;"
if [ "$(psql_db -At -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")" = 1 ]; then
  psql_db -c "CREATE EXTENSION postgis" || echo "run.sh: postgis is available but did not install; its tests skip" >&2
fi

echo "run.sh: installing twice concurrently into $db"
install & first=$!
install & second=$!
wait "$first"
wait "$second"

for helper in "$root"/tests/sql/helpers/*.sql; do
  psql_db -f "$helper" >/dev/null
done

# Existing watches made by an older release. upgrade_fixture: its registry row records another
# trigger format and its trigger is gone. upgrade_fixture_v2: per statement, with the triggers
# and arguments of trigger format 1 (version 2's generic pgfanout.notify_statement, copied from
# tests/sql/helpers/legacy_v2.sql).
# Installing again must bring both to the current format.
sed -n '/^CREATE OR REPLACE FUNCTION pgfanout_v2.notify_statement/,/^\$fn\$;/p' "$root/tests/sql/helpers/legacy_v2.sql" |
  sed 's/pgfanout_v2\.notify_statement/pgfanout.notify_statement/' | psql_db >/dev/null
psql_db <<'SQL' >/dev/null
CREATE TABLE public.upgrade_fixture (id int PRIMARY KEY, name text);
SELECT pgfanout.watch('public.upgrade_fixture');
UPDATE pgfanout.watch_registry SET trigger_format = 0 WHERE tbl = 'public.upgrade_fixture'::regclass;
DROP TRIGGER pgfanout_watch ON public.upgrade_fixture;
CREATE TABLE public.upgrade_fixture_v2 (id int PRIMARY KEY, name text);
SELECT pgfanout_v2.watch('public.upgrade_fixture_v2', 'upgrade_fixture_v2_changed', per_statement => true,
                         prefix => 'pgfanout_watch', fn_schema => 'pgfanout');
INSERT INTO pgfanout.watch_registry (tbl, channel, ops, per_statement, key_columns, key_source, trigger_format)
VALUES ('public.upgrade_fixture_v2', 'upgrade_fixture_v2_changed', '{DELETE,INSERT,UPDATE}', true, '{id}',
        'primary key', 1);
SQL
echo "run.sh: installing again (upgrade in place)"
install

# pg_prove splits --dbname at '=', so it cannot take a conninfo: give it a psql that adds one.
wrapper=$(mktemp "${TMPDIR:-/tmp}/pgfanout-psql.XXXXXX")
trap 'rm -f "$wrapper"; cleanup' EXIT
printf '#!/bin/sh\nexec psql "$@" --dbname "$PGFANOUT_SQLTEST_DSN"\n' >"$wrapper"
chmod +x "$wrapper"

echo "run.sh: pg_prove"
PGFANOUT_SQLTEST_DSN=$dsn pg_prove --psql-bin "$wrapper" "$@" "$root"/tests/sql/*.sql
