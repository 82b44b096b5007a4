#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster and Redis server on free loopback ports, runs the
# given command with their addresses in the environment, and tears both down afterwards.
#
#   tests/harness/with-servers.sh ctest --test-dir build
#
# Exported to the command:
#   PGFANOUT_TEST_DSN         libpq conninfo of a superuser connection (database "postgres")
#   PGFANOUT_TEST_PGHOST/PGPORT/PGUSER, PGFANOUT_TEST_PGDATA, PGFANOUT_TEST_PGBIN
#   PGFANOUT_TEST_PGCTL       a command prefix that runs pg_ctl as the cluster's owner
#   PGFANOUT_TEST_REDIS_URL   redis://127.0.0.1:PORT/0
#   PGFANOUT_TEST_REDIS_PORT, PGFANOUT_TEST_REDIS_SERVER (the redis-server binary)
#   PGFANOUT_TEST_REDIS_TLS_PORT  the same Redis over TLS (client certificates optional)
#   PGFANOUT_TEST_TLS_DIR     PEM files made at start with the openssl CLI: ca.crt (the CA that
#                             signed server.crt, for localhost and 127.0.0.1, and client.crt),
#                             server.key, client.key, and other-ca.crt (a CA that signed nothing)
#   PGFANOUT_TEST_NATIVE      1 when the server can load the native watch triggers, else 0
#
# The native watch triggers (sql/native) are taken from PGFANOUT_TEST_NATIVE_LIB (default:
# build/pgfanout_native.so, if it was built): the library is copied next to the cluster and the
# server's dynamic_library_path points there, so nothing is installed into the system's
# PostgreSQL. PGFANOUT_TEST_NATIVE_LIB= (empty) runs without them.
#
# PostgreSQL runs with wal_level = logical (the WAL source's tests stream from replication slots)
# and with fsync, synchronous_commit and full_page_writes off (fast, not crash-safe).
# PGFANOUT_TEST_PG_DURABLE=1 leaves them at PostgreSQL's defaults (on), for benchmarks that must
# measure what a write costs with production settings.
set -euo pipefail

pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
root=$(cd "$(dirname "$0")/../.." && pwd)
native_lib=${PGFANOUT_TEST_NATIVE_LIB-$root/build/pgfanout_native.so}
redis_server=$(command -v redis-server || echo /usr/bin/redis-server)

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 200); do
    # Below the kernel's ephemeral range (32768 and up): the servers are restarted on the same
    # port by some tests, and an outgoing connection must not take it meanwhile.
    p=$((20000 + RANDOM % 12000))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  echo "with-servers: no free port found" >&2
  return 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-servers.XXXXXX")
chmod 755 "$work"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses to run as root: the cluster belongs to the postgres user.
  chown postgres: "$work"
  as_owner=(runuser -u postgres --)
fi

pgport=$(free_port)
redisport=$(free_port)
while [ "$redisport" = "$pgport" ]; do redisport=$(free_port); done
redistlsport=$(free_port)
while [ "$redistlsport" = "$pgport" ] || [ "$redistlsport" = "$redisport" ]; do
  redistlsport=$(free_port)
done

cleanup() {
  set +e
  "${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null; fi
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

"${as_owner[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log" >&2; exit 1; }
cat >>"$work/pg/postgresql.conf" <<CONF
port = $pgport
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
max_connections = 300
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_slot_wal_keep_size = 1GB
CONF
export PGFANOUT_TEST_NATIVE=0
if [ -n "$native_lib" ] && [ -f "$native_lib" ]; then
  mkdir -m 755 "$work/lib"
  cp "$native_lib" "$work/lib/pgfanout_native.so"
  echo "dynamic_library_path = '\$libdir:$work/lib'" >>"$work/pg/postgresql.conf"
  export PGFANOUT_TEST_NATIVE=1
fi
if [ "${PGFANOUT_TEST_PG_DURABLE:-0}" != 1 ]; then
  cat >>"$work/pg/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
fi
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -t 60 start >/dev/null ||
  { cat "$work/pg.log" >&2; exit 1; }

# A private CA for the TLS port; EC keys, so this takes a few milliseconds.
tls="$work/tls"
mkdir -m 755 "$tls"
make_tls() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=pgfanout test CA" -keyout "$tls/ca.key" -out "$tls/ca.crt"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=pgfanout other CA" -keyout "$tls/other-ca.key" -out "$tls/other-ca.crt"
  local name ext
  for name in server client; do
    if [ "$name" = server ]; then
      ext="subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
    else
      ext="extendedKeyUsage=clientAuth"
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=pgfanout test $name" -keyout "$tls/$name.key" -out "$tls/$name.csr"
    openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 2 -extfile <(echo "$ext") -out "$tls/$name.crt"
  done
  chmod 644 "$tls"/*
}
make_tls >"$work/tls.log" 2>&1 || { cat "$work/tls.log" >&2; exit 1; }

"$redis_server" --port "$redisport" --bind 127.0.0.1 --save '' --appendonly no \
  --tls-port "$redistlsport" --tls-cert-file "$tls/server.crt" --tls-key-file "$tls/server.key" \
  --tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients optional \
  --daemonize yes --pidfile "$work/redis.pid" --dir "$work" --logfile "$work/redis.log"
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$redisport") 2>/dev/null; then break; fi
  sleep 0.05
done

export PGFANOUT_TEST_PGHOST=127.0.0.1 PGFANOUT_TEST_PGPORT=$pgport PGFANOUT_TEST_PGUSER=postgres
export PGFANOUT_TEST_DSN="host=127.0.0.1 port=$pgport user=postgres dbname=postgres"
export PGFANOUT_TEST_PGDATA="$work/pg" PGFANOUT_TEST_PGBIN="$pgbin"
export PGFANOUT_TEST_PGCTL="${as_owner[*]} $pgbin/pg_ctl -D $work/pg -l $work/pg.log"
export PGFANOUT_TEST_REDIS_URL="redis://127.0.0.1:$redisport/0" PGFANOUT_TEST_REDIS_PORT=$redisport
export PGFANOUT_TEST_REDIS_SERVER="$redis_server"
export PGFANOUT_TEST_REDIS_TLS_PORT=$redistlsport PGFANOUT_TEST_TLS_DIR="$tls"

echo "with-servers: PostgreSQL on 127.0.0.1:$pgport, Redis on 127.0.0.1:$redisport" \
  "(TLS: $redistlsport)"
set +e
"$@"
rc=$?
exit $rc
