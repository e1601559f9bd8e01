package experiments

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/sim"
)

// emulatedSample is an X6 report as `e3 run IOT-TS --x6 --json` writes it,
// cut to one migration.
const emulatedSample = `{
  "app": "IOT-TS", "cluster": "3xType1-SmartNIC", "state": "disk",
  "offered_rps": 38686.4, "primaries_on_smartnic": 42, "primaries": 54,
  "dilation": 32, "warmup_ms": 1500, "window_ms": 500,
  "runs": [
    {"orchestrator": false, "throughput_rps": 26268, "power_w": 367.3, "rpj": 71.5,
     "latency_avg_us": 641221.6, "latency_p99_us": 903348.2, "completed": 77179, "error_rate": 0,
     "migrations": null, "late_fraction": 0.47, "real_seconds": 86.5},
    {"orchestrator": true, "throughput_rps": 38642, "power_w": 617.5, "rpj": 62.6,
     "latency_avg_us": 135607.9, "latency_p99_us": 266600.4, "completed": 77179, "error_rate": 0,
     "migrations": [{"at_ms": 250.06, "instance": "recommend.9", "service": "recommend", "from": "r0/s0/nic0",
       "to": "r0/s0/host", "cause": "starvation", "committed": true, "duration_ms": 22.19, "pause_ms": 18.47,
       "drain_ms": 0.55, "ship_ms": 17.91, "held": 84, "state_bytes": 4379319}],
     "late_fraction": 0.46, "real_seconds": 70.5}
  ]
}`

func TestLoadEmulatedX6(t *testing.T) {
	dir := t.TempDir()
	if reps, err := LoadEmulatedX6(filepath.Join(dir, "missing")); err != nil || len(reps) != 0 {
		t.Fatalf("missing directory: %v, %v; want no reports and no error", reps, err)
	}
	if err := os.WriteFile(filepath.Join(dir, EmulatedX6File("IOT-TS")), []byte(emulatedSample), 0o644); err != nil {
		t.Fatal(err)
	}
	reps, err := LoadEmulatedX6(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].App != "IOT-TS" || len(reps[0].Runs) != 2 || len(reps[0].Runs[1].Moves) != 1 ||
		reps[0].Runs[1].Moves[0].Bytes != 4379319 {
		t.Fatalf("decoded %+v", reps)
	}

	// A report section with the simulator's figures beside the emulated ones.
	sr := &x6Result{apps: []string{"IOT-TS"}, offered: []float64{39500}, onNIC: []int{42}, primaries: []int{54},
		pts:   [][3]point{{{}, {Throughput: 30390, PowerW: 369.3, RPJ: 82.3, Mean: 814 * time.Millisecond}, {Throughput: 41590, PowerW: 635.3, RPJ: 65.5}}},
		moved: [][]sim.Migration{nil}, same: []bool{false}}
	var b bytes.Buffer
	if err := writeEmulatedX6(&b, reps, sr, func(s string) string { return "results/" + s }); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## X6 on the emulated cluster",
		"| IOT-TS | 38.69 | 42 of 54 | emulated | off | 26.27 | 367.3 | 71.50 | 641222 | 903348 | 0.00 % | 0 | 32 | 500.0 | 47 % |",
		"| IOT-TS | 39.50 | 42 of 54 | simulated | off | 30.39 | 369.3 | 82.30 | 814000 |",
		"| IOT-TS | 250.1 | recommend.9 | r0/s0/nic0 | r0/s0/host | starvation | committed | 22.19 |",
		"[X6-emulated-IOT-TS.json](results/X6-emulated-IOT-TS.json)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("section lacks %q:\n%s", want, out)
		}
	}

	// A file that is not a report is named in the error.
	bad := filepath.Join(dir, EmulatedX6File("BAD"))
	if err := os.WriteFile(bad, []byte(`{"app": "X", "runs": [], "extra": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEmulatedX6(dir); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: error %v, want one naming %s", err, bad)
	}
}

// FuzzLoadEmulatedX6 feeds arbitrary file contents to the loader: an
// error or a report with an application and runs, never a panic.
func FuzzLoadEmulatedX6(f *testing.F) {
	f.Add([]byte(emulatedSample))
	f.Add([]byte(`{"app": "A", "runs": [{}]}`))
	f.Add([]byte(`{"runs": null}`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	name := filepath.Join(dir, EmulatedX6File("F"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		reps, err := LoadEmulatedX6(dir)
		if err != nil {
			return
		}
		for _, r := range reps {
			if r.App == "" || len(r.Runs) == 0 {
				t.Fatalf("accepted a report without application or runs: %+v", r)
			}
		}
		var b bytes.Buffer
		if err := writeEmulatedX6(&b, reps, nil, func(s string) string { return s }); err != nil {
			t.Fatal(err)
		}
	})
}
