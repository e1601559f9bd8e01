#!/usr/bin/env bash
# Measures the sql service's prepared single-row insert and select
# (modernc.org/sqlite, pure Go) against C SQLite (Debian's libsqlite3)
# on the same machine, with the same schema, statements and rows, and
# prints the ratios. Needs gcc and libsqlite3-dev.
#
# Usage: services/sql/bench/run.sh [N]   (operations per benchmark, default 1000000)
set -euo pipefail
n=${1:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gcc -O2 -Wall -o "$tmp/sqlite_bench" "$here/sqlite_bench.c" -lsqlite3
"$tmp/sqlite_bench" "$n" >"$tmp/c.txt" 2>/dev/null
(cd "$here/.." && go test -run '^TestSQLiteVersion$' -v . | grep -o 'modernc SQLite [0-9.]*' || true)
(cd "$here/.." && go test -run '^$' -bench '^Benchmark(InsertRow|SelectRow)(DatabaseSQL)?$' -benchtime "${n}x" .) | tee "$tmp/go.txt"

echo
awk -v cfile="$tmp/c.txt" '
	BEGIN {
		while ((getline line < cfile) > 0) { split(line, f, " "); c[f[1]] = f[2] }
		printf "C SQLite %s: insert %.1f ns/op, select %.1f ns/op\n", c["sqlite_version"], c["insert_ns_per_op"], c["select_ns_per_op"]
	}
	/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
		for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") ns = $i
		peer = (name ~ /^Insert/) ? c["insert_ns_per_op"] : c["select_ns_per_op"]
		printf "%-22s %9.1f ns/op   %.2fx C SQLite (%.1f ns/op)\n", name, ns, ns / peer, peer
	}' "$tmp/go.txt"
