package cli

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func runApps(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestAppsJSON checks `e3 apps --json` against Table 3, loading the
// built-ins through the real service registry.
func TestAppsJSON(t *testing.T) {
	out, errs, code := runApps(t, "apps", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []struct {
		name     string
		n        int
		services []string
	}{
		{"NFV-FIN", 72, []string{"flowmon", "ipsec", "nids"}},
		{"NFV-DIN", 60, []string{"ddos", "natv4", "nids"}},
		{"NFV-IFID", 84, []string{"ddos", "flowmon", "ipsec", "natv4"}},
		{"RTA-PTC", 60, []string{"count", "knn", "topk"}},
		{"RTA-SF", 96, []string{"bayes", "count", "kvs", "spike"}},
		{"RTA-SHM", 84, []string{"bm25", "count", "ema", "sql"}},
		{"IOT-DH", 108, []string{"apigw", "count", "knn", "kvs", "sql"}},
		{"IOT-TS", 108, []string{"apigw", "ema", "recommend", "spike", "sql"}},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d apps, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		for _, k := range []string{"name", "class", "dag_nodes", "microservices"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: key %q missing", w.name, k)
			}
		}
		if r["name"] != w.name || r["class"] != w.name[:3] || r["dag_nodes"] != float64(w.n) {
			t.Errorf("row %d = %v, want %s class %s N %d", i, r, w.name, w.name[:3], w.n)
		}
		var ms []string
		for _, m := range r["microservices"].([]any) {
			ms = append(ms, m.(string))
		}
		slices.Sort(ms)
		if !slices.Equal(ms, w.services) {
			t.Errorf("%s: microservices %v, want %v", w.name, ms, w.services)
		}
	}
}

func TestAppsText(t *testing.T) {
	out, _, code := runApps(t, "apps")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"NAME", "IOT-TS", "108", "apigw, sql, ema, spike, recommend", "NFV-FIN"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}
