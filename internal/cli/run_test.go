package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
)

// TestRunAllApps runs `e3 run` for every built-in application on
// 3xType1-SmartNIC with the 3xBeefy baseline, short measurements, and
// checks that both clusters report in JSON with the documented keys and
// sane figures.
func TestRunAllApps(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates 16 clusters")
	}
	if raceEnabled {
		t.Skip("the race detector slows the emulation several times over; CI runs this test without -race")
	}
	for _, name := range app.BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run([]string{"run", name, "--cluster", "3xType1-SmartNIC", "--duration", "100ms", "--json"}, &out, &errb)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var doc map[string]any
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			base, ok := doc["baseline"].(map[string]any)
			if !ok {
				t.Fatalf("no baseline: %s", out.String())
			}
			for _, r := range []map[string]any{doc, base} {
				for _, k := range []string{"app", "cluster", "on_smartnic", "on_host", "throughput_rps", "latency_avg_us", "latency_p99_us", "power_w", "rpj"} {
					if _, ok := r[k]; !ok {
						t.Errorf("%s: key %q missing", r["cluster"], k)
					}
				}
				if r["throughput_rps"].(float64) <= 0 || r["latency_avg_us"].(float64) <= 0 || r["power_w"].(float64) <= 0 || r["rpj"].(float64) <= 0 {
					t.Errorf("%s: figures %v", r["cluster"], r)
				}
				if e, _ := r["error_rate"].(float64); e > 0.01 {
					t.Errorf("%s: %.1f%% of requests failed: %v", r["cluster"], 100*e, r["first_error"])
				}
				if r["latency_p99_us"].(float64) < r["latency_avg_us"].(float64)*0.5 {
					t.Errorf("%s: p99 %v below the average %v", r["cluster"], r["latency_p99_us"], r["latency_avg_us"])
				}
			}
			if doc["cluster"] != "3xType1-SmartNIC" || base["cluster"] != "3xBeefy" || base["on_smartnic"].(float64) != 0 {
				t.Errorf("clusters %v / %v, SmartNIC instances on the baseline %v", doc["cluster"], base["cluster"], base["on_smartnic"])
			}
			t.Logf("%s: %.0f vs %.0f req/s, %.1f vs %.1f req/J", name, doc["throughput_rps"], base["throughput_rps"], doc["rpj"], base["rpj"])
		})
	}
}

// TestRunText checks the human-readable output of one short run without a
// baseline, and flag errors.
func TestRunText(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates a cluster")
	}
	var out, errb bytes.Buffer
	code := Run([]string{"run", "nfv-din", "--baseline", "none", "--duration", "100ms", "--dilation", "200"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"NFV-DIN on 3xType1-SmartNIC", "instances on SmartNICs", "D=200", "throughput (req/s)", "modelled"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "ratio") {
		t.Errorf("ratio printed without a baseline:\n%s", s)
	}
}

func TestRunFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "iot-ts", "--dilation", "0.5"},
		{"run", "iot-ts", "--duration", "0s"},
		{"run", "no-such-app"},
		{"run", "iot-ts", "--cluster", "7xNothing"},
	} {
		var out, errb bytes.Buffer
		if code := Run(args, &out, &errb); code == 0 {
			t.Errorf("%v: exit 0", args)
		} else if errb.Len() == 0 {
			t.Errorf("%v: no error message", args)
		}
	}
}
