package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/internal/msbench"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
)

func init() { subcommands = append(subcommands, newMSCmd) }

func newMSCmd() *cobra.Command {
	ms := &cobra.Command{Use: "ms", Short: "Microservice tools"}
	var (
		names    []string
		size     int
		duration time.Duration
		seed     int64
		asJSON   bool
	)
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark microservice handlers on one core (the Table 1 analogue)",
		Long: `Runs each microservice's handler on one core with its own deterministic
request generator and prints requests/s per core, average and p99 latency per
request and allocations per request, beside Table 1's kernel-bypass host
throughput per core. The paper's figure includes the network stack; ours is
the handler alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := services.Registry()
			var ds []*service.Descriptor
			if len(names) == 0 {
				for _, d := range services.Descriptors() {
					d := d
					ds = append(ds, &d)
				}
			}
			for _, n := range names {
				d, ok := reg.Lookup(strings.TrimSpace(n))
				if !ok {
					return fmt.Errorf("--service %q: unknown microservice (known: %s)", n, strings.Join(reg.Names(), ", "))
				}
				ds = append(ds, d)
			}
			var results []msbench.Result
			var missing []string
			for _, d := range ds {
				r, err := msbench.Run(d, msbench.Options{Size: size, Duration: duration, Seed: seed})
				if errors.Is(err, msbench.ErrNotImplemented) {
					missing = append(missing, d.Name)
					continue
				}
				if err != nil {
					return err
				}
				results = append(results, r)
				if !asJSON {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s done\n", d.Name)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("no implementation for: %s", strings.Join(missing, ", "))
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), results)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "service\trps/core\tavg us\tp99 us\tallocs/req\terrors\tpaper rps/core (DPDK)\t")
			for _, r := range results {
				fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.2f\t%d\t%.0f\t\n", r.Service, r.RPSPerCore, r.AvgUs, r.P99Us, r.AllocsPerReq, r.Errors, r.PaperRPSPerCore)
			}
			fmt.Fprintf(tw, "(seed %d, %d B requests, one core)\t\t\t\t\t\t\t\n", seed, size)
			return tw.Flush()
		},
	}
	bench.Flags().StringSliceVar(&names, "service", nil, "microservice(s) to run (default all 16)")
	bench.Flags().IntVar(&size, "size", 512, "request size in bytes")
	bench.Flags().DurationVar(&duration, "duration", time.Second, "measured time per service")
	bench.Flags().Int64Var(&seed, "seed", 1, "generator seed")
	bench.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	ms.AddCommand(bench)
	return ms
}
