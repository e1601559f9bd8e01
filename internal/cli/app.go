package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
)

func init() { subcommands = append(subcommands, newAppCmd) }

func newAppCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "Show, validate and print application specs"}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show NAME|FILE",
		Short: "Print an application's expanded DAG",
		Long: `Loads a built-in application (by name, in any case) or a spec file and
prints its nodes, edges (policy, share, links, fan-out), sources and every
instance with the instances it sends to and its expected messages per
request entering the application. An argument ending in .yaml or .yml, or
containing a path separator, is always a file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := resolveApp(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), toAppJSON(a))
			}
			return printApp(cmd.OutOrStdout(), a)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a spec file; print ok, or every problem as FILE:LINE: field: message",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if _, err := app.Load(args[0], data, services.Registry()); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{1}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}

	spec := &cobra.Command{
		Use:   "spec NAME",
		Short: "Print the YAML spec of a built-in application (a starting point for your own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, data, err := app.BuiltinSpec(args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.AddCommand(show, validate, spec)
	return cmd
}

// resolveApp loads a built-in by name or a spec file by path.
func resolveApp(arg string) (*app.App, error) {
	looksLikeFile := strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") || strings.ContainsRune(arg, os.PathSeparator) || strings.ContainsRune(arg, '/')
	if !looksLikeFile && app.IsBuiltin(arg) {
		return app.Builtin(arg, services.Registry())
	}
	data, err := os.ReadFile(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !looksLikeFile {
			return nil, fmt.Errorf("no built-in application or file %q (built-ins: %s)", arg, strings.Join(app.BuiltinNames(), ", "))
		}
		return nil, err
	}
	return app.Load(arg, data, services.Registry())
}

// appJSON is the --json form of `e3 app show`.
type appJSON struct {
	Name          string         `json:"name"`
	Class         string         `json:"class"`
	Description   string         `json:"description"`
	File          string         `json:"file"`
	DAGNodes      int            `json:"dag_nodes"`
	Microservices []string       `json:"microservices"`
	Sources       []string       `json:"sources"`
	Workload      workloadJSON   `json:"workload"`
	FanOut        fanOutJSON     `json:"fan_out"`
	Nodes         []nodeJSON     `json:"nodes"`
	Edges         []edgeJSON     `json:"edges"`
	Instances     []instanceJSON `json:"instances"`
}

type workloadJSON struct {
	RequestSize int                `json:"request_size"`
	KeySpace    int                `json:"key_space"`
	Mix         map[string]float64 `json:"mix"`
}

type fanOutJSON struct {
	Mean    float64 `json:"mean"`
	Max     int     `json:"max"`
	Senders int     `json:"senders"`
}

type nodeJSON struct {
	Name      string            `json:"name"`
	Service   string            `json:"service"`
	Family    string            `json:"family"`
	Shards    int               `json:"shards"`
	Backups   int               `json:"backups"`
	Instances int               `json:"instances"`
	Pin       app.Pin           `json:"pin"`
	Config    map[string]string `json:"config"`
	Source    bool              `json:"source"`
	Ingress   float64           `json:"ingress"`
	// Rate is the expected messages per request entering the application
	// processed by all of the node's primaries; InstanceRate by each.
	Rate         float64 `json:"rate"`
	InstanceRate float64 `json:"instance_rate"`
	Line         int     `json:"line"`
}

type edgeJSON struct {
	From   string     `json:"from"`
	To     string     `json:"to"`
	Policy app.Policy `json:"policy"`
	Share  float64    `json:"share"`
	Key    string     `json:"key"`
	Links  int        `json:"links"`
	// FanOut is the number of destination instances each sending instance
	// reaches over this edge.
	FanOut int     `json:"fan_out"`
	Rate   float64 `json:"rate"`
	Line   int     `json:"line"`
}

type instanceJSON struct {
	ID      string   `json:"id"`
	Node    string   `json:"node"`
	Shard   int      `json:"shard"`
	Replica int      `json:"replica"`
	Primary string   `json:"primary"`
	Rate    float64  `json:"rate"`
	FanOut  int      `json:"fan_out"`
	SendsTo []string `json:"sends_to"`
}

func toAppJSON(a *app.App) appJSON {
	f := a.FanOut()
	out := appJSON{
		Name: a.Name, Class: string(a.Class), Description: a.Description, File: a.File,
		DAGNodes: len(a.Instances()), Microservices: a.Services(), Sources: []string{},
		Workload: workloadJSON{RequestSize: a.Workload.RequestSize, KeySpace: a.Workload.KeySpace, Mix: map[string]float64{}},
		FanOut:   fanOutJSON{Mean: f.Mean, Max: f.Max, Senders: f.Senders},
	}
	for _, s := range a.Sources() {
		out.Sources = append(out.Sources, s.Name)
		out.Workload.Mix[s.Name] = s.Ingress
	}
	for _, n := range a.Nodes() {
		out.Nodes = append(out.Nodes, nodeJSON{
			Name: n.Name, Service: n.Service, Family: n.Family().String(), Shards: n.Shards, Backups: n.Backups,
			Instances: len(n.Instances()), Pin: n.Pin, Config: n.Config, Source: n.IsSource(), Ingress: n.Ingress,
			Rate: n.Rate, InstanceRate: n.Primary(0).Rate, Line: n.Line,
		})
	}
	links := map[*app.Edge]int{}
	for _, l := range a.Links() {
		links[l.Edge]++
	}
	for _, e := range a.Edges() {
		out.Edges = append(out.Edges, edgeJSON{
			From: e.From.Name, To: e.To.Name, Policy: e.Policy, Share: e.Share, Key: keyMode(e),
			Links: links[e], FanOut: links[e] / e.From.Shards, Rate: e.Rate, Line: e.Line,
		})
	}
	for _, i := range a.Instances() {
		ij := instanceJSON{ID: i.ID, Node: i.Node.Name, Shard: i.Shard, Replica: i.Replica, Primary: i.Primary.ID, Rate: i.Rate, FanOut: i.FanOut(), SendsTo: []string{}}
		for _, l := range i.Out {
			ij.SendsTo = append(ij.SendsTo, l.To.ID)
		}
		out.Instances = append(out.Instances, ij)
	}
	return out
}

func keyMode(e *app.Edge) string {
	if e.SameKey {
		return "same"
	}
	return "new"
}

func printApp(w io.Writer, a *app.App) error {
	f := a.FanOut()
	var src []string
	for _, s := range a.Sources() {
		src = append(src, fmt.Sprintf("%s (%.0f%%)", s.Name, 100*s.Ingress))
	}
	fmt.Fprintf(w, "%s  class %s  %d DAG nodes (instances)  from %s\n", a.Name, a.Class, len(a.Instances()), a.File)
	if a.Description != "" {
		fmt.Fprintf(w, "  %s\n", a.Description)
	}
	fmt.Fprintf(w, "  sources: %s\n", strings.Join(src, ", "))
	fmt.Fprintf(w, "  workload: %d-byte requests over %d keys\n", a.Workload.RequestSize, a.Workload.KeySpace)
	fmt.Fprintf(w, "  fan-out: mean %.2f over %d sending instances, max %d\n", f.Mean, f.Senders, f.Max)
	fmt.Fprintln(w, "  rates are expected messages per request entering the application, keys uniform")

	fmt.Fprintln(w, "\nNODES (topological order)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSERVICE\tFAMILY\tSHARDS\tBACKUPS\tINSTANCES\tPIN\tRATE\tPER SHARD\tCONFIG")
	for _, n := range a.Nodes() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%.3g\t%.3g\t%s\n", n.Name, n.Service, n.Family(), n.Shards, n.Backups,
			len(n.Instances()), n.Pin, n.Rate, n.Primary(0).Rate, configString(n.Config))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(a.Edges()) > 0 {
		fmt.Fprintln(w, "\nEDGES")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EDGE\tPOLICY\tSHARE\tKEY\tLINKS\tFAN-OUT/SHARD\tRATE")
		links := map[*app.Edge]int{}
		for _, l := range a.Links() {
			links[l.Edge]++
		}
		for _, e := range a.Edges() {
			fmt.Fprintf(tw, "%s\t%s\t%g\t%s\t%d\t%d\t%.3g\n", e, e.Policy, e.Share, keyMode(e), links[e], links[e]/e.From.Shards, e.Rate)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nINSTANCES")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSHARD\tROLE\tRATE\tFAN-OUT\tSENDS TO")
	for _, i := range a.Instances() {
		role, sends := "primary", compactTargets(i.Out)
		if !i.IsPrimary() {
			role = "backup " + strconv.Itoa(i.Replica) + " of " + i.Primary.ID
			sends = "(state replication from " + i.Primary.ID + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.3g\t%d\t%s\n", i.ID, i.Shard, role, i.Rate, i.FanOut(), sends)
	}
	return tw.Flush()
}

// compactTargets writes destinations grouped by node with shard ranges:
// "sql[0-11]", "ema[3] spike[3]".
func compactTargets(out []*app.Link) string {
	if len(out) == 0 {
		return "-"
	}
	var order []string
	shards := map[string][]int{}
	for _, l := range out {
		n := l.To.Node.Name
		if _, ok := shards[n]; !ok {
			order = append(order, n)
		}
		shards[n] = append(shards[n], l.To.Shard)
	}
	parts := make([]string, 0, len(order))
	for _, n := range order {
		s := shards[n]
		sort.Ints(s)
		var rs []string
		for i := 0; i < len(s); {
			j := i
			for j+1 < len(s) && s[j+1] == s[j]+1 {
				j++
			}
			if j > i {
				rs = append(rs, fmt.Sprintf("%d-%d", s[i], s[j]))
			} else {
				rs = append(rs, strconv.Itoa(s[i]))
			}
			i = j + 1
		}
		parts = append(parts, n+"["+strings.Join(rs, ",")+"]")
	}
	return strings.Join(parts, " ")
}

func configString(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
