#!/usr/bin/env bash
# `pgfanout install` with the WAL source on a server whose wal_level is not logical: it refuses
# before changing anything, names the setting, and leaves no slot, publication or schema behind.
# Starts a small PostgreSQL cluster of its own with wal_level = replica (the harness's cluster is
# logical); as root the cluster belongs to the postgres user (initdb refuses root).
#
#   tests/scripts/wal_level_pgtest.sh PGFANOUT_BINARY
set -uo pipefail
pgfanout=${1:?usage: wal_level_pgtest.sh PGFANOUT_BINARY}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-wallevel.XXXXXX")
chmod 755 "$work"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$work"
  as_owner=(runuser -u postgres --)
fi
cleanup() {
  "${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
# A free port below the ephemeral range, as tests/harness/with-servers.sh picks them.
for _ in $(seq 1 200); do
  port=$((20000 + RANDOM % 12000))
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
done
"${as_owner[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres -A trust >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log"; exit 1; }
cat >>"$work/pg/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
wal_level = replica
fsync = off
CONF
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -t 60 start >/dev/null ||
  { cat "$work/pg.log"; exit 1; }

dsn="host=127.0.0.1 port=$port user=postgres dbname=postgres"
cat >"$work/pgfanout.yaml" <<YAML
postgres: {dsn: "$dsn"}
watch:
  - table: public.items
    via: wal
rules:
  - name: items
    channel: items_changed
    actions:
      - log: "{channel}"
YAML
psql "$dsn" -X -q -c "CREATE TABLE items (id int PRIMARY KEY)" || exit 1
out=$("$pgfanout" install --config "$work/pgfanout.yaml" 2>&1)
rc=$?
failed=0
fail() { echo "FAILED: $1"; failed=1; }
[ "$rc" -ne 0 ] || fail "install succeeded with wal_level = replica"
grep -q "needs wal_level = logical, the server has replica" <<<"$out" ||
  fail "the error does not name the setting: $out"
left=$(psql "$dsn" -X -At -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgfanout')")
[ "$left" = 0 ] || fail "install left $left slot(s), publication(s) or schema behind"
[ "$failed" = 0 ] && echo "ok: install refuses the WAL source without wal_level = logical: $out"
exit "$failed"
