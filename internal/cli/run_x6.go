package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/cluster"
	"github.com/e3-platform/e3/experiments"
)

// runX6 is `e3 run APP --x6`: experiment X6 on the emulated cluster.
// With out set, the report is also written, as JSON, to
// out/X6-emulated-APP.json.
func runX6(cmd *cobra.Command, a *app.App, clusterName string, seed uint64, dilation float64, mode cluster.StateMode, maxReal time.Duration, asJSON bool, out string) error {
	rep, err := cluster.RunX6(cmd.Context(), cluster.X6Config{App: a, Cluster: clusterName, Seed: seed, Dilation: dilation,
		State: mode, MaxReal: maxReal, Progress: func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }})
	if err != nil {
		return err
	}
	if out != "" {
		var buf bytes.Buffer
		if err := writeJSON(&buf, rep); err != nil {
			return err
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		name := filepath.Join(out, experiments.EmulatedX6File(rep.App))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", name)
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return printX6(cmd.OutOrStdout(), rep)
}

func printX6(w io.Writer, r *cluster.X6Report) error {
	fmt.Fprintf(w, "X6 %s on %s: %d of %d primaries packed on SmartNICs by memory; open load %.0f req/s (the simulator's knee of HCM's placement); state %s; D=%g; %.0f ms warm-up, %.0f ms measured (emulated)\n\n",
		r.App, r.Cluster, r.OnSmartNIC, r.Primaries, r.OfferedRPS, r.State, r.Dilation, r.WarmupMs, r.WindowMs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "orchestrator\tthroughput (req/s)\tavg latency (µs)\tp99 latency (µs)\tpower (W, modelled)\tenergy efficiency (req/J)\terrors\tmigrations\t")
	for _, run := range r.Runs {
		on := "off"
		if run.Orchestrator {
			on = "on"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f%%\t%d\t\n", on, run.ThroughputRPS, run.AvgUs, run.P99Us, run.PowerW, run.RPJ, 100*run.ErrorRate, len(run.Moves))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, run := range r.Runs {
		if len(run.Moves) == 0 {
			continue
		}
		fmt.Fprintln(w, "\nmigrations the orchestrator ordered:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  at (ms)\tinstance\tfrom\tto\tcause\toutcome\tduration (ms)\tpause (ms)\tdrain (ms)\tship (ms)\theld\tstate (bytes)")
		for _, m := range run.Moves {
			out := "called off: " + m.Reason
			if m.Committed {
				out = "committed"
			}
			fmt.Fprintf(tw, "  %.0f\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\n", m.AtMs, m.Instance, m.From, m.To, m.Cause, out, m.DurationMs, m.PauseMs, m.DrainMs, m.ShipMs, m.Held, m.Bytes)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, strings.TrimSpace(`
All figures are in emulated time over the measured window; power is modelled.`))
	return nil
}
