#!/usr/bin/env bash
# run.sh: the transport echo benchmark, Go against C, side by side.
#
# Builds the C peer (echo.c, recvmmsg/sendmmsg) and the Go echo server
# (udpecho serve: transport.UDPConn batch I/O), then drives each in turn
# with the same Go closed-loop client (udpecho load), alternating C and Go
# for ROUNDS rounds so that a change in the machine's load hits both alike.
# The server is pinned to SERVER_CPU and the client to CLIENT_CPU with
# taskset (PIN=0 turns pinning off); both the Go server and the client run
# with GOMAXPROCS=1.
#
# Two figures per server, medians over the rounds:
#   req/s           replies per second seen by the client;
#   req/s per core  replies per second of server CPU time (user+system from
#                   /proc/PID/stat): what one fully busy core sustains. This
#                   is the fair comparison when the client, not the server,
#                   is the bottleneck, which on a 2-core machine it can be.
# and the ratio Go/C of each.
#
# Knobs (environment): ROUNDS=3 DURATION=5s WARMUP=1s WINDOW=256 BATCH=64
# PAYLOAD=64 PORT=random SERVER_CPU=0 CLIENT_CPU=1 PIN=1 XNET=0 (1: the Go
# server uses golang.org/x/net/ipv4's batch calls).
# Needs gcc and go; taskset (util-linux) for pinning.
set -euo pipefail
cd "$(dirname "$0")"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
WINDOW=${WINDOW:-256}
BATCH=${BATCH:-64}
PAYLOAD=${PAYLOAD:-64}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PIN=${PIN:-1}
XNET=${XNET:-0}

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$tmp/echo" echo.c
go build -o "$tmp/udpecho" ./udpecho

# Commands are started directly (no shell function in between), so that $!
# is the server itself: its CPU time is read from /proc/$!/stat.
server_pin=()
client_pin=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null; then
  server_pin=(taskset -c "$SERVER_CPU")
  client_pin=(taskset -c "$CLIENT_CPU")
fi
xnet_flag=false
[ "$XNET" = 1 ] && xnet_flag=true

run_one() {
  local label=$1
  case $label in
    C)  "${server_pin[@]}" "$tmp/echo" 127.0.0.1 "$PORT" "$BATCH" >"$tmp/server.log" & ;;
    Go) GOMAXPROCS=1 "${server_pin[@]}" "$tmp/udpecho" serve -addr "127.0.0.1:$PORT" -batch "$BATCH" -xnet="$xnet_flag" >"$tmp/server.log" & ;;
  esac
  server_pid=$!
  sleep 0.3
  GOMAXPROCS=1 "${client_pin[@]}" "$tmp/udpecho" load -addr "127.0.0.1:$PORT" -server-pid "$server_pid" \
    -window "$WINDOW" -batch "$BATCH" -payload "$PAYLOAD" -warmup "$WARMUP" -duration "$DURATION" \
    -label "$label" -json | tee -a "$tmp/results.jsonl" >/dev/null
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
  "$tmp/udpecho" report -last "$tmp/results.jsonl"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: rounds $ROUNDS, $DURATION measured after $WARMUP warm-up, window $WINDOW, batch $BATCH, payload $PAYLOAD B (+56 B header), server cpu $SERVER_CPU, client cpu $CLIENT_CPU, pin $PIN, xnet $XNET"
for r in $(seq "$ROUNDS"); do
  run_one C
  run_one Go
done
"$tmp/udpecho" report "$tmp/results.jsonl"
