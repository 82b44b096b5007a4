#!/usr/bin/env bash
# Starts or stops a throwaway Redis Cluster of 3 primaries and 3 replicas on free loopback ports.
#
#   tests/harness/redis-cluster.sh start DIR    # prints "PORTS p1 p2 p3 p4 p5 p6" once every
#                                               # node reports cluster_state:ok
#   tests/harness/redis-cluster.sh stop DIR     # kills the nodes started in DIR, removes DIR
#
# DIR must not exist yet (start creates it) and holds the nodes' config, logs, pid files and RDB
# files (one per node: replicas write a full sync to it before loading it, and a shared
# dump.rdb let one replica load another shard's data); its file `ports` lists the ports,
# primaries first as `redis-cli --cluster create` assigns them.
# With REDIS_CLUSTER_TLS_DIR set (ca.crt, server.crt/key and client.crt/key, as with-servers.sh
# makes them), the nodes speak only TLS, among themselves too (the client certificate is what a
# node shows the others on the cluster bus). With REDIS_CLUSTER_HOST (default 127.0.0.1) the nodes
# listen on, and announce, that address instead: tests/faults/fault_hosts_pgtest.cpp runs the
# script inside its database host's network namespace. A failed start stops what it started. Used
# by the cluster tests (tests/integration/redis_cluster_redistest.cpp), which start and stop their
# own.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
redis_server=$(command -v redis-server || echo /usr/bin/redis-server)
redis_cli=$(command -v redis-cli || echo /usr/bin/redis-cli)
tls_dir=${REDIS_CLUSTER_TLS_DIR:-}
host=${REDIS_CLUSTER_HOST:-127.0.0.1}

stop_nodes() {
  [ -d "$dir" ] || return 0
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$dir"
}

if [ "$cmd" = stop ]; then
  stop_nodes
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

port_free() { ! (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }
# A port below the kernel's ephemeral range (32768 and up) whose cluster bus port (+10000) is
# free too; nodes are restarted on the same port by some tests.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % 12000))
    if port_free "$p" && port_free $((p + 10000)) && ! grep -qw "$p" "$dir/ports" 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "redis-cluster: no free port found" >&2
  return 1
}

cli() {
  local port=$1
  shift
  if [ -n "$tls_dir" ]; then
    "$redis_cli" --tls --cacert "$tls_dir/ca.crt" -h "$host" -p "$port" "$@"
  else
    "$redis_cli" -h "$host" -p "$port" "$@"
  fi
}

mkdir "$dir"
trap 'stop_nodes' ERR
ports=()
for i in 1 2 3 4 5 6; do
  p=$(free_port)
  echo "$p" >>"$dir/ports"
  ports+=("$p")
  common=(--bind "$host" --protected-mode no --dir "$dir" --cluster-enabled yes
    --cluster-config-file "nodes-$p.conf" --dbfilename "dump-$p.rdb" --cluster-node-timeout 2000
    --appendonly no --save "" --repl-diskless-sync-delay 0 --daemonize yes
    --pidfile "$dir/$p.pid" --logfile "$dir/$p.log")
  args=(--port "$p" "${common[@]}")
  if [ -n "$tls_dir" ]; then
    args=(--port 0 --tls-port "$p" "${common[@]}"
      --tls-cluster yes --tls-replication yes --tls-auth-clients no
      --tls-cert-file "$tls_dir/server.crt" --tls-key-file "$tls_dir/server.key"
      --tls-client-cert-file "$tls_dir/client.crt" --tls-client-key-file "$tls_dir/client.key"
      --tls-ca-cert-file "$tls_dir/ca.crt")
  fi
  "$redis_server" "${args[@]}"
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    [ "$(cli "$p" ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
  done
done
nodes=()
for p in "${ports[@]}"; do nodes+=("$host:$p"); done
cli "${ports[0]}" --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1
# Waits up to 15 s until `cli PORT ARGS...` prints a line matching PATTERN; fails naming WHAT.
wait_for() {
  local port=$1 pattern=$2 what=$3
  shift 3
  for _ in $(seq 1 300); do
    cli "$port" "$@" 2>/dev/null | tr -d '\r' | grep -q "$pattern" && return 0
    sleep 0.05
  done
  echo "redis-cluster: node $port never $what" >&2
  return 1
}
for p in "${ports[@]}"; do wait_for "$p" '^cluster_state:ok' 'reported cluster_state:ok' cluster info; done
# Every replica holds its primary's data before the nodes are handed out: a failover test that
# kills a primary while its replica's first sync is still under way would lose what the sync
# had not carried yet (Redis replicates asynchronously) and blame the client for it.
for p in "${ports[@]}"; do
  cli "$p" info replication 2>/dev/null | tr -d '\r' | grep -q '^role:slave' || continue
  wait_for "$p" '^master_link_status:up' 'finished its first sync' info replication
done
echo "PORTS ${ports[*]}"
