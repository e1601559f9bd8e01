package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/experiments"
)

func init() { subcommands = append(subcommands, newSimCmd) }

func newSimCmd() *cobra.Command {
	var (
		asJSON bool
		out    string
		report string
		seed   uint64
		quick  bool
	)
	cmd := &cobra.Command{
		Use:   "sim list | all | EXPERIMENT",
		Short: "Run the paper's experiments (X1..X12) on the simulator, and its validation against the emulated cluster (V1)",
		Long: `Runs experiments of the paper's evaluation on E3's discrete-event simulator, with
the placement and orchestrator code the controller runs (docs/experiments.md).

  e3 sim list                 lists the experiments
  e3 sim X4                   runs X4 and prints its tables in markdown
  e3 sim X4 --json            prints its JSON instead
  e3 sim X4 --out DIR         also writes X4.csv, X4.json, X4.png and X4.svg to DIR
  e3 sim V1                   compares the simulator with the emulated cluster of
                              e3 run (IOT-TS and NFV-FIN on 3xType1-SmartNIC)
  e3 sim all --out DIR        runs every experiment, then V1, writes their files to
                              DIR and the report RESULTS.md next to DIR (--report
                              to change); with --quick, V1 is left out

The same --seed gives the same output byte for byte, except the wall times X10
and X11 measure on this machine and V1's emulated runs, which run in real time.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := experiments.Options{Seed: seed, Quick: quick}
			switch strings.ToLower(args[0]) {
			case "list":
				return listExperiments(cmd.OutOrStdout())
			case "all":
				if asJSON {
					return fmt.Errorf("--json applies to one experiment; `e3 sim all --out DIR` writes every experiment's JSON")
				}
				return runAll(cmd, opts, out, report)
			}
			if report != "" {
				return fmt.Errorf("--report applies to `e3 sim all`")
			}
			e, err := experiments.ByID(args[0])
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := e.Run(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s done in %.1f s\n", e.ID, time.Since(start).Seconds())
			if out != "" {
				files, err := experiments.Files(e, res)
				if err != nil {
					return err
				}
				if err := experiments.WriteFiles(out, files); err != nil {
					return err
				}
			}
			if asJSON {
				b, err := experiments.MarshalIndent(res.JSON())
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return experiments.WriteMarkdown(cmd.OutOrStdout(), e, res)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the experiment's JSON (docs/experiments.md) instead of markdown")
	cmd.Flags().StringVar(&out, "out", "", "directory to write CSV, JSON, PNG and SVG files to")
	cmd.Flags().StringVar(&report, "report", "", "with all: where to write the report (default RESULTS.md in the parent of --out)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of every random choice")
	cmd.Flags().BoolVar(&quick, "quick", false, "run a reduced version (fewer applications, sizes and requests), for smoke tests")
	return cmd
}

func listExperiments(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPAPER\tEXPERIMENT")
	for _, e := range experiments.Reported() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.ID, e.Paper, e.Title)
	}
	return tw.Flush()
}

func runAll(cmd *cobra.Command, opts experiments.Options, out, report string) error {
	all := experiments.Reported()
	stderr := cmd.ErrOrStderr()
	if opts.Quick {
		// A quick run is a smoke test of the simulations. V1 runs the
		// emulated cluster in real time whatever the scale (tens of
		// seconds, minutes under the race detector); its own test,
		// TestValidationAgreesWithSimulator, covers it.
		all = experiments.All()
		fmt.Fprintln(stderr, "--quick leaves out V1 (the emulated cluster); run `e3 sim V1` for it")
	}
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		bar = progressbar.NewOptions(len(all), progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("experiments"), progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(200*time.Millisecond))
	}
	var runs []experiments.Run
	start := time.Now()
	for _, e := range all {
		if bar != nil {
			opts.Progress = func(step string) { bar.Describe(step) }
		}
		t0 := time.Now()
		res, err := e.Run(opts)
		if err != nil {
			return err
		}
		files, err := experiments.Files(e, res)
		if err != nil {
			return err
		}
		if out != "" {
			if err := experiments.WriteFiles(out, files); err != nil {
				return err
			}
		}
		runs = append(runs, experiments.Run{Experiment: e, Result: res, Files: files})
		if bar != nil {
			bar.Add(1)
			bar.Clear()
		}
		fmt.Fprintf(stderr, "%s done in %.1f s\n", e.ID, time.Since(t0).Seconds())
	}
	if bar != nil {
		bar.Finish()
	}
	fmt.Fprintf(stderr, "all done in %.1f s\n", time.Since(start).Seconds())
	if out == "" {
		for _, r := range runs {
			if err := experiments.WriteMarkdown(cmd.OutOrStdout(), r.Experiment, r.Result); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout())
		}
		return nil
	}
	if report == "" {
		report = filepath.Join(filepath.Dir(filepath.Clean(out)), "RESULTS.md")
	}
	rel, err := filepath.Rel(filepath.Dir(report), out)
	if err != nil {
		rel = out
	}
	command := "e3 sim all --out " + out
	if opts.Seed != 1 {
		command += fmt.Sprintf(" --seed %d", opts.Seed)
	}
	if opts.Quick {
		command += " --quick"
	}
	emulated, err := experiments.LoadEmulatedX6(out)
	if err != nil {
		return err
	}
	f, err := os.Create(report)
	if err != nil {
		return err
	}
	werr := experiments.WriteReport(f, runs, experiments.ReportOptions{
		Command: command, Seed: opts.Seed, FilesDir: filepath.ToSlash(rel), Machine: machine(), EmulatedX6: emulated,
	})
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return werr
	}
	fmt.Fprintf(stderr, "wrote %s and %d experiments' files to %s\n", report, len(runs), out)
	return nil
}

// machine describes this machine for the measured experiments: the
// processor model (from /proc/cpuinfo where there is one), the cores Go
// may use and the Go version.
func machine() string {
	model := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d cores, %s", model, runtime.GOMAXPROCS(0), runtime.Version())
}
