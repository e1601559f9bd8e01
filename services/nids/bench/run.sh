#!/usr/bin/env bash
# Measures the nids matcher against its two peers on this machine, in one
# run, on the same inputs: 2,000 generated rules and the transport payloads
# of 4,096 generated 512-byte packets.
#
#   c-dfa      plain C Aho-Corasick, full DFA with 256 int32 columns (acdfa.c)
#   hyperscan  Hyperscan block mode, hs_compile_multi + hs_scan (hsbench.c)
#   go-match   BenchmarkMatch/streams=4: the Go matcher on the same payloads
#   go-handle  BenchmarkHandle: the whole service on the 512-byte packets
#
# Every peer counts every occurrence; the script fails unless all report
# the number the Go matcher finds. Rates are per CPU second of the scanning
# thread (CLOCK_THREAD_CPUTIME_ID in all four), so time the core spends on
# other processes of a shared machine does not count; cache disturbance by
# them still does. Each peer runs ROUNDS times, interleaved; the best and
# median rounds and the median of the per-round ratios are printed, and the
# wall-clock MB/s of each round is kept in the raw results (KEEP=1).
#
# Needs: go, gcc, libhyperscan-dev (Debian). Without Hyperscan the
# Hyperscan row is skipped, unless CI=true, where that is an error.
#
# Environment: ROUNDS (default 5), SECONDS_PER_RUN (default 2), KEEP=1 to
# keep the work directory.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-2}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
if [[ ${KEEP:-0} != 1 ]]; then trap 'rm -rf "$work"' EXIT; else echo "work directory: $work"; fi

cd "$root"
echo "== inputs"
export_line=$(go run ./services/nids/bench/export -out "$work")
echo "$export_line"
want=$(sed -E 's/.* matches ([0-9]+) .*/\1/' <<<"$export_line")

echo "== build"
cflags=(-O3 -march=native -Wall -Wextra)
gcc "${cflags[@]}" -o "$work/acdfa" "$here/acdfa.c"
have_hs=1
if ! gcc "${cflags[@]}" -o "$work/hsbench" "$here/hsbench.c" -lhs 2>"$work/hs.err"; then
	if [[ ${CI:-} == true ]]; then
		cat "$work/hs.err" >&2
		echo "hsbench does not build: install libhyperscan-dev" >&2
		exit 1
	fi
	echo "skipping Hyperscan: hsbench does not build (install libhyperscan-dev)"
	have_hs=0
fi
go test -c -o "$work/nids.test" ./services/nids/
gcc --version | head -1
go version
grep -m1 'model name' /proc/cpuinfo || true

# Each run appends "name cpu-MB/s cpu-pkts/s wall-MB/s" to $work/results.
run_c() { # name binary
	local out
	out=$("$work/$2" "$work/patterns.txt" "$work/payloads.bin" "$SECS" 2>>"$work/peers.log")
	local got
	got=$(sed -E 's/.* matches_per_pass ([0-9]+) .*/\1/' <<<"$out")
	if [[ $got != "$want" ]]; then
		echo "$1 found $got occurrences, the Go matcher $want" >&2
		exit 1
	fi
	awk -v n="$1" '{for(i=1;i<=NF;i++){if($i=="MB/s")m=$(i+1);if($i=="cpu-MB/s")cm=$(i+1);if($i=="cpu-pkts/s")cp=$(i+1)}} END{print n, cm, cp, m}' <<<"$out" >>"$work/results"
}
run_go() { # name benchmark-regexp
	local out
	out=$(GOMAXPROCS=1 "$work/nids.test" 2>/dev/null -test.run '^$' -test.bench "$2" -test.benchtime "${SECS}s" -test.cpu 1 -test.benchmem)
	awk -v n="$1" '/^Benchmark/{for(i=1;i<=NF;i++){if($i=="cpu-ns/op")s=$(i-1);if($i=="cpu-MB/s")cm=$(i-1);if($i=="MB/s")m=$(i-1)}} END{printf "%s %s %.0f %s\n", n, cm, 1e9/s, m}' <<<"$out" >>"$work/results"
	grep -q ' 0 allocs/op' <<<"$out" || { echo "$1 allocates:" >&2; echo "$out" >&2; exit 1; }
}

echo "== measure ($ROUNDS rounds of ${SECS}s each)"
: >"$work/results"
for r in $(seq "$ROUNDS"); do
	run_c c-dfa acdfa
	[[ $have_hs == 1 ]] && run_c hyperscan hsbench
	run_go go-match '^BenchmarkMatch$/^streams=4$'
	run_go go-handle '^BenchmarkHandle$'
	echo "round $r done"
done
sort -u "$work/peers.log"

echo "== results per CPU second: one core, 512-byte packets, 2,000 patterns (payload bytes; go-handle counts whole packets)"
awk '
{ n=$1; k[n]++; mb[n, k[n]]=$2; pp[n, k[n]]=$3; if (!(n in seen)) { seen[n]=1; order[++no]=n } }
# nth largest of column arr for peer name (nth=1: the best)
function nth(name, arr, idx,   i, j, t, v) {
	for (i = 1; i <= k[name]; i++) v[i] = arr[name, i]
	for (i = 1; i <= k[name]; i++) for (j = i + 1; j <= k[name]; j++) if (v[j] + 0 > v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
	return v[idx]
}
# median over rounds of the ratio a/b of MB/s measured in the same round
function ratio(a, b,   i, j, t, v, r) {
	r = k[a] < k[b] ? k[a] : k[b]
	for (i = 1; i <= r; i++) v[i] = mb[a, i] / mb[b, i]
	for (i = 1; i <= r; i++) for (j = i + 1; j <= r; j++) if (v[j] > v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return v[int((r + 1) / 2)]
}
END {
	printf "%-10s %10s %10s %12s %12s\n", "peer", "best MB/s", "median", "best pkts/s", "best ns/pkt"
	for (o = 1; o <= no; o++) {
		n = order[o]; m = int((k[n] + 1) / 2)
		bestp = nth(n, pp, 1)
		printf "%-10s %10.1f %10.1f %12.0f %12.0f\n", n, nth(n, mb, 1), nth(n, mb, m), bestp, 1e9 / bestp
	}
	printf "median per-round ratios (MB/s, same round): go-match/c-dfa %.2f", ratio("go-match", "c-dfa")
	if ("hyperscan" in seen) printf ", go-match/hyperscan %.2f", ratio("go-match", "hyperscan")
	printf "\n"
}' "$work/results"
if [[ ${KEEP:-0} == 1 ]]; then echo "raw: peer cpu-MB/s cpu-pkts/s wall-MB/s"; cat "$work/results"; fi
