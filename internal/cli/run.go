package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/cluster"
	"github.com/e3-platform/e3/services"
)

func init() { subcommands = append(subcommands, newRunCmd) }

// runJSON is the --json form of `e3 run`: the application on the cluster,
// and the same figures on the baseline cluster.
type runJSON struct {
	*cluster.Report
	Baseline *cluster.Report `json:"baseline,omitempty"`
	// Ratios of the cluster over the baseline.
	Ratios *runRatios `json:"ratios,omitempty"`
}

type runRatios struct {
	Throughput float64 `json:"throughput"`
	LatencyAvg float64 `json:"latency_avg"`
	LatencyP99 float64 `json:"latency_p99"`
	Power      float64 `json:"power"`
	RPJ        float64 `json:"rpj"`
}

func newRunCmd() *cobra.Command {
	var (
		clusterName, baseline, algo string
		step                        time.Duration
		dilation                    float64
		asJSON                      bool
		seed                        uint64
		state, orch                 string
		x6                          bool
		x6Real                      time.Duration
		x6Out                       string
	)
	cmd := &cobra.Command{
		Use:   "run APP|FILE|all",
		Short: "Run an application on an emulated cluster and report requests per joule against latency",
		Long: `Runs a built-in application (see 'e3 apps') or a spec file on an emulated
cluster of Table 4: one node agent per compute node on its own loopback
address, the application placed by --algo at the highest load that places,
and a closed-loop client whose load a knee search raises until throughput
stops rising. It prints the placement (instances on SmartNICs and on hosts),
the peak throughput, the average and p99 latency there, the modelled power
and the energy efficiency (requests per joule), then the same for the
baseline cluster and the ratios.

Hardware is emulated: each message holds an emulated core for the service
time Table 1 gives its microservice on that core, and PCIe, NIC port and
switch latencies are those of the simulator. Time is dilated by a factor D
(chosen from this machine's cores and the application's measured cost, or
--dilation), and every figure is in emulated time. Power is modelled from
busy cores with the Table 4 envelopes.

--duration is the wall-clock length of each knee-search measurement.

With --x6 it runs experiment X6 instead (SmartNICs packed by memory, the
data-plane orchestrator off then on, its migrations carried out with
state); APP may then be 'all', and --out DIR keeps each report for
'e3 sim all --out DIR'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if x6Out != "" && !x6 {
				return fmt.Errorf("--out applies to --x6")
			}
			var apps []*app.App
			if args[0] == "all" {
				if !x6 {
					return fmt.Errorf("`e3 run all` runs X6 for every built-in application (--x6); a knee search takes one application")
				}
				all, err := app.Builtins(services.Registry())
				if err != nil {
					return err
				}
				apps = all
			} else {
				a, err := resolveApp(args[0])
				if err != nil {
					return err
				}
				apps = []*app.App{a}
			}
			a := apps[0]
			if step <= 0 {
				return fmt.Errorf("--duration %v: want a positive duration", step)
			}
			if dilation < 0 {
				return fmt.Errorf("--dilation %v: want a factor >= 1, or 0 to choose it", dilation)
			}
			if dilation > 0 && dilation < 1 {
				return fmt.Errorf("--dilation %v: want a factor >= 1, or 0 to choose it", dilation)
			}
			mode, err := cluster.ParseStateMode(state)
			if err != nil {
				return fmt.Errorf("--state: %w", err)
			}
			if orch != "on" && orch != "off" {
				return fmt.Errorf("--orchestrator %q: want on or off", orch)
			}
			if x6 {
				for _, a := range apps {
					if err := runX6(cmd, a, clusterName, seed, dilation, mode, x6Real, asJSON, x6Out); err != nil {
						return err
					}
				}
				return nil
			}
			clusters := []string{clusterName}
			if baseline != "" && baseline != "none" {
				clusters = append(clusters, baseline)
			}
			const maxSteps = 12
			var bar *progressbar.ProgressBar
			if isTerminal(cmd.ErrOrStderr()) {
				bar = progressbar.NewOptions(maxSteps*len(clusters), progressbar.OptionSetWriter(cmd.ErrOrStderr()),
					progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionSetDescription("e3 run"))
			}
			var reports []*cluster.Report
			for i, cl := range clusters {
				done := i * maxSteps
				r, err := cluster.Run(cmd.Context(), cluster.RunConfig{
					App: a, Cluster: cl, Algo: algo, Seed: seed, Dilation: dilation, Step: step, MaxSteps: maxSteps,
					State: mode, Orchestrator: orch == "on",
					Progress: func(what string, s, _ int) {
						if bar != nil {
							bar.Describe(what)
							bar.Set(done + s)
						}
					},
				})
				if err != nil {
					return err
				}
				reports = append(reports, r)
			}
			if bar != nil {
				bar.Finish()
			}
			out := runJSON{Report: reports[0]}
			if len(reports) > 1 {
				out.Baseline = reports[1]
				out.Ratios = ratios(reports[0], reports[1])
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return printRun(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&clusterName, "cluster", "3xType1-SmartNIC", "cluster of Table 4, or NxMACHINE (see e3 cluster list)")
	cmd.Flags().StringVar(&baseline, "baseline", "3xBeefy", "cluster to compare with ('none' for no comparison)")
	cmd.Flags().StringVar(&algo, "algo", "hcm", "placement algorithm")
	cmd.Flags().DurationVar(&step, "duration", 400*time.Millisecond, "wall-clock length of each knee-search measurement")
	cmd.Flags().Float64Var(&dilation, "dilation", 0, "time-dilation factor D (0: choose from this machine's cores and the application's cost)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of placement and workload")
	cmd.Flags().StringVar(&state, "state", "disk", "where stateful instances keep their state: disk (durable stores, replicated, fsync off), fsync (the same with fsync), memory")
	cmd.Flags().StringVar(&orch, "orchestrator", "off", "run the data-plane orchestrator during the run (on|off); its decisions are printed")
	cmd.Flags().BoolVar(&x6, "x6", false, "experiment X6 instead of a knee search: SmartNICs packed by memory, the simulator's knee load of HCM's placement, orchestrator off then on")
	cmd.Flags().StringVar(&x6Out, "out", "", "with --x6: also write each application's report to DIR/X6-emulated-APP.json (`e3 sim all --out DIR` puts them in RESULTS.md)")
	cmd.Flags().DurationVar(&x6Real, "x6-max-real", 3*time.Minute, "with --x6: longest wall-clock time of one run (emulated warm-up and window shrink to fit)")
	cmd.SetContext(context.Background())
	return cmd
}

func ratios(a, b *cluster.Report) *runRatios {
	div := func(x, y float64) float64 {
		if y == 0 {
			return 0
		}
		return x / y
	}
	return &runRatios{
		Throughput: div(a.ThroughputRPS, b.ThroughputRPS),
		LatencyAvg: div(a.LatencyAvgUs, b.LatencyAvgUs),
		LatencyP99: div(a.LatencyP99Us, b.LatencyP99Us),
		Power:      div(a.PowerW, b.PowerW),
		RPJ:        div(a.RPJ, b.RPJ),
	}
}

func printRun(w io.Writer, out runJSON) error {
	reps := []*cluster.Report{out.Report}
	if out.Baseline != nil {
		reps = append(reps, out.Baseline)
	}
	for _, r := range reps {
		fmt.Fprintf(w, "%s on %s (%s): %d instances on SmartNICs, %d on hosts\n", r.App, r.Cluster, r.Algo, r.OnSmartNIC, r.OnHost)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, p := range r.Placement {
			fmt.Fprintf(tw, "  %s\t%s\t%3.0f%% busy\t%s\n", p.Node, p.Kind, 100*p.Utilization, p.FormatPlacement())
		}
		tw.Flush()
		fmt.Fprintf(w, "  emulation: D=%g; knee at %d requests outstanding after %d measurements; %.0f%% of messages released >5 µs after their emulated due time (mean %.0f µs); %.1f s\n",
			r.Dilation, r.Outstanding, r.Steps, 100*r.LateFraction, r.LateMeanUs, r.RealSeconds)
		if r.ErrorRate > 0 {
			fmt.Fprintf(w, "  WARNING: %.1f%% of requests failed at the knee; first: %s\n", 100*r.ErrorRate, r.FirstError)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "\tthroughput (req/s)\tavg latency (µs)\tp99 latency (µs)\tpower (W, modelled)\tenergy efficiency (req/J)\t"
	fmt.Fprintln(tw, header)
	row := func(name string, r *cluster.Report) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, r.ThroughputRPS, r.LatencyAvgUs, r.LatencyP99Us, r.PowerW, r.RPJ)
	}
	for _, r := range reps {
		row(r.Cluster, r)
	}
	if q := out.Ratios; q != nil {
		fmt.Fprintf(tw, "ratio\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\n", q.Throughput, q.LatencyAvg, q.LatencyP99, q.Power, q.RPJ)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, strings.TrimSpace(`
All figures are in emulated time at the knee of the latency-throughput curve;
power is modelled (Table 4 envelopes, busy cores), not measured.`))
	return nil
}
