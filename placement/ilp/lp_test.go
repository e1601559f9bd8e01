package ilp_test

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/ilp"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

var update = flag.Bool("update", false, "rewrite the golden LP files in testdata")

func builtin(t testing.TB, name string) *app.App {
	t.Helper()
	a, err := app.Builtin(name, services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// small is the golden problem: two Type1-SmartNIC servers in two racks
// (so every hop term appears), a source with a backup, two consumers (SQL
// not migratable), and enough traffic that the first server's SmartNIC
// port rows can bind while the second's cannot; its busy host and the
// second SmartNIC's little free memory give the only capacity and
// utilisation rows that can bind.
func small(t testing.TB) *placement.Problem {
	t.Helper()
	var b topology.Builder
	b.AddServer(hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	b.AddRack()
	b.AddServer(hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	l := placement.NewLoad(c)
	l.Set(1, placement.Usage{TxGbps: 19, RxGbps: 19}) // r0/s0/nic0's ports are nearly full
	l.Set(0, placement.Usage{Cores: 9.5})             // r0/s0/host is busy
	l.Set(3, placement.Usage{MemoryMB: 3000})         // r1/s0/nic0 has 1096 MB free
	p := placement.NewProblem(l)
	src := p.AddInstance(placement.Instance{Name: "gw", Service: "apigw", RPS: 2e5, IngressRPS: 2e5, Bytes: 512, MemoryMB: 512})
	p.AddBackup(src, placement.Instance{Name: "gw.b", Service: "apigw", Bytes: 512, MemoryMB: 512})
	kv := p.AddInstance(placement.Instance{Name: "kvs", Service: "kvs", RPS: 2e5, Bytes: 512, MemoryMB: 1024})
	sql := p.AddInstance(placement.Instance{Name: "sql", Service: "sql", RPS: 1e5, Bytes: 512, MemoryMB: 2048, NonMigratable: true})
	p.AddEdge(src, kv, 2e5, 512)
	p.AddEdge(src, sql, 1e5, 512)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWriteLPGolden writes the small problem's model and compares it with
// testdata/small.lp (go test -run Golden -update rewrites it after a
// deliberate change; read the diff).
func TestWriteLPGolden(t *testing.T) {
	m, err := ilp.Build(small(t), ilp.Weights{}, false)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteLP(&buf); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/small.lp"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := buf.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s:%d differs:\n got  %q\n want %q", golden, i+1, g, w)
			}
		}
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if len(line) > 100 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	b, c, r := m.Size()
	t.Logf("%d binaries, %d continuous, %d rows", b, c, r)
}

// TestModelShape checks what the small model must contain: SQL has no
// SmartNIC variable, the busy SmartNIC has port rows and the idle one
// none, the busy host a CPU and a utilisation row and the idle one none,
// the full SmartNIC a memory row, both replicas of the source share
// fault-domain rows, the rack and host-link hop terms are there.
func TestModelShape(t *testing.T) {
	m, err := ilp.Build(small(t), ilp.Weights{}, false)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteLP(&buf); err != nil {
		t.Fatal(err)
	}
	lp := buf.String()
	for _, want := range []string{" x_3_0", " x_3_2", " cpu_0:", " util_0:", " mem_3:", " tx_1:", " rx_1:", " cvt_0_0:", " fd_0_1_0:", " fd_0_1_1:", " hr_0_0:", " cta_0_0:", " ctb_0_2:", " colo:", "\nBinaries\n"} {
		if !strings.Contains(lp, want) {
			t.Errorf("model lacks %q", want)
		}
	}
	for _, bad := range []string{" x_3_1", " x_3_3", " tx_3:", " rx_3:", " cpu_2:", " util_2:", " mem_1:"} {
		if strings.Contains(lp, bad) {
			t.Errorf("model has %q", bad)
		}
	}
	if m.Elastic() || len(m.Unplaceable()) != 0 {
		t.Errorf("elastic %v, unplaceable %v", m.Elastic(), m.Unplaceable())
	}
}
