/* Shared input handling of the nids C peers: patterns.txt and payloads.bin
 * as written by `go run ./services/nids/bench/export`, and the timing loop.
 * Our own code (E3 project). */
#ifndef NIDS_BENCH_COMMON_H
#define NIDS_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
	unsigned char *b;
	int len;
	int nocase;
} pattern_t;

typedef struct {
	unsigned char *b;
	int len;
} payload_t;

static void die(const char *what, const char *detail) {
	fprintf(stderr, "%s: %s\n", what, detail);
	exit(1);
}

static int hexval(int c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* read_patterns reads lines "<nocase> <hex>". */
static pattern_t *read_patterns(const char *path, int *n) {
	FILE *f = fopen(path, "r");
	if (!f) die("cannot open", path);
	int cap = 1024, cnt = 0;
	pattern_t *ps = malloc(cap * sizeof *ps);
	char *line = NULL;
	size_t lcap = 0;
	ssize_t l;
	int lineno = 0;
	while ((l = getline(&line, &lcap, f)) > 0) {
		lineno++;
		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
		if (l == 0) continue;
		if (l < 4 || (line[0] != '0' && line[0] != '1') || line[1] != ' ' || (l - 2) % 2 != 0) {
			fprintf(stderr, "%s:%d: want \"<0|1> <hex>\"\n", path, lineno);
			exit(1);
		}
		if (cnt == cap) ps = realloc(ps, (cap *= 2) * sizeof *ps);
		pattern_t *p = &ps[cnt++];
		p->nocase = line[0] == '1';
		p->len = (int)(l - 2) / 2;
		p->b = malloc(p->len);
		for (int i = 0; i < p->len; i++) {
			int hi = hexval(line[2 + 2 * i]), lo = hexval(line[3 + 2 * i]);
			if (hi < 0 || lo < 0) {
				fprintf(stderr, "%s:%d: bad hex digit\n", path, lineno);
				exit(1);
			}
			p->b[i] = (unsigned char)(hi << 4 | lo);
		}
	}
	free(line);
	fclose(f);
	*n = cnt;
	return ps;
}

/* read_payloads reads 4-byte little-endian lengths each followed by bytes. */
static payload_t *read_payloads(const char *path, int *n, long *total) {
	FILE *f = fopen(path, "rb");
	if (!f) die("cannot open", path);
	int cap = 1024, cnt = 0;
	payload_t *ps = malloc(cap * sizeof *ps);
	unsigned char lb[4];
	*total = 0;
	while (fread(lb, 1, 4, f) == 4) {
		uint32_t len = lb[0] | lb[1] << 8 | lb[2] << 16 | (uint32_t)lb[3] << 24;
		if (cnt == cap) ps = realloc(ps, (cap *= 2) * sizeof *ps);
		ps[cnt].b = malloc(len ? len : 1);
		ps[cnt].len = (int)len;
		if (fread(ps[cnt].b, 1, len, f) != len) die("truncated payload in", path);
		*total += len;
		cnt++;
	}
	fclose(f);
	*n = cnt;
	return ps;
}

static double now_sec(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* cpu_sec is the CPU time of the calling thread: on a shared machine wall
 * time also counts the time other processes hold the core. */
static double cpu_sec(void) {
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* report prints one line in the format run.sh parses: rates per wall
 * second, then per CPU second. */
static void report(const char *name, long packets, long bytes, double secs, double cpu, long matches_per_pass) {
	printf("%s: packets %ld bytes %ld seconds %.3f cpu_seconds %.3f matches_per_pass %ld MB/s %.1f pkts/s %.0f ns/pkt %.1f "
	       "cpu-MB/s %.1f cpu-pkts/s %.0f cpu-ns/pkt %.1f\n",
	       name, packets, bytes, secs, cpu, matches_per_pass, bytes / secs / 1e6, packets / secs, secs * 1e9 / packets,
	       bytes / cpu / 1e6, packets / cpu, cpu * 1e9 / packets);
}

#endif
