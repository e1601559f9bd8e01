#!/usr/bin/env bash
# run.sh: the transport echo benchmark, Go against C, side by side.
#
# Builds the C peer (echo.c, recvmmsg/sendmmsg) and the Go echo server
# (udpecho serve: transport.UDPConn batch I/O), then drives each in turn with
# the same Go client (udpecho load), alternating C and Go for ROUNDS rounds so
# that a change in the machine's load hits both alike. Each server runs in
# its own session (setsid, so the kernel's autogroup scheduling treats both
# alike) pinned to SERVER_CPU; the client is pinned to CLIENT_CPU (PIN=0
# turns pinning off). The Go server and the client run with GOMAXPROCS=1.
#
# Two ways of loading the server (MODE=closed, burst or both):
#   closed  a closed loop: WINDOW requests outstanding, each reply answered
#           by a new request at once, for DURATION after WARMUP;
#   burst   the server saturated: rounds of BURST requests are queued in its
#           socket while it is stopped (SIGSTOP), then it is resumed and
#           works through full batches; no client activity competes with it.
#
# Figures per server (medians over the rounds):
#   req/s           replies per second of wall time seen by the client;
#   req/s per core  replies per second of server CPU time (all its threads,
#                   from /proc/PID/task/*/schedstat): what one fully busy
#                   core sustains. This is the figure to compare: on a
#                   2-core machine the client costs about as much as the
#                   server, and on a shared one the wall-clock rate mostly
#                   measures how the scheduler treats each process.
# and the ratio Go/C of each.
#
# Knobs (environment): MODE=both ROUNDS=3 DURATION=5s WARMUP=1s WINDOW=256
# BATCH=64 PAYLOAD=64 BURST=20000 BURST_ROUNDS=5 PORT=random SERVER_CPU=0
# CLIENT_CPU=1 PIN=1 XNET=0 (1: the Go server uses golang.org/x/net/ipv4's
# batch calls). Needs gcc and go; taskset and setsid (util-linux).
set -euo pipefail
cd "$(dirname "$0")"

MODE=${MODE:-both}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
WINDOW=${WINDOW:-256}
BATCH=${BATCH:-64}
PAYLOAD=${PAYLOAD:-64}
BURST=${BURST:-20000}
BURST_ROUNDS=${BURST_ROUNDS:-5}
SOCKBUF=$((64 << 20)) # both servers: a burst round must fit the socket buffer
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

start_server() {
  local impl=$1
  case $impl in
    C)  setsid "${server_pin[@]}" "$tmp/echo" 127.0.0.1 "$PORT" "$BATCH" "$SOCKBUF" >"$tmp/server.log" & ;;
    Go) GOMAXPROCS=1 setsid "${server_pin[@]}" "$tmp/udpecho" serve -addr "127.0.0.1:$PORT" -batch "$BATCH" \
          -sockbuf "$SOCKBUF" -xnet="$xnet_flag" >"$tmp/server.log" & ;;
  esac
  server_pid=$!
  sleep 0.3
  # setsid and taskset exec the server, so $! must be the server itself.
  case $(cat "/proc/$server_pid/comm" 2>/dev/null) in
    echo|udpecho) ;;
    *) echo "run.sh: server pid $server_pid is not the server" >&2; exit 1 ;;
  esac
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
}

run_one() {
  local impl=$1 mode=$2
  start_server "$impl"
  local how=(-warmup "$WARMUP" -duration "$DURATION")
  [ "$mode" = burst ] && how=(-burst "$BURST" -rounds "$BURST_ROUNDS")
  GOMAXPROCS=1 "${client_pin[@]}" "$tmp/udpecho" load -addr "127.0.0.1:$PORT" -server-pid "$server_pid" \
    -window "$WINDOW" -batch "$BATCH" -payload "$PAYLOAD" "${how[@]}" \
    -label "$impl $mode" -json >>"$tmp/results.jsonl"
  stop_server
  "$tmp/udpecho" report -last "$tmp/results.jsonl"
}

modes=(closed burst)
[ "$MODE" != both ] && modes=("$MODE")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: modes ${modes[*]}, rounds $ROUNDS; closed: $DURATION after $WARMUP warm-up, window $WINDOW; burst: $BURST_ROUNDS x $BURST requests;"
echo "          batch $BATCH, payload $PAYLOAD B (+56 B header), server cpu $SERVER_CPU, client cpu $CLIENT_CPU, pin $PIN, xnet $XNET"
for r in $(seq "$ROUNDS"); do
  for m in "${modes[@]}"; do
    run_one C "$m"
    run_one Go "$m"
  done
done
"$tmp/udpecho" report "$tmp/results.jsonl"
