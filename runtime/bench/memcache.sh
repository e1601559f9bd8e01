#!/usr/bin/env bash
# memcache.sh: E3's KVS behind the runtime's memcached UDP ingress (one
# agent, one core, real mode: kvsmemcache) against memcached with one
# thread (-t 1), both over loopback UDP, under the same memaslap load
# (Debian's libmemcached-tools ships it as memcaslap): THREADS client
# threads, CONCURRENCY connections, 9:1 get:set, VALUE-byte values, for
# DURATION, alternating the servers for ROUNDS rounds. Each server is
# pinned to SERVER_CPU with GOMAXPROCS=1, memaslap to CLIENT_CPU.
#
# Printed per run: memaslap's TPS (requests/s) and the server's CPU time,
# hence requests per server CPU second; then medians and the ratios.
# Needs memcached, memcaslap, go, taskset.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-1}
CONCURRENCY=${CONCURRENCY:-16}
VALUE=${VALUE:-512}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$here" && go build -o "$tmp/kvsmemcache" ./kvsmemcache)
mcbin=$(command -v memcached)
slap=$(command -v memcaslap || command -v memaslap)

cpu_secs() { # utime+stime of a process in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"
}

run_one() {
  local impl=$1
  case $impl in
    memcached) setsid taskset -c "$SERVER_CPU" "$mcbin" -u root -t 1 -U "$PORT" -p 0 -l 127.0.0.1 -m 1024 >"$tmp/server.log" 2>&1 & ;;
    e3)        GOMAXPROCS=1 setsid taskset -c "$SERVER_CPU" "$tmp/kvsmemcache" -addr "127.0.0.1:$PORT" >"$tmp/server.log" 2>&1 & ;;
  esac
  server_pid=$!
  sleep 0.5
  local c0 c1 out tps
  c0=$(cpu_secs "$server_pid")
  out=$(taskset -c "$CLIENT_CPU" "$slap" -s "127.0.0.1:$PORT" -U -T "$THREADS" -c "$CONCURRENCY" -X "$VALUE" -t "$DURATION" 2>&1)
  c1=$(cpu_secs "$server_pid")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  tps=$(echo "$out" | sed -n 's/.*TPS: \([0-9]*\).*/\1/p' | tail -1)
  secs=${DURATION%s}
  awk -v i="$impl" -v t="$tps" -v a="$c0" -v b="$c1" -v s="$secs" 'BEGIN{cpu=(b-a)/s; printf "%-9s %8d req/s  server cpu %.2f cores  %8.0f req/s per server core\n", i, t, cpu, (cpu>0? t/cpu : 0)}' | tee -a "$tmp/results"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "memaslap: UDP, $THREADS thread(s), concurrency $CONCURRENCY, ${VALUE}-byte values, $DURATION per run"
for r in $(seq "$ROUNDS"); do
  run_one memcached
  run_one e3
done
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for impl in memcached e3; do
  rps=$(awk -v i="$impl" '$1==i{print $2}' "$tmp/results" | median)
  core=$(awk -v i="$impl" '$1==i{print $(NF-4)}' "$tmp/results" | median)
  printf "median %-9s %8.0f req/s  %8.0f req/s per server core\n" "$impl" "$rps" "$core"
  eval "rps_$impl=$rps core_$impl=$core"
done
awk -v a="$rps_e3" -v b="$rps_memcached" -v c="$core_e3" -v d="$core_memcached" 'BEGIN{printf "ratio e3/memcached: %.3f req/s, %.3f per server core\n", a/b, c/d}'
