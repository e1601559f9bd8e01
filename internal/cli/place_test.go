package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runPlace(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(append([]string{"place"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestPlaceJSON places IOT-TS and checks the JSON document: one
// assignment per instance with its node, kind and level; metrics; the
// elapsed time; no violations.
func TestPlaceJSON(t *testing.T) {
	out, errs, code := runPlace(t, "iot-ts", "--cluster", "3xType1-SmartNIC", "--algo", "hcm", "--load", "20000", "--seed", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		App         string
		Algo        string
		Seed        uint64
		OfferedRPS  float64 `json:"offered_rps"`
		Assignments []map[string]*string
		Unplaced    []map[string]any
		Metrics     map[string]float64
		Violations  []string
		ElapsedMs   *float64 `json:"elapsed_ms"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.App != "IOT-TS" || doc.Algo != "hcm" || doc.Seed != 3 || doc.OfferedRPS != 20000 {
		t.Errorf("header %+v", doc)
	}
	if len(doc.Assignments) != 108 {
		t.Fatalf("%d assignments, want IOT-TS's 108 instances", len(doc.Assignments))
	}
	levels := 0
	for _, a := range doc.Assignments {
		for _, k := range []string{"instance", "node", "kind", "level"} {
			if _, ok := a[k]; !ok {
				t.Fatalf("assignment %v lacks %q", a, k)
			}
		}
		if a["node"] == nil || (*a["kind"] != "host" && *a["kind"] != "smartnic") {
			t.Errorf("assignment %v", a)
		}
		if strings.HasPrefix(*a["instance"], "sql.") && *a["kind"] != "host" {
			t.Errorf("%s on a %s", *a["instance"], *a["kind"])
		}
		if a["level"] != nil {
			levels++
		}
	}
	if levels != 108-6 {
		t.Errorf("%d instances with a level, want all but the 6 API gateways (the sources)", levels)
	}
	if doc.Metrics["placed"] != 108 || doc.Metrics["power_w"] <= doc.Metrics["idle_w"] || doc.Metrics["requests_per_joule"] <= 0 {
		t.Errorf("metrics %v", doc.Metrics)
	}
	if doc.ElapsedMs == nil || *doc.ElapsedMs <= 0 || len(doc.Violations) != 0 || len(doc.Unplaced) != 0 {
		t.Errorf("elapsed %v, violations %v, unplaced %v", doc.ElapsedMs, doc.Violations, doc.Unplaced)
	}
}

// TestPlaceText checks the table and the explanations of the text form,
// and the report of what does not fit.
func TestPlaceText(t *testing.T) {
	out, errs, code := runPlace(t, "nfv-fin", "--explain")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"NFV-FIN on 3xType1-SmartNIC by hcm at 10000 requests/s (dry run)",
		"INSTANCE", "flowmon.0.b1", "rack-smartnic",
		"placed 72", "requests/J", "explanations:", "by best-fit at level",
		"fault-domain eliminated",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	out, errs, code = runPlace(t, "rta-sf", "--load", "1e7", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Unplaced []struct{ Instance, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Unplaced) == 0 || !strings.Contains(doc.Unplaced[0].Reason, "free") {
		t.Errorf("RTA-SF at 10M requests/s on three servers: unplaced %+v", doc.Unplaced)
	}
}

func TestPlaceErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `no built-in application or file "nope"`},
		{[]string{"iot-ts", "--cluster", "3xToaster"}, `--cluster: hwmodel: unknown cluster "3xToaster"`},
		{[]string{"iot-ts", "--algo", "magic"}, `--algo: placement: unknown algorithm "magic" (registered: hcm`},
		{[]string{"iot-ts", "--load", "-5"}, "--load -5: want requests/s >= 0"},
		{[]string{"scale", "--servers", "100,x"}, `--servers: "x" is not a server count`},
		{[]string{"scale", "--microservices", "0"}, "--microservices 0: want > 0"},
		{[]string{}, "accepts 1 arg(s)"},
	} {
		_, errs, code := runPlace(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("place %v: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
}

func TestPlaceCompare(t *testing.T) {
	out, errs, code := runPlace(t, "compare", "rta-shm", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []struct {
		Algo       string
		Metrics    map[string]float64
		Violations int
		Error      string
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || rows[0].Algo != "hcm" || rows[0].Metrics["placed"] != 84 || rows[0].Violations != 0 {
		t.Fatalf("rows %+v", rows)
	}
	out, _, code = runPlace(t, "compare", "rta-shm")
	if code != 0 || !strings.Contains(out, "COMM Gb/s*hops") || !strings.Contains(out, "hcm") {
		t.Errorf("text compare: %s", out)
	}
}

// TestPlaceScale runs a small X10 and checks the JSON rows.
func TestPlaceScale(t *testing.T) {
	out, errs, code := runPlace(t, "scale", "--servers", "40,80", "--microservices", "300", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []struct {
		Algo    string
		Servers int
		Placed  int
		PerMs   *float64 `json:"per_microservice_ms"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Servers != 40 || rows[1].Servers != 80 {
		t.Fatalf("rows %+v", rows)
	}
	for _, r := range rows {
		if r.Algo != "hcm" || r.Placed != 300 || r.PerMs == nil || *r.PerMs <= 0 {
			t.Errorf("row %+v", r)
		}
	}
	if errs != "" {
		t.Errorf("stderr %q: no progress bar off a terminal, no chatter with --json", errs)
	}
}
