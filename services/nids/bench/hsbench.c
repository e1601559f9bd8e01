/* hsbench: the Hyperscan peer of the nids benchmark (our own code against
 * the system's libhyperscan). Each pattern becomes a literal regex of \xHH
 * escapes, HS_FLAG_CASELESS for nocase ones; the database is compiled with
 * hs_compile_multi in block mode and each payload scanned with hs_scan,
 * counting every match like the Go matcher.
 *
 * usage: hsbench patterns.txt payloads.bin [seconds]
 */
#include <hs/hs.h>

#include "common.h"

static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx) {
	(void)id, (void)from, (void)to, (void)flags;
	(*(long *)ctx)++;
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3) die("usage", "hsbench patterns.txt payloads.bin [seconds]");
	double want = argc > 3 ? atof(argv[3]) : 2.0;
	int np, nd;
	long total;
	pattern_t *pats = read_patterns(argv[1], &np);
	payload_t *pay = read_payloads(argv[2], &nd, &total);

	char **exprs = malloc(np * sizeof *exprs);
	unsigned *flags = malloc(np * sizeof *flags), *ids = malloc(np * sizeof *ids);
	for (int i = 0; i < np; i++) {
		exprs[i] = malloc(4 * pats[i].len + 1);
		for (int j = 0; j < pats[i].len; j++) sprintf(exprs[i] + 4 * j, "\\x%02x", pats[i].b[j]);
		flags[i] = pats[i].nocase ? HS_FLAG_CASELESS : 0;
		ids[i] = i;
	}
	hs_database_t *db;
	hs_compile_error_t *cerr;
	double t0 = now_sec();
	if (hs_compile_multi((const char *const *)exprs, flags, ids, np, HS_MODE_BLOCK, NULL, &db, &cerr) != HS_SUCCESS) {
		fprintf(stderr, "hsbench: pattern %d: %s\n", cerr->expression, cerr->message);
		return 1;
	}
	double tc = now_sec() - t0;
	hs_scratch_t *scratch = NULL;
	if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) die("hsbench", "hs_alloc_scratch failed");
	size_t dbsize = 0;
	hs_database_size(db, &dbsize);

	long matches = 0, passes = 0, pkts = 0, bytes = 0;
	double start = now_sec(), cstart = cpu_sec(), el = 0, cel = 0;
	do {
		long m = 0;
		for (int d = 0; d < nd; d++)
			if (hs_scan(db, (const char *)pay[d].b, pay[d].len, 0, scratch, on_match, &m) != HS_SUCCESS)
				die("hsbench", "hs_scan failed");
		if (passes == 0) matches = m;
		else if (m != matches) die("hsbench", "match count changed between passes");
		passes++;
		pkts += nd;
		bytes += total;
		el = now_sec() - start;
		cel = cpu_sec() - cstart;
	} while (cel < want);
	fprintf(stderr, "hsbench: Hyperscan %s, %d patterns, database %.1f MB, compiled in %.2f s\n", hs_version(), np,
	        dbsize / 1048576.0, tc);
	report("hyperscan", pkts, bytes, el, cel, matches);
	return 0;
}
