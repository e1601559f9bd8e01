package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e3-platform/e3/cluster"
)

// X6 on the emulated cluster. `e3 sim X6` answers the question at scale
// in a few seconds; `e3 run APP --x6` (cluster.RunX6) answers it with the
// real agents, services and cold migrations, in real time with a dilated
// clock, which takes minutes per application. So the emulated runs are
// not part of `e3 sim all`: `e3 run all --x6 --out DIR` writes one
// X6-emulated-APP.json per application, and `e3 sim all --out DIR` puts
// what it finds there into RESULTS.md beside the simulator's figures.

// EmulatedX6File is the name of the file `e3 run APP --x6 --out DIR`
// writes for application app.
func EmulatedX6File(app string) string { return "X6-emulated-" + app + ".json" }

// LoadEmulatedX6 reads every X6-emulated-*.json in dir, in file-name
// order. A missing directory is no reports; a file that does not decode
// is an error naming it.
func LoadEmulatedX6(dir string) ([]*cluster.X6Report, error) {
	names, err := filepath.Glob(filepath.Join(dir, EmulatedX6File("*")))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []*cluster.X6Report
	for _, name := range names {
		b, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r cluster.X6Report
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if r.App == "" || len(r.Runs) == 0 {
			return nil, fmt.Errorf("%s: no application or no runs: not written by `e3 run APP --x6 --json`", name)
		}
		out = append(out, &r)
	}
	return out, nil
}

// writeEmulatedX6 writes the section of RESULTS.md on X6 in the emulated
// cluster: for each report, its two runs beside the simulator's packed
// runs of the same application (sim, nil if X6 did not run), then every
// migration carried out.
func writeEmulatedX6(b *bytes.Buffer, reps []*cluster.X6Report, sim *x6Result, link func(string) string) error {
	if len(reps) == 0 {
		return nil
	}
	b.WriteString("## X6 on the emulated cluster\n\n")
	b.WriteString("The same experiment as X6, run by `e3 run APP --x6` (package cluster, `RunX6`): the real node agents and microservices " +
		"on an emulated 3xType1-SmartNIC cluster, in real time with a dilated clock (docs/runtime.md). The instances are packed on SmartNICs " +
		"by memory as in the simulator, the simulator's knee load of HCM's placement is offered open-loop (Poisson), and the run is repeated " +
		"with the controller's data-plane orchestrator on, fed by the agents' heartbeats; its decisions are carried out as real cold migrations " +
		"of running instances with their durable state (snapshot and log shipped, routes switched at a new epoch). Warm-up and window are " +
		"emulated time, shrunk in proportion where the dilation would make a run longer than `--x6-max-real`. The emulated runs take minutes " +
		"per application, so they are not part of `e3 sim all`: ")
	b.WriteString("`e3 run all --x6 --out docs/results` wrote the files below, and `e3 sim all` copies them in. Power is modelled from busy " +
		"cores, as in the simulator; *late* is the share of messages this machine released more than 5 µs of emulated time after their due " +
		"time (it shifts their order, not the timestamps the figures come from, docs/runtime.md).\n\n")
	t := Table{Columns: []string{"app", "offered K RPS", "primaries on SmartNICs", "engine", "orchestrator", "throughput K RPS", "power W", "RPJ", "avg µs", "p99 µs", "errors", "migrations", "D", "window ms", "late"}}
	for _, r := range reps {
		sidx := -1
		if sim != nil {
			sidx = slices.Index(sim.apps, r.App)
		}
		for _, run := range r.Runs {
			on := "off"
			if run.Orchestrator {
				on = "on"
			}
			t.add(r.App, r.OfferedRPS/1e3, fmt.Sprintf("%d of %d", r.OnSmartNIC, r.Primaries), "emulated", on,
				run.ThroughputRPS/1e3, run.PowerW, run.RPJ, run.AvgUs, run.P99Us,
				fmt.Sprintf("%.2f %%", 100*run.ErrorRate), fmt.Sprint(len(run.Moves)), fmt.Sprint(r.Dilation), r.WindowMs,
				fmt.Sprintf("%.0f %%", 100*run.LateFraction))
		}
		if sidx >= 0 {
			for k, on := range []string{"off", "on"} {
				p := sim.pts[sidx][1+k]
				mig := "0"
				if k == 1 {
					mig = fmt.Sprint(len(sim.moved[sidx]))
				}
				t.add(r.App, sim.offered[sidx]/1e3, fmt.Sprintf("%d of %d", sim.onNIC[sidx], sim.primaries[sidx]), "simulated", on,
					p.Throughput/1e3, p.PowerW, p.RPJ, us(p.Mean), us(p.P99), "", mig, "", float64(x6Window.Milliseconds()), "")
			}
		}
	}
	if err := t.WriteMarkdown(b); err != nil {
		return err
	}
	b.WriteString("\n")
	m := Table{Columns: []string{"app", "at ms", "instance", "from", "to", "cause", "outcome", "duration ms", "source paused ms", "drain ms", "ship ms", "held messages", "state bytes"}}
	for _, r := range reps {
		for _, run := range r.Runs {
			for _, mv := range run.Moves {
				out := "committed"
				if !mv.Committed {
					out = "called off: " + mv.Reason
				}
				m.add(r.App, mv.AtMs, mv.Instance, mv.From, mv.To, mv.Cause, out, mv.DurationMs, mv.PauseMs, mv.DrainMs, mv.ShipMs, mv.Held, mv.Bytes)
			}
		}
	}
	if len(m.Rows) > 0 {
		b.WriteString("Migrations carried out in the emulated runs with the orchestrator on (emulated times):\n\n")
		if err := m.WriteMarkdown(b); err != nil {
			return err
		}
		b.WriteString("\n")
	}
	var names []string
	for _, r := range reps {
		f := EmulatedX6File(r.App)
		names = append(names, fmt.Sprintf("[%s](%s)", f, link(f)))
	}
	fmt.Fprintf(b, "Files: %s.\n\n", strings.Join(names, ", "))
	return nil
}
