/*
 * sqlite_bench: the C SQLite peer of the sql service's BenchmarkInsertRow
 * and BenchmarkSelectRow (services/sql/bench_test.go). Same schema, same
 * statements, same rows, in memory, one connection:
 *
 *   insert: N prepared single-row INSERTs into an empty table (autocommit);
 *   select: N prepared single-row SELECTs by (sensor, metric, t) from a
 *           table of P rows.
 *
 * Row i is (sensor i % 10000, metric 1, t 1.7e18 + i*1e6, value
 * 20 + (i % 100) / 100); select j looks up row (j * 7919) % P.
 *
 * Usage: sqlite_bench [N [P]]   (defaults 1000000 and 100000)
 * Prints "key value" lines: sqlite_version, insert_ns_per_op,
 * select_ns_per_op.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BASE_T 1700000000000000000LL

static const char *schema =
	"CREATE TABLE readings (sensor INTEGER NOT NULL, metric INTEGER NOT NULL,"
	" t INTEGER NOT NULL, value REAL NOT NULL);"
	"CREATE INDEX readings_by_sensor ON readings (sensor, metric, t);";
static const char *insert_sql =
	"INSERT INTO readings (sensor, metric, t, value) VALUES (?, ?, ?, ?)";
static const char *point_sql =
	"SELECT value FROM readings WHERE sensor = ? AND metric = ? AND t = ?";

static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "sqlite_bench: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static sqlite3 *open_db(sqlite3_stmt **ins, sqlite3_stmt **sel)
{
	sqlite3 *db;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		die(db, "open");
	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
		die(db, "schema");
	if (sqlite3_prepare_v2(db, insert_sql, -1, ins, NULL) != SQLITE_OK)
		die(db, "prepare insert");
	if (sqlite3_prepare_v2(db, point_sql, -1, sel, NULL) != SQLITE_OK)
		die(db, "prepare select");
	return db;
}

static void insert_row(sqlite3 *db, sqlite3_stmt *ins, long long i)
{
	sqlite3_bind_int64(ins, 1, i % 10000);
	sqlite3_bind_int64(ins, 2, 1);
	sqlite3_bind_int64(ins, 3, BASE_T + i * 1000000LL);
	sqlite3_bind_double(ins, 4, 20.0 + (double)(i % 100) / 100.0);
	if (sqlite3_step(ins) != SQLITE_DONE)
		die(db, "insert");
	sqlite3_reset(ins);
}

int main(int argc, char **argv)
{
	long long n = argc > 1 ? atoll(argv[1]) : 1000000;
	long long p = argc > 2 ? atoll(argv[2]) : 100000;
	sqlite3_stmt *ins, *sel;
	sqlite3 *db;
	double t0, sum = 0;

	if (n <= 0 || p <= 0) {
		fprintf(stderr, "usage: sqlite_bench [N [P]] with N, P > 0\n");
		return 2;
	}
	printf("sqlite_version %s\n", sqlite3_libversion());

	db = open_db(&ins, &sel);
	t0 = now_ns();
	for (long long i = 0; i < n; i++)
		insert_row(db, ins, i);
	printf("insert_ns_per_op %.1f\n", (now_ns() - t0) / (double)n);
	sqlite3_finalize(ins);
	sqlite3_finalize(sel);
	sqlite3_close(db);

	db = open_db(&ins, &sel);
	for (long long i = 0; i < p; i++)
		insert_row(db, ins, i);
	t0 = now_ns();
	for (long long i = 0; i < n; i++) {
		long long j = (i * 7919) % p;
		sqlite3_bind_int64(sel, 1, j % 10000);
		sqlite3_bind_int64(sel, 2, 1);
		sqlite3_bind_int64(sel, 3, BASE_T + j * 1000000LL);
		if (sqlite3_step(sel) != SQLITE_ROW)
			die(db, "select found no row");
		sum += sqlite3_column_double(sel, 0);
		sqlite3_reset(sel);
	}
	printf("select_ns_per_op %.1f\n", (now_ns() - t0) / (double)n);
	fprintf(stderr, "checksum %.2f\n", sum); /* keeps the reads live */
	sqlite3_finalize(ins);
	sqlite3_finalize(sel);
	sqlite3_close(db);
	return 0;
}
