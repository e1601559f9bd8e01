#!/usr/bin/env bash
# Measures the sql service's prepared single-row insert and select
# (modernc.org/sqlite, pure Go) against C SQLite (Debian's libsqlite3)
# on the same machine, with the same schema, statements and rows, and
# prints the ratios. Needs gcc and libsqlite3-dev.
#
# The C program and the Go benchmarks run in alternating rounds and the
# fastest round of each counts, so that load from other processes, which
# only ever slows a round down, affects both sides alike.
#
# Usage: services/sql/bench/run.sh [N [ROUNDS]]
#   N       operations per benchmark and round (default 1000000)
#   ROUNDS  alternating rounds (default 3)
set -euo pipefail
n=${1:-1000000}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gcc -O2 -Wall -o "$tmp/sqlite_bench" "$here/sqlite_bench.c" -lsqlite3
(cd "$here/.." && go test -c -o "$tmp/sql.test" .)
"$tmp/sql.test" -test.run '^TestSQLiteVersion$' -test.v | grep -o 'modernc SQLite [0-9.]*' || true
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"

for r in $(seq "$rounds"); do
	"$tmp/sqlite_bench" "$n" 2>/dev/null | sed "s/^/C /" >>"$tmp/all.txt"
	"$tmp/sql.test" -test.run '^$' -test.bench '^Benchmark(InsertRow|SelectRow)(DatabaseSQL)?$' \
		-test.benchtime "${n}x" -test.benchmem | grep '^Benchmark' | tee -a "$tmp/all.txt"
done

echo
awk '
	$1 == "C" && $2 == "sqlite_version" { ver = $3; next }
	$1 == "C" { k = ($2 ~ /^insert/) ? "Insert" : "Select"; if (!(k in c) || $3 < c[k]) c[k] = $3; next }
	/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
		for (i = 1; i < NF; i++) {
			if ($(i+1) == "ns/op") ns = $i
			if ($(i+1) == "allocs/op") al = $i
		}
		if (!(name in g) || ns < g[name]) { g[name] = ns; allocs[name] = al }
		if (!(name in seen)) { seen[name] = 1; order[++m] = name }
	}
	END {
		printf "fastest of the rounds; C SQLite %s: insert %.1f ns/op, select %.1f ns/op\n", ver, c["Insert"], c["Select"]
		for (i = 1; i <= m; i++) {
			name = order[i]; peer = (name ~ /^Insert/) ? c["Insert"] : c["Select"]
			printf "%-22s %9.1f ns/op %3d allocs/op   %.2fx C SQLite\n", name, g[name], allocs[name], g[name] / peer
		}
	}' "$tmp/all.txt"
