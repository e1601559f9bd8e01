#!/usr/bin/env bash
# run.sh: the runtime's one-hop echo benchmark, an E3 agent against C.
#
# The C peer is transport/bench/echo.c (recvmmsg/sendmmsg, 64 datagrams a
# call); the E3 side is agentecho: a node agent in real mode with one core
# running the echo service, each request admitted at the ingress, run
# through the handler, completed by weight and answered. Both are driven by
# the same Go client (transport/bench/udpecho load: closed loop, WINDOW
# requests outstanding, 56-byte header + PAYLOAD bytes), alternating C and
# E3 for ROUNDS rounds. Servers run in their own session pinned to
# SERVER_CPU, the client on CLIENT_CPU, all Go with GOMAXPROCS=1.
#
# The figure to compare is requests per second of server CPU time (from
# /proc/PID/task/*/schedstat): what one fully busy core sustains. Knobs:
# MODE=closed|burst|both ROUNDS=3 DURATION=4s WARMUP=1s WINDOW=256 PAYLOAD=64
# BURST=20000 BURST_ROUNDS=5 PIN=1. Needs gcc, go, taskset, setsid.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../../transport/bench

MODE=${MODE:-both}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
WARMUP=${WARMUP:-1s}
WINDOW=${WINDOW:-256}
BATCH=64
PAYLOAD=${PAYLOAD:-64}
BURST=${BURST:-20000}
BURST_ROUNDS=${BURST_ROUNDS:-5}
SOCKBUF=$((64 << 20))
PORT=${PORT:-$((20000 + RANDOM % 20000))}
PIN=${PIN:-1}

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$tmp/echo" "$tb/echo.c"
(cd "$tb" && go build -o "$tmp/udpecho" ./udpecho)
(cd "$here" && go build -o "$tmp/agentecho" ./agentecho)

server_pin=()
client_pin=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null; then
  server_pin=(taskset -c 0)
  client_pin=(taskset -c 1)
fi

start_server() {
  case $1 in
    C)  setsid "${server_pin[@]}" "$tmp/echo" 127.0.0.1 "$PORT" "$BATCH" "$SOCKBUF" >"$tmp/server.log" & ;;
    Go) GOMAXPROCS=1 setsid "${server_pin[@]}" "$tmp/agentecho" -addr "127.0.0.1:$PORT" -sockbuf "$SOCKBUF" >"$tmp/server.log" & ;;
  esac
  server_pid=$!
  sleep 0.5
  case $(cat "/proc/$server_pid/comm" 2>/dev/null) in
    echo|agentecho) ;;
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
echo "Go = the E3 agent (runtime/bench/agentecho), C = transport/bench/echo.c; rounds $ROUNDS, modes ${modes[*]}"
for r in $(seq "$ROUNDS"); do
  for m in "${modes[@]}"; do
    run_one C "$m"
    run_one Go "$m"
  done
done
"$tmp/udpecho" report "$tmp/results.jsonl"
