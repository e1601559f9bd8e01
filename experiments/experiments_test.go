package experiments

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// quickRuns runs every experiment once at the quick scale, for the tests
// that look at results; the first test to need it pays for it.
var quickRuns = sync.OnceValues(func() (map[string][]File, error) {
	out := map[string][]File{}
	for _, e := range All() {
		r, err := e.Run(Options{Seed: 1, Quick: true})
		if err != nil {
			return nil, err
		}
		files, err := Files(e, r)
		if err != nil {
			return nil, err
		}
		out[e.ID] = files
	}
	return out, nil
})

func quick(t *testing.T) map[string][]File {
	t.Helper()
	runs, err := quickRuns()
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func file(t *testing.T, files []File, name string) []byte {
	t.Helper()
	for _, f := range files {
		if f.Name == name {
			return f.Data
		}
	}
	t.Fatalf("no file %s among %d", name, len(files))
	return nil
}

func TestRegistry(t *testing.T) {
	all := All()
	if len(all) != 12 {
		t.Fatalf("%d experiments, want X1..X12", len(all))
	}
	for i, e := range all {
		if want := "X" + itoa(i+1); e.ID != want {
			t.Errorf("experiment %d is %s, want %s", i, e.ID, want)
		}
		if e.Title == "" || e.Paper == "" || e.Workload == "" || e.Measure == "" || len(e.Derivation) < 200 || e.Run == nil {
			t.Errorf("%s: incomplete definition", e.ID)
		}
	}
	if e, err := ByID("x4"); err != nil || e.ID != "X4" {
		t.Errorf("ByID(x4) = %v, %v", e, err)
	}
	if _, err := ByID("X13"); err == nil || !strings.Contains(err.Error(), "X12") {
		t.Errorf("ByID(X13) error %v, want one listing the known IDs", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestQuickFiles runs every experiment at the quick scale and checks each
// renders: a CSV per table whose rows have the header's width, valid
// JSON, and a PNG and an SVG per figure.
func TestQuickFiles(t *testing.T) {
	for id, files := range quick(t) {
		var csv, png, svg, js int
		for _, f := range files {
			switch {
			case strings.HasSuffix(f.Name, ".csv"):
				csv++
				lines := strings.Split(strings.TrimSpace(string(f.Data)), "\n")
				if len(lines) < 2 {
					t.Errorf("%s: %s has no rows", id, f.Name)
				}
			case strings.HasSuffix(f.Name, ".png"):
				png++
				if !bytes.HasPrefix(f.Data, []byte("\x89PNG")) {
					t.Errorf("%s: %s is not a PNG", id, f.Name)
				}
			case strings.HasSuffix(f.Name, ".svg"):
				svg++
				if !bytes.Contains(f.Data[:min(len(f.Data), 512)], []byte("<svg")) {
					t.Errorf("%s: %s is not an SVG", id, f.Name)
				}
			case strings.HasSuffix(f.Name, ".json"):
				js++
				var v any
				if err := json.Unmarshal(f.Data, &v); err != nil {
					t.Errorf("%s: %s: %v", id, f.Name, err)
				}
			}
		}
		if csv == 0 || png == 0 || png != svg || js != 1 {
			t.Errorf("%s: %d CSV, %d PNG, %d SVG, %d JSON files", id, csv, png, svg, js)
		}
	}
}

// TestDeterministic runs the modelled experiments a second time and
// compares every file byte for byte with the first run: the same seed
// gives the same output. X10 and X11 measure wall time and are left out;
// their quick runs are checked for shape elsewhere.
func TestDeterministic(t *testing.T) {
	first := quick(t)
	for _, id := range []string{"X3", "X4", "X6", "X9"} {
		e, err := ByID(id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Run(Options{Seed: 1, Quick: true, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		files, err := Files(e, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(first[id]) {
			t.Fatalf("%s: %d files, first run %d", id, len(files), len(first[id]))
		}
		for k, f := range files {
			if f.Name != first[id][k].Name || !bytes.Equal(f.Data, first[id][k].Data) {
				t.Errorf("%s: %s differs between two runs with seed 1", id, f.Name)
			}
		}
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJSONShapes(t *testing.T) {
	runs := quick(t)
	num := func(where string, v any) float64 {
		t.Helper()
		f, ok := v.(float64)
		if !ok {
			t.Errorf("%s = %v (%T), want a number", where, v, v)
		}
		return f
	}
	// X9: application -> cluster -> krpj and cost efficiency by year.
	x9 := decode(t, file(t, runs["X9"], "X9.json"))
	for _, a := range []string{"NFV-FIN"} {
		clusters, ok := x9[a].(map[string]any)
		if !ok {
			t.Fatalf("X9 JSON has no object for %s: %v", a, x9)
		}
		for _, c := range []string{"4xBeefy", "2xType2-SmartNIC"} {
			cell, ok := clusters[c].(map[string]any)
			if !ok {
				t.Fatalf("X9 JSON %s has no %s", a, c)
			}
			if k := num(a+"/"+c+"/krpj", cell["krpj"]); !(k > 0) {
				t.Errorf("X9 %s/%s krpj = %v", a, c, k)
			}
			ce := cell["cost_efficiency_requests_per_usd_by_year"].(map[string]any)
			if num("year 0", ce["0"]) != 0 || !(num("year 5", ce["5"]) > num("year 1", ce["1"])) {
				t.Errorf("X9 %s/%s cost efficiency %v: want 0 at year 0, growing", a, c, ce)
			}
		}
	}
	// X4: application -> the three ratios, Type1-SmartNIC over Beefy.
	x4 := decode(t, file(t, runs["X4"], "X4.json"))
	for _, a := range []string{"NFV-FIN", "IOT-TS"} {
		v := x4[a].(map[string]any)
		b := v["3xBeefy"].(map[string]any)
		s := v["3xType1-SmartNIC"].(map[string]any)
		want := num("s rpj", s["rpj"]) / num("b rpj", b["rpj"])
		if got := num(a+" rpj_ratio", v["rpj_ratio"]); !near(got, want) {
			t.Errorf("X4 %s rpj_ratio = %v, want %v", a, got, want)
		}
		want = num("s avg", s["latency_avg_us"]) / num("b avg", b["latency_avg_us"])
		if got := num(a+" latency_avg_ratio", v["latency_avg_ratio"]); !near(got, want) {
			t.Errorf("X4 %s latency_avg_ratio = %v, want %v", a, got, want)
		}
		want = num("s p99", s["latency_p99_us"]) / num("b p99", b["latency_p99_us"])
		if got := num(a+" latency_p99_ratio", v["latency_p99_ratio"]); !near(got, want) {
			t.Errorf("X4 %s latency_p99_ratio = %v, want %v", a, got, want)
		}
	}
	// X10: algorithms -> algorithm -> servers -> per-microservice time.
	x10 := decode(t, file(t, runs["X10"], "X10.json"))
	algos := x10["algorithms"].(map[string]any)
	for _, a := range []string{"hcm", "annealing"} {
		for _, s := range []string{"100", "200"} {
			v := algos[a].(map[string]any)[s].(map[string]any)
			if !(num(a+"/"+s, v["per_microservice_ms"]) > 0) {
				t.Errorf("X10 %s at %s servers: %v", a, s, v)
			}
		}
	}
}

// near compares figures rounded to six significant digits in JSON.
func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-4*max(a, b, -a, -b)
}

// TestOrchestratorActs checks X6's quick run: IOT-TS packed by memory
// starves its hosts, and the orchestrator moves work from SmartNICs to
// hosts for that reason.
func TestOrchestratorActs(t *testing.T) {
	x6 := decode(t, file(t, quick(t)["X6"], "X6.json"))
	v := x6["IOT-TS"].(map[string]any)
	migs := v["migrations"].([]any)
	if len(migs) == 0 {
		t.Fatalf("no migration for IOT-TS packed on SmartNICs: %v", v)
	}
	for _, m := range migs {
		m := m.(map[string]any)
		from, to := m["from"].(string), m["to"].(string)
		if !strings.Contains(from, "/nic") || !strings.HasSuffix(to, "/host") || m["cause"] != "starvation" {
			t.Errorf("migration %v: want starvation, SmartNIC to host", m)
		}
	}
	packed := v["packed_orchestrator"].(map[string]any)
	if !(packed["throughput_rps"].(float64) > 0) {
		t.Errorf("IOT-TS with the orchestrator: %v", packed)
	}
}

// TestPowerFollowsLoad checks X5's quick run: power rises with load.
func TestPowerFollowsLoad(t *testing.T) {
	x5 := decode(t, file(t, quick(t)["X5"], "X5.json"))
	lv := x5["NFV-FIN"].(map[string]any)["levels"].(map[string]any)
	prev := 0.0
	for _, k := range []string{"0", "50", "100"} {
		p := lv[k].(map[string]any)["power_over_idle"].(float64)
		if !(p > prev) || (k == "0" && p != 1) {
			t.Errorf("power/idle at %s %% = %v after %v", k, p, prev)
		}
		prev = p
	}
}
