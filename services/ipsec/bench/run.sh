#!/bin/sh
# run.sh: ESP encapsulation at 512 B per core, Go (BenchmarkHandle) against
# the OpenSSL EVP peer (esp_openssl.c), interleaved in the same run.
#
#   services/ipsec/bench/run.sh [ROUNDS [SECONDS]]
#
# Needs gcc and libssl-dev. Both sides report wall time and the thread's
# CPU time per packet; on a shared machine the CPU figure is the fair one.
# The best (lowest) figure of each side over ROUNDS rounds is compared.
set -eu
rounds=${1:-3}
secs=${2:-2}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gcc -O2 -o "$tmp/esp_openssl" "$here/esp_openssl.c" -lcrypto
(cd "$root" && go test -c -o "$tmp/ipsec.test" ./services/ipsec/)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, go $(go env GOVERSION)"

i=0
while [ "$i" -lt "$rounds" ]; do
	(cd "$here/.." && "$tmp/ipsec.test" -test.run '^$' -test.bench '^BenchmarkHandle$' -test.benchtime "${secs}s") |
		awk '/^BenchmarkHandle/ { for (f = 1; f < NF; f++) { if ($(f+1) == "ns/op") w = $f; if ($(f+1) == "cpu-ns/op") c = $f }
			print "go", w, c }' >>"$tmp/go.txt"
	"$tmp/esp_openssl" bench 512 "$secs" | tee -a "$tmp/c.raw" |
		sed -n 's/.*best: wall_ns=\([0-9.]*\) cpu_ns=\([0-9.]*\).*/c \1 \2/p' >>"$tmp/c.txt"
	i=$((i + 1))
done
head -1 "$tmp/c.raw"
cat "$tmp/go.txt" "$tmp/c.txt" | awk '
	$1 == "go" { if (!gw || $2 < gw) gw = $2; if (!gc || $3 < gc) gc = $3 }
	$1 == "c"  { if (!cw || $2 < cw) cw = $2; if (!cc || $3 < cc) cc = $3 }
	END {
		printf "go     ipsec encap 512 B: %8.1f ns/packet wall  %8.1f ns/packet cpu  (%.0f packets/s per core)\n", gw, gc, 1e9 / gc
		printf "openssl EVP peer  512 B: %8.1f ns/packet wall  %8.1f ns/packet cpu  (%.0f packets/s per core)\n", cw, cc, 1e9 / cc
		printf "ratio go/openssl (throughput): cpu %.3f  wall %.3f  (target >= 0.85)\n", cc / gc, cw / gw
	}'
