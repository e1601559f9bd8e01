package sql

import (
	"context"
	stdsql "database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// The rows and lookups of the C SQLite comparison (bench/sqlite_bench.c):
// row i is (i % 10000, 1, benchBase + i*1e6, 20 + (i % 100)/100) and
// lookup j reads row (j*7919) % benchRows.
const (
	benchBase = 1_700_000_000_000_000_000
	benchRows = 100_000
)

func benchRow(i int64) (sensor, metric, t int64, v float64) {
	return i % 10000, 1, benchBase + i*1_000_000, 20 + float64(i%100)/100
}

func TestSQLiteVersion(t *testing.T) {
	c, err := stdsql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var v string
	if err := c.QueryRow("SELECT sqlite_version()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("modernc SQLite %s", v)
}

// BenchmarkInsertRow is the service's prepared single-row insert (the
// driver-level path Handle uses), into a table that grows by b.N rows.
func BenchmarkInsertRow(b *testing.B) {
	db := newDB(b, map[string]string{ConfigMaxRows: "1000000000000"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Insert(benchRow(int64(i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSelectRow is the prepared single-row select by index over
// 100,000 rows.
func BenchmarkSelectRow(b *testing.B) {
	db := newDB(b, map[string]string{ConfigMaxRows: "1000000000000"})
	for i := int64(0); i < benchRows; i++ {
		if _, err := db.Insert(benchRow(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sensor, metric, t, _ := benchRow(int64(i) * 7919 % benchRows)
		if _, ok, err := db.Point(sensor, metric, t); err != nil || !ok {
			b.Fatalf("row %d: %v %v", i, ok, err)
		}
	}
}

// openStd opens the same schema through database/sql on one connection,
// the route the service does not take: this measures what it would cost.
func openStd(b *testing.B) (*stdsql.DB, *stdsql.Stmt, *stdsql.Stmt) {
	db, err := stdsql.Open("sqlite", ":memory:")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	b.Cleanup(func() { db.Close() })
	if _, err := db.Exec(Schema); err != nil {
		b.Fatal(err)
	}
	ins, err := db.Prepare(insertSQL)
	if err != nil {
		b.Fatal(err)
	}
	sel, err := db.Prepare(pointSQL)
	if err != nil {
		b.Fatal(err)
	}
	return db, ins, sel
}

func BenchmarkInsertRowDatabaseSQL(b *testing.B) {
	_, ins, _ := openStd(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, m, t, v := benchRow(int64(i))
		if _, err := ins.ExecContext(ctx, s, m, t, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSelectRowDatabaseSQL(b *testing.B) {
	_, ins, sel := openStd(b)
	for i := int64(0); i < benchRows; i++ {
		s, m, t, v := benchRow(i)
		if _, err := ins.Exec(s, m, t, v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, m, t, _ := benchRow(int64(i) * 7919 % benchRows)
		var v float64
		if err := sel.QueryRowContext(ctx, s, m, t).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCPeerBuilds compiles and runs the C SQLite peer on a few rows, so
// that bench/run.sh keeps working. It needs gcc and libsqlite3-dev.
func TestCPeerBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a C program")
	}
	gcc, err := exec.LookPath("gcc")
	if err == nil {
		_, err = os.Stat("/usr/include/sqlite3.h")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("C peer needs gcc and libsqlite3-dev: %v", err)
		}
		t.Skipf("C peer needs gcc and libsqlite3-dev (apt-get install gcc libsqlite3-dev): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "sqlite_bench")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-o", bin, "bench/sqlite_bench.c", "-lsqlite3").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "1000", "500").Output()
	if err != nil {
		t.Fatalf("sqlite_bench: %v", err)
	}
	re := regexp.MustCompile(`(?m)^sqlite_version \S+\ninsert_ns_per_op [0-9.]+\nselect_ns_per_op [0-9.]+\n$`)
	if !re.Match(out) {
		t.Errorf("sqlite_bench printed %q", out)
	}
}
