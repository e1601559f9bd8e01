package app_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
)

// table3 is the paper's Table 3: DAG node count N (all instances, backups
// included) and microservices of each application.
var table3 = map[string]struct {
	n        int
	services []string
}{
	"NFV-FIN":  {72, []string{"flowmon", "ipsec", "nids"}},
	"NFV-DIN":  {60, []string{"ddos", "natv4", "nids"}},
	"NFV-IFID": {84, []string{"natv4", "flowmon", "ipsec", "ddos"}},
	"RTA-PTC":  {60, []string{"count", "topk", "knn"}},
	"RTA-SF":   {96, []string{"spike", "count", "kvs", "bayes"}},
	"RTA-SHM":  {84, []string{"count", "ema", "sql", "bm25"}},
	"IOT-DH":   {108, []string{"apigw", "count", "knn", "kvs", "sql"}},
	"IOT-TS":   {108, []string{"apigw", "ema", "spike", "recommend", "sql"}},
}

func TestBuiltinsMatchTable3(t *testing.T) {
	cat := testCatalog()
	names := app.BuiltinNames()
	if len(names) != 8 {
		t.Fatalf("%d built-ins, want 8", len(names))
	}
	for _, name := range names {
		want, ok := table3[name]
		if !ok {
			t.Errorf("built-in %s is not in Table 3", name)
			continue
		}
		a, err := app.Builtin(name, cat)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if a.Name != name {
			t.Errorf("%s: spec is named %q", name, a.Name)
		}
		if !strings.HasPrefix(name, string(a.Class)+"-") {
			t.Errorf("%s: class %s", name, a.Class)
		}
		if got := len(a.Instances()); got != want.n {
			t.Errorf("%s: %d DAG nodes, Table 3 says %d", name, got, want.n)
		}
		got := a.Services()
		slices.Sort(got)
		ws := slices.Clone(want.services)
		slices.Sort(ws)
		if !slices.Equal(got, ws) {
			t.Errorf("%s: microservices %v, Table 3 says %v", name, got, ws)
		}
	}
}

func TestIOTTSIsFigure1(t *testing.T) {
	a, err := app.Builtin("iot-ts", testCatalog())
	if err != nil {
		t.Fatal(err)
	}
	shards := map[string]int{}
	for _, n := range a.Nodes() {
		shards[n.Service] = n.Shards
		if n.Backups != 1 {
			t.Errorf("%s has %d backups, the paper says one", n.Name, n.Backups)
		}
	}
	want := map[string]int{"apigw": 6, "sql": 12, "ema": 12, "spike": 12, "recommend": 12}
	for s, w := range want {
		if shards[s] != w {
			t.Errorf("%s: %d shards, want %d", s, shards[s], w)
		}
	}
	var edges []string
	for _, e := range a.Edges() {
		edges = append(edges, e.String())
	}
	wantEdges := []string{"apigw->sql", "sql->ema", "sql->spike", "sql->recommend"}
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("edges %v, want %v", edges, wantEdges)
	}
	if src := a.Sources(); len(src) != 1 || src[0].Name != "apigw" {
		t.Errorf("sources %v, want apigw", src)
	}
	sql, _ := a.Node("sql")
	if sql.Pin != app.PinHost {
		t.Errorf("sql pinned to %s, want host", sql.Pin)
	}
}

// TestBuiltinFanOut checks the wiring against the paper's statement that
// node fan-out averages 6 and peaks at 12 across the applications.
func TestBuiltinFanOut(t *testing.T) {
	cat := testCatalog()
	total, senders, maxF := 0.0, 0, 0
	for _, name := range app.BuiltinNames() {
		a, err := app.Builtin(name, cat)
		if err != nil {
			t.Fatal(err)
		}
		f := a.FanOut()
		var per []string
		for _, n := range a.Nodes() {
			per = append(per, n.Name+":"+strconv.Itoa(n.Primary(0).FanOut()))
		}
		t.Logf("%-9s fan-out mean %.2f max %2d over %2d senders  (%s)", name, f.Mean, f.Max, f.Senders, strings.Join(per, " "))
		total += f.Mean * float64(f.Senders)
		senders += f.Senders
		maxF = max(maxF, f.Max)
	}
	mean := total / float64(senders)
	t.Logf("all applications: mean fan-out %.2f, max %d", mean, maxF)
	if maxF != 12 {
		t.Errorf("max fan-out %d, the paper says 12", maxF)
	}
	if mean < 5.5 || mean > 6.5 {
		t.Errorf("mean fan-out %.2f, the paper says 6", mean)
	}
}

func TestBuiltinLookupIgnoresCase(t *testing.T) {
	cat := testCatalog()
	for _, n := range []string{"iot-ts", "IOT-TS", "Iot-Ts"} {
		a, err := app.Builtin(n, cat)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if a.Name != "IOT-TS" {
			t.Errorf("%s loaded %s", n, a.Name)
		}
		if !app.IsBuiltin(n) {
			t.Errorf("IsBuiltin(%q) = false", n)
		}
	}
	if _, err := app.Builtin("iot-tx", cat); err == nil || !strings.Contains(err.Error(), "IOT-TS") {
		t.Errorf("unknown built-in: err = %v, want one listing the built-ins", err)
	}
	file, data, err := app.BuiltinSpec("nfv-fin")
	if err != nil || file != "builtin/nfv-fin.yaml" || !strings.Contains(string(data), "name: NFV-FIN") {
		t.Errorf("BuiltinSpec = %q, %d bytes, %v", file, len(data), err)
	}
}
