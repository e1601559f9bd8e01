/* acdfa: the plain C Aho-Corasick peer of the nids benchmark (our own code).
 *
 * A textbook full DFA: goto and failure functions folded into a dense table
 * of 256 int32 columns per state, next = delta[state*256 + byte]. Case
 * insensitivity is handled the way Snort's acsm does it: patterns and text
 * are folded to lower case through a 256-byte table, and a case-sensitive
 * pattern is confirmed with memcmp when the folded DFA reports it. Every
 * occurrence is counted, like the Go matcher.
 *
 * usage: acdfa patterns.txt payloads.bin [seconds]
 */
#include "common.h"

static unsigned char xlat[256];

int main(int argc, char **argv) {
	if (argc < 3) die("usage", "acdfa patterns.txt payloads.bin [seconds]");
	double want = argc > 3 ? atof(argv[3]) : 2.0;
	int np, nd;
	long total;
	pattern_t *pats = read_patterns(argv[1], &np);
	payload_t *pay = read_payloads(argv[2], &nd, &total);
	for (int c = 0; c < 256; c++) xlat[c] = (c >= 'A' && c <= 'Z') ? c + 32 : c;

	long maxs = 1;
	for (int i = 0; i < np; i++) maxs += pats[i].len;
	int32_t *delta = malloc((size_t)maxs * 256 * sizeof *delta);
	for (long i = 0; i < maxs * 256; i++) delta[i] = -1;
	int *fail = calloc(maxs, sizeof *fail);
	/* Output lists: out[state] is a growable array of pattern indices. */
	int **out = calloc(maxs, sizeof *out), *nout = calloc(maxs, sizeof *nout), *capout = calloc(maxs, sizeof *capout);
	long ns = 1;
	for (int i = 0; i < np; i++) {
		long s = 0;
		for (int j = 0; j < pats[i].len; j++) {
			int c = xlat[pats[i].b[j]];
			if (delta[s * 256 + c] < 0) delta[s * 256 + c] = (int32_t)ns++;
			s = delta[s * 256 + c];
		}
		if (nout[s] == capout[s]) out[s] = realloc(out[s], (capout[s] = capout[s] * 2 + 2) * sizeof(int));
		out[s][nout[s]++] = i;
	}
	/* Breadth-first: failure links, inherited outputs, missing transitions. */
	int32_t *queue = malloc(ns * sizeof *queue);
	long qh = 0, qt = 0;
	for (int c = 0; c < 256; c++) {
		if (delta[c] < 0) delta[c] = 0;
		else { fail[delta[c]] = 0; queue[qt++] = delta[c]; }
	}
	while (qh < qt) {
		int32_t s = queue[qh++];
		int f = fail[s];
		for (int k = 0; k < nout[f]; k++) {
			if (nout[s] == capout[s]) out[s] = realloc(out[s], (capout[s] = capout[s] * 2 + 2) * sizeof(int));
			out[s][nout[s]++] = out[f][k];
		}
		for (int c = 0; c < 256; c++) {
			int32_t t = delta[s * 256 + c];
			if (t < 0) delta[s * 256 + c] = delta[f * 256 + c];
			else { fail[t] = delta[f * 256 + c]; queue[qt++] = t; }
		}
	}
	unsigned char *acc = calloc(ns, 1);
	for (long s = 0; s < ns; s++) acc[s] = nout[s] > 0;

	/* One pass to count, then timed passes. */
	long matches = 0, passes = 0, pkts = 0, bytes = 0;
	double start = now_sec(), cstart = cpu_sec(), el = 0, cel = 0;
	do {
		long m = 0;
		for (int d = 0; d < nd; d++) {
			const unsigned char *p = pay[d].b;
			int n = pay[d].len;
			int32_t s = 0;
			for (int i = 0; i < n; i++) {
				s = delta[(long)s * 256 + xlat[p[i]]];
				if (acc[s]) {
					for (int k = 0; k < nout[s]; k++) {
						pattern_t *pt = &pats[out[s][k]];
						if (!pt->nocase && memcmp(p + i + 1 - pt->len, pt->b, pt->len) != 0) continue;
						m++;
					}
				}
			}
		}
		if (passes == 0) matches = m;
		else if (m != matches) die("acdfa", "match count changed between passes");
		passes++;
		pkts += nd;
		bytes += total;
		el = now_sec() - start;
		cel = cpu_sec() - cstart;
	} while (cel < want);
	fprintf(stderr, "acdfa: %d patterns, %ld states, table %.1f MB\n", np, ns, ns * 256 * 4 / 1048576.0);
	report("c-dfa", pkts, bytes, el, cel, matches);
	return 0;
}
