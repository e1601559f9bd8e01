package cli

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"

	// Placement algorithms register themselves; import each one here.
	_ "github.com/e3-platform/e3/placement/annealing"
	_ "github.com/e3-platform/e3/placement/hcm"
	_ "github.com/e3-platform/e3/placement/ilp"
)

func init() { subcommands = append(subcommands, newPlaceCmd) }

// defaultLoad is the offered load `e3 place` assumes: every built-in
// application fits 3xType1-SmartNIC at it with room to spare (RTA-SF and
// IOT-TS, the heaviest, top out near 40,000 requests/s there).
const defaultLoad = 10000

// placeJSON is the --json form of `e3 place`.
type placeJSON struct {
	App          string            `json:"app"`
	Cluster      string            `json:"cluster"`
	Algo         string            `json:"algo"`
	Seed         uint64            `json:"seed"`
	OfferedRPS   float64           `json:"offered_rps"`
	Assignments  []assignmentJSON  `json:"assignments"`
	Unplaced     []unplacedJSON    `json:"unplaced"`
	Metrics      placement.Metrics `json:"metrics"`
	Violations   []string          `json:"violations"`
	ElapsedMs    float64           `json:"elapsed_ms"`
	Explanations []explanationJSON `json:"explanations,omitempty"`
}

type assignmentJSON struct {
	Instance string `json:"instance"`
	Service  string `json:"service"`
	// Node, Kind and Level are null for an unplaced instance; Level is
	// null too for an instance with no placed upstream neighbour.
	Node  *string `json:"node"`
	Kind  *string `json:"kind"`
	Level *string `json:"level"`
}

type unplacedJSON struct {
	Instance string  `json:"instance"`
	Closest  *string `json:"closest"`
	Reason   string  `json:"reason"`
}

type explanationJSON struct {
	Instance string           `json:"instance"`
	Node     *string          `json:"node"`
	How      placement.How    `json:"how"`
	Ancestor *string          `json:"ancestor"`
	Level    *string          `json:"level"`
	Examined int              `json:"examined"`
	Feasible int              `json:"feasible"`
	Rejected map[string]int   `json:"rejected"`
	Examples []exampleJSON    `json:"examples"`
	Levels   []levelTraceJSON `json:"levels"`
}

type exampleJSON struct {
	Node       string               `json:"node"`
	Constraint placement.Constraint `json:"constraint"`
	Reason     string               `json:"reason"`
}

type levelTraceJSON struct {
	Level    string `json:"level"`
	Examined int    `json:"examined"`
	Feasible int    `json:"feasible"`
}

func strp(s string) *string { return &s }

// placeOpts are the flags shared by `e3 place` and `e3 place compare`.
type placeOpts struct {
	cluster string
	load    float64
	seed    uint64
	asJSON  bool
}

func (o *placeOpts) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.cluster, "cluster", "3xType1-SmartNIC", "cluster of Table 4, or NxMACHINE (see `e3 cluster list`)")
	cmd.Flags().Float64Var(&o.load, "load", defaultLoad, "offered load in requests/s")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the placer's random choices")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
}

// problem loads the application and the cluster and builds the problem on
// an empty load.
func (o *placeOpts) problem(appArg string) (*app.App, *placement.Problem, error) {
	a, err := resolveApp(appArg)
	if err != nil {
		return nil, nil, err
	}
	hc, err := hwmodel.ClusterByName(o.cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("--cluster: %w", err)
	}
	topo, err := hwmodel.Topology(hc)
	if err != nil {
		return nil, nil, err
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		return nil, nil, err
	}
	if !(o.load >= 0) {
		return nil, nil, fmt.Errorf("--load %v: want requests/s >= 0", o.load)
	}
	p, err := placement.FromApp(a, placement.NewLoad(c), o.load)
	if err != nil {
		return nil, nil, err
	}
	return a, p, nil
}

func (o *placeOpts) rng() *rand.Rand { return rand.New(rand.NewPCG(o.seed, 0xe3)) }

// timedPlace runs the placer and measures it; the placement packages are
// pure and read no clock.
func timedPlace(pl placement.Placer, p *placement.Problem, rng *rand.Rand) (*placement.Result, time.Duration, error) {
	start := time.Now()
	res, err := pl.Place(p, rng)
	return res, time.Since(start), err
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func newPlaceCmd() *cobra.Command {
	var (
		o       placeOpts
		algo    string
		explain bool
	)
	cmd := &cobra.Command{
		Use:   "place APP|FILE",
		Short: "Place an application on a cluster (dry run) and report where and why",
		Long: `Places a built-in application (see 'e3 apps') or a spec file on a cluster of
Table 4 with one algorithm and prints, for every instance, its node, the node's
kind and its level from its upstream neighbour; the instances that could not
be placed and why; the quality metrics (communication cost, modelled power and
requests per joule at the offered load, SmartNIC/host split, load balance);
and the time placement took. Nothing is deployed: this is a dry run.

--explain adds, per instance, the candidates examined level by level and how
many each constraint eliminated, with examples.

Algorithms: ` + strings.Join(placement.Algorithms(), ", ") + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, p, err := o.problem(args[0])
			if err != nil {
				return err
			}
			pl, err := placement.New(algo)
			if err != nil {
				return fmt.Errorf("--algo: %w", err)
			}
			p.Explain = explain
			res, elapsed, err := timedPlace(pl, p, o.rng())
			if err != nil {
				return err
			}
			m, err := placement.Evaluate(p, res.Assignment, o.load)
			if err != nil {
				return err
			}
			out := toPlaceJSON(a, p, res, m, o, algo, elapsed)
			if o.asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return printPlace(cmd.OutOrStdout(), p, res, out)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&algo, "algo", "hcm", "placement algorithm: "+strings.Join(placement.Algorithms(), ", "))
	cmd.Flags().BoolVar(&explain, "explain", false, "explain every decision")
	cmd.AddCommand(newPlaceCompareCmd(), newPlaceScaleCmd())
	return cmd
}

func toPlaceJSON(a *app.App, p *placement.Problem, res *placement.Result, m placement.Metrics, o placeOpts, algo string, elapsed time.Duration) placeJSON {
	topo := p.Topology()
	out := placeJSON{App: a.Name, Cluster: o.cluster, Algo: algo, Seed: o.seed, OfferedRPS: o.load,
		Metrics: m, ElapsedMs: ms(elapsed), Assignments: []assignmentJSON{}, Unplaced: []unplacedJSON{}, Violations: []string{}}
	levels := placement.Levels(p, res.Assignment)
	for i, n := range res.Assignment {
		in := p.Instance(placement.InstanceID(i))
		aj := assignmentJSON{Instance: in.Name, Service: in.Service}
		if n >= 0 {
			aj.Node, aj.Kind = strp(topo.Name(n)), strp(topo.Node(n).Kind.String())
			if levels[i] != placement.NoLevel {
				aj.Level = strp(levels[i].String())
			}
		}
		out.Assignments = append(out.Assignments, aj)
	}
	for _, u := range res.Unplaced {
		uj := unplacedJSON{Instance: p.Instance(u.Instance).Name, Reason: u.Reason.Describe(p)}
		if u.Closest >= 0 {
			uj.Closest = strp(topo.Name(u.Closest))
		}
		out.Unplaced = append(out.Unplaced, uj)
	}
	for _, v := range placement.Validate(p, res.Assignment) {
		out.Violations = append(out.Violations, v.String())
	}
	for _, e := range res.Explanations {
		ej := explanationJSON{Instance: p.Instance(e.Instance).Name, How: e.How, Examined: e.Examined, Feasible: e.Feasible,
			Rejected: map[string]int{}, Examples: []exampleJSON{}, Levels: []levelTraceJSON{}}
		if e.Node >= 0 {
			ej.Node = strp(topo.Name(e.Node))
		}
		if e.Ancestor != placement.None {
			ej.Ancestor = strp(p.Instance(e.Ancestor).Name)
			if e.Node >= 0 {
				ej.Level = strp(e.Level.String())
			}
		}
		for c, k := range e.Rejected {
			if k > 0 {
				ej.Rejected[placement.Constraint(c).String()] = k
			}
		}
		for _, ex := range e.Examples {
			ej.Examples = append(ej.Examples, exampleJSON{Node: topo.Name(ex.Node), Constraint: ex.Reason.Constraint, Reason: ex.Reason.Describe(p)})
		}
		for _, lt := range e.Levels {
			ej.Levels = append(ej.Levels, levelTraceJSON{Level: lt.Level.String(), Examined: lt.Examined, Feasible: lt.Feasible})
		}
		out.Explanations = append(out.Explanations, ej)
	}
	return out
}

func deref(s *string, none string) string {
	if s == nil {
		return none
	}
	return *s
}

func printPlace(w io.Writer, p *placement.Problem, res *placement.Result, out placeJSON) error {
	fmt.Fprintf(w, "%s on %s by %s at %.0f requests/s (dry run)\n\n", out.App, out.Cluster, out.Algo, out.OfferedRPS)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSERVICE\tNODE\tKIND\tLEVEL")
	for _, a := range out.Assignments {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Instance, a.Service, deref(a.Node, "UNPLACED"), deref(a.Kind, "-"), deref(a.Level, "-"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Unplaced) > 0 {
		fmt.Fprintf(w, "\n%d unplaced:\n", len(res.Unplaced))
		for _, u := range res.Unplaced {
			fmt.Fprintf(w, "  %s\n", u.Describe(p))
		}
	}
	for _, v := range out.Violations {
		fmt.Fprintf(w, "VIOLATION %s\n", v)
	}
	m := out.Metrics
	fmt.Fprintf(w, "\nplaced %d (%d on SmartNICs, %d on hosts), unplaced %d\n", m.Placed, m.OnSmartNIC, m.OnHost, m.Unplaced)
	fmt.Fprintf(w, "communication cost %.4g Gb/s x hops (of %.4g Gb/s between instances)\n", m.CommCost, m.TrafficGbps)
	fmt.Fprintf(w, "modelled power %.1f W (idle %.1f W), %.2f requests/J\n", m.PowerW, m.IdleW, m.RequestsPerJoule)
	fmt.Fprintf(w, "CPU utilisation: max %.2f, mean %.3f, coefficient of variation %.2f\n", m.MaxCPUUtil, m.MeanCPUUtil, m.CVCPUUtil)
	fmt.Fprintf(w, "placement took %.3f ms\n", out.ElapsedMs)
	if len(res.Explanations) > 0 {
		fmt.Fprintln(w, "\nexplanations:")
		for i := range res.Explanations {
			fmt.Fprint(w, res.Explanations[i].Format(p))
		}
	}
	return nil
}

// compareJSON is one row of `e3 place compare --json`.
type compareJSON struct {
	Algo       string             `json:"algo"`
	Metrics    *placement.Metrics `json:"metrics,omitempty"`
	Violations int                `json:"violations"`
	ElapsedMs  float64            `json:"elapsed_ms"`
	Error      string             `json:"error,omitempty"`
}

func newPlaceCompareCmd() *cobra.Command {
	var o placeOpts
	cmd := &cobra.Command{
		Use:   "compare APP|FILE",
		Short: "Place an application with every registered algorithm, side by side",
		Long: `Places the application with each registered algorithm (` + strings.Join(placement.Algorithms(), ", ") + `)
on the same cluster at the same offered load and prints their metrics side by
side. An algorithm that fails (for example the ILP without its solver) is
reported in its row; the others still run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rows []compareJSON
			for _, name := range placement.Algorithms() {
				_, p, err := o.problem(args[0])
				if err != nil {
					return err
				}
				row := compareJSON{Algo: name}
				pl, err := placement.New(name)
				if err != nil {
					return err
				}
				res, elapsed, err := timedPlace(pl, p, o.rng())
				row.ElapsedMs = ms(elapsed)
				if err != nil {
					row.Error = err.Error()
					rows = append(rows, row)
					continue
				}
				m, err := placement.Evaluate(p, res.Assignment, o.load)
				if err != nil {
					return err
				}
				row.Metrics = &m
				row.Violations = len(placement.Validate(p, res.Assignment))
				rows = append(rows, row)
			}
			if o.asJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s on %s at %.0f requests/s\n\n", args[0], o.cluster, o.load)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "ALGO\tPLACED\tUNPLACED\tSMARTNIC\tHOST\tCOMM Gb/s*hops\tPOWER W\tREQ/J\tMAX UTIL\tCV UTIL\tVIOLATIONS\tMS\t")
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t\t\t\t\t\t\t\n", r.Algo, r.Error)
					continue
				}
				m := r.Metrics
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.4g\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%.3f\t\n", r.Algo, m.Placed, m.Unplaced, m.OnSmartNIC, m.OnHost,
					m.CommCost, m.PowerW, m.RequestsPerJoule, m.MaxCPUUtil, m.CVCPUUtil, r.Violations, r.ElapsedMs)
			}
			return tw.Flush()
		},
	}
	o.flags(cmd)
	return cmd
}

// scaleJSON is one row of `e3 place scale --json`.
type scaleJSON struct {
	Algo          string  `json:"algo"`
	Servers       int     `json:"servers"`
	Microservices int     `json:"microservices"`
	Placed        int     `json:"placed"`
	PerMsMs       float64 `json:"per_microservice_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	TotalS        float64 `json:"total_s"`
}

func parseServers(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > topology.MaxServers {
			return nil, fmt.Errorf("--servers: %q is not a server count in 1..%d", f, topology.MaxServers)
		}
		out = append(out, n)
	}
	return out, nil
}

// isTerminal reports whether w is a character device, where a progress
// bar helps; in a pipe or a file it would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newPlaceScaleCmd() *cobra.Command {
	var (
		servers string
		n       int
		algos   []string
		seed    uint64
		asJSON  bool
		cores   []float64
	)
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Experiment X10: per-microservice deployment time on large fat trees",
		Long: `Deploys microservices one at a time into a fat tree of Type2-SmartNIC servers,
40 per rack, and reports the mean time placement took per microservice for each
cluster size (the paper's Table 6), with the median, 99th percentile and
largest (a busy machine's preemptions land there). Each microservice is drawn from the 16 of
Table 2 and keeps 0.01 to 0.1 host cores busy (--cores); three in four are fed by an
earlier microservice (at most 12 each, never more messages than it receives)
and are placed near it, the rest take client traffic. The time is that of the
algorithm's Place call alone; building the problem and committing the result
are not counted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sizes, err := parseServers(servers)
			if err != nil {
				return err
			}
			if n <= 0 {
				return fmt.Errorf("--microservices %d: want > 0", n)
			}
			if len(cores) != 2 || !(cores[0] > 0 && cores[1] >= cores[0]) {
				return fmt.Errorf("--cores %v: want MIN,MAX with 0 < MIN <= MAX", cores)
			}
			var mix []placement.ScaleService
			for _, d := range services.Descriptors() {
				mix = append(mix, placement.ScaleService{Name: d.Name, MemoryMB: float64(d.MemoryMB), NonMigratable: !d.Migratable})
			}
			var rows []scaleJSON
			for _, algo := range algos {
				for _, size := range sizes {
					pl, err := placement.New(algo)
					if err != nil {
						return fmt.Errorf("--algo: %w", err)
					}
					sc, err := placement.NewScale(placement.ScaleOptions{Servers: size, Services: mix, Seed: seed, MinCores: cores[0], MaxCores: cores[1]})
					if err != nil {
						return err
					}
					var bar *progressbar.ProgressBar
					if isTerminal(cmd.ErrOrStderr()) {
						bar = progressbar.NewOptions(n, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
							progressbar.OptionSetDescription(fmt.Sprintf("%s, %d servers", algo, size)),
							progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
					}
					rng := rand.New(rand.NewPCG(seed, 0xe3))
					var total time.Duration
					times := make([]time.Duration, 0, n)
					wall := time.Now()
					for range n {
						p := sc.Next()
						res, d, err := timedPlace(pl, p, rng)
						if err != nil {
							return err
						}
						total += d
						times = append(times, d)
						if err := sc.Commit(p, res); err != nil {
							return err
						}
						if bar != nil {
							bar.Add(1)
						}
					}
					if bar != nil {
						bar.Finish()
					}
					_, placed := sc.Deployed()
					slices.Sort(times)
					row := scaleJSON{Algo: algo, Servers: size, Microservices: n, Placed: placed,
						PerMsMs: ms(total) / float64(n), P50Ms: ms(times[n/2]), P99Ms: ms(times[n*99/100]), MaxMs: ms(times[n-1]),
						TotalS: time.Since(wall).Seconds()}
					rows = append(rows, row)
					if !asJSON {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s, %d servers: %.4f ms per microservice\n", algo, size, row.PerMsMs)
					}
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "ALGO\tSERVERS\tMICROSERVICES\tPLACED\tMS PER MICROSERVICE\tP50 MS\tP99 MS\tMAX MS\tTOTAL S\t")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.4f\t%.4f\t%.4f\t%.3f\t%.1f\t\n", r.Algo, r.Servers, r.Microservices, r.Placed, r.PerMsMs, r.P50Ms, r.P99Ms, r.MaxMs, r.TotalS)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "(seed %d; time of Place per microservice, measured on this machine)\n", seed)
			return err
		},
	}
	cmd.Flags().StringVar(&servers, "servers", "100,200,400,600,800,1000", "comma-separated server counts")
	cmd.Flags().IntVar(&n, "microservices", 10000, "microservices to deploy, one at a time")
	cmd.Flags().StringSliceVar(&algos, "algo", []string{"hcm"}, "placement algorithm(s): "+strings.Join(placement.Algorithms(), ", "))
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the microservice mix and the placer")
	cmd.Flags().Float64SliceVar(&cores, "cores", []float64{0.01, 0.1}, "MIN,MAX host cores one microservice keeps busy")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
