package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestAppValidateBrokenSpec(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "broken.yaml")
	spec := `name: broken
class: IOT
nodes:
  gw:  {service: apigw, shards: 0}
  db:  {service: sqlite}
edges:
  - {from: gw, to: db, policy: scatter}
  - {from: db, to: gw}
`
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runApps(t, "app", "validate", file)
	if code == 0 {
		t.Fatalf("exit 0 for a broken spec; stdout %q", out)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:\d+: `)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("stderr line %q is not FILE:LINE: message", l)
		}
	}
	for _, want := range []string{
		file + ":4: nodes.gw.shards: 0 is out of range",
		file + `:5: nodes.db.service: unknown microservice "sqlite"; did you mean "sql"?`,
		file + `:7: edges[0].policy: "scatter" is not a policy`,
		file + ":7: edges[0]: cycle: gw -> db -> gw",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	t.Logf("stderr:\n%s", errs)
}

func TestAppValidateGoodSpec(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ts.yaml")
	out, _, code := runApps(t, "app", "spec", "iot-ts")
	if code != 0 {
		t.Fatalf("app spec: exit %d", code)
	}
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runApps(t, "app", "validate", file)
	if code != 0 || out != "ok\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The same file through show, as a path.
	out, errs, code = runApps(t, "app", "show", file)
	if code != 0 || !strings.Contains(out, "IOT-TS") || !strings.Contains(out, "sql[0-11]") {
		t.Fatalf("show file: exit %d, stderr %q\n%s", code, errs, out)
	}
}

func TestAppValidateMissingFile(t *testing.T) {
	_, errs, code := runApps(t, "app", "validate", filepath.Join(t.TempDir(), "nope.yaml"))
	if code == 0 || !strings.Contains(errs, "nope.yaml") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestAppShowJSON(t *testing.T) {
	out, errs, code := runApps(t, "app", "show", "IOT-TS", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var a appJSON
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if a.Name != "IOT-TS" || a.DAGNodes != 108 || len(a.Instances) != 108 || len(a.Nodes) != 5 || len(a.Edges) != 4 {
		t.Fatalf("%s: %d DAG nodes, %d instances, %d nodes, %d edges", a.Name, a.DAGNodes, len(a.Instances), len(a.Nodes), len(a.Edges))
	}
	if a.FanOut.Max != 12 || a.FanOut.Mean != 6 {
		t.Errorf("fan-out %+v, want mean 6 max 12", a.FanOut)
	}
	byID := map[string]instanceJSON{}
	for _, i := range a.Instances {
		byID[i.ID] = i
	}
	if i := byID["sql.3"]; i.FanOut != 3 || strings.Join(i.SendsTo, " ") != "ema.3 spike.3 recommend.3" {
		t.Errorf("sql.3: %+v", i)
	}
	if b := byID["sql.3.b1"]; b.Primary != "sql.3" || b.Replica != 1 || len(b.SendsTo) != 0 || b.Rate != 0 {
		t.Errorf("sql.3.b1: %+v", b)
	}
	e := a.Edges[0]
	if e.From != "apigw" || e.To != "sql" || e.Policy.String() != "key_hash" || e.Share != 1 || e.Links != 72 || e.FanOut != 12 {
		t.Errorf("edge 0: %+v", e)
	}
	if !strings.Contains(out, `"policy": "key_hash"`) || !strings.Contains(out, `"pin": "host"`) {
		t.Errorf("JSON should spell policies and pins as in the spec")
	}
}

func TestAppShowUnknown(t *testing.T) {
	_, errs, code := runApps(t, "app", "show", "IOT-XX")
	if code == 0 || !strings.Contains(errs, "IOT-TS") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestAppShowEveryBuiltin(t *testing.T) {
	for _, n := range []string{"nfv-fin", "nfv-din", "nfv-ifid", "rta-ptc", "rta-sf", "rta-shm", "iot-dh", "iot-ts"} {
		out, errs, code := runApps(t, "app", "show", n)
		if code != 0 || !strings.Contains(out, "INSTANCES") {
			t.Errorf("%s: exit %d, stderr %q", n, code, errs)
		}
	}
}
