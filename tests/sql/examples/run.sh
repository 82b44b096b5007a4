#!/usr/bin/env bash
# Tests the database side of the bundled examples (examples/chat, examples/location) with pgTAP.
#
#   PGFANOUT_TEST_DSN='host=... user=postgres dbname=postgres' tests/sql/examples/run.sh
#   tests/harness/with-servers.sh tests/sql/examples/run.sh
#
# Needs a superuser conninfo of a throwaway cluster with pgtap, pgcrypto, dblink and PostGIS
# available. Creates a fresh, uniquely named database; applies examples/chat/schema.sql twice and
# the location example (schema.sql, seed_trigger.sql, people.sql) twice, which is itself the
# idempotence test; runs pg_prove over tests/sql/examples/*.sql; runs examples/location/move.sh
# for a few steps and checks that people moved; drops the database again (keep it with
# PGFANOUT_KEEP_DB=1). Exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

dsn=${PGFANOUT_TEST_DSN:?PGFANOUT_TEST_DSN must hold a superuser conninfo (see tests/harness/with-servers.sh)}
db="pgfanout_examples_$(date +%s)_$$_$RANDOM"

# The same connection, to database $1. A repeated keyword wins over an earlier one, in a
# key=value conninfo and in a URI's query string alike.
with_dbname() {
  case $dsn in
    postgres://* | postgresql://*)
      if [[ $dsn == *\?* ]]; then echo "$dsn&dbname=$1"; else echo "$dsn?dbname=$1"; fi ;;
    *) echo "$dsn dbname=$1" ;;
  esac
}
test_dsn=$(with_dbname "$db")

psql_in() {  # psql_in CONNINFO ARGS...
  local conn=$1; shift
  PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql "$conn" -X -q -v ON_ERROR_STOP=1 "$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-examples.XXXXXX")
cleanup() {
  rm -rf "$work"
  if [ "${PGFANOUT_KEEP_DB:-0}" = 1 ]; then
    echo "run.sh: kept database $db" >&2
  elif [ "${db_created:-0}" = 1 ]; then
    psql_in "$dsn" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  fi
}
trap cleanup EXIT

psql_in "$dsn" -c "CREATE DATABASE $db"
db_created=1

psql_in "$test_dsn" -c 'CREATE EXTENSION IF NOT EXISTS pgtap' -c 'CREATE EXTENSION IF NOT EXISTS dblink'

for round in 1 2; do
  echo "run.sh: applying the example schemas (round $round)"
  psql_in "$test_dsn" -f "$root/examples/chat/schema.sql"
  psql_in "$test_dsn" -f "$root/examples/location/schema.sql" \
                      -f "$root/examples/location/seed_trigger.sql" \
                      -f "$root/examples/location/people.sql"
done

# pg_prove cannot pass a key=value conninfo as --dbname (it splits the option at "="), so it runs
# psql through a wrapper that adds the connection.
cat >"$work/psql" <<'WRAPPER'
#!/bin/sh
exec psql "$@" --dbname "$PGFANOUT_EXAMPLES_DSN"
WRAPPER
chmod +x "$work/psql"
PGFANOUT_EXAMPLES_DSN=$test_dsn pg_prove --nocolor --psql-bin "$work/psql" "$here"/*.sql

echo "run.sh: examples/location/move.sh moves people, a few meters at a time"
psql_in "$test_dsn" -c 'CREATE TABLE move_before AS SELECT id, loc FROM public.person WHERE loc IS NOT NULL'
"$root/examples/location/move.sh" -n 3 -i 10 -p 2 -m 40 "$test_dsn"
moved=$(psql_in "$test_dsn" -Atc "
  SELECT count(*) FILTER (WHERE ST_Distance(b.loc, p.loc) > 0) BETWEEN 1 AND 6
     AND max(ST_Distance(b.loc, p.loc)) <= 3 * 40 + 1
    FROM move_before b JOIN public.person p USING (id)")
if [ "$moved" != t ]; then
  echo "run.sh: FAIL: move.sh did not move 1 to 6 people by at most 3 x 40 m" >&2
  exit 1
fi
echo "run.sh: all example tests passed"
