package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/controller"
)

func init() {
	subcommands = append(subcommands, newDeployCmd, newUndeployCmd, newStatusCmd, newPlanCmd)
}

// clientOpts are the flags every controller client command takes.
type clientOpts struct {
	controllers []string
	token       string
	tokenFile   string
	timeout     time.Duration
	asJSON      bool
}

func (o *clientOpts) flags(cmd *cobra.Command, mutating bool) {
	def := []string{"127.0.0.1:7400"}
	if env := os.Getenv("E3_CONTROLLER"); env != "" {
		def = strings.Split(env, ",")
	}
	cmd.Flags().StringSliceVar(&o.controllers, "controller", def, "controller replicas' API addresses, comma separated ($E3_CONTROLLER)")
	if mutating {
		cmd.Flags().StringVar(&o.token, "token", "", "admin token ($E3_TOKEN)")
		cmd.Flags().StringVar(&o.tokenFile, "token-file", "", "file holding the admin token")
	}
	cmd.Flags().DurationVar(&o.timeout, "timeout", 15*time.Second, "give up after this long (elections included)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the API's JSON")
}

func (o *clientOpts) client() (*controller.Client, error) {
	tok := o.token
	if tok == "" && o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		tok = os.Getenv("E3_TOKEN")
	}
	return &controller.Client{Endpoints: o.controllers, Token: tok, Retry: o.timeout}, nil
}

func (o *clientOpts) needToken(c *controller.Client) error {
	if c.Token == "" {
		return errors.New("no admin token: pass --token, --token-file or set E3_TOKEN (the controller's DATA/admin.token by default)")
	}
	return nil
}

// specArg reads an application spec: a built-in application's name or a
// YAML file.
func specArg(arg string) (file string, data []byte, err error) {
	looksLikeFile := strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") || strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, os.PathSeparator)
	if !looksLikeFile && app.IsBuiltin(arg) {
		return app.BuiltinSpec(arg)
	}
	data, err = os.ReadFile(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !looksLikeFile {
			return "", nil, fmt.Errorf("no built-in application or file %q (built-ins: %s)", arg, strings.Join(app.BuiltinNames(), ", "))
		}
		return "", nil, err
	}
	return arg, data, nil
}

type deployOpts struct {
	clientOpts
	load    float64
	seed    uint64
	algo    string
	explain bool
}

func (o *deployOpts) flags(cmd *cobra.Command) {
	o.clientOpts.flags(cmd, true)
	cmd.Flags().Float64Var(&o.load, "load", controller.DefaultRPS, "offered load in requests/s that placement plans for")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the placer and of the instances")
	cmd.Flags().StringVar(&o.algo, "algo", "", "placement algorithm (default: the controller's)")
	cmd.Flags().BoolVar(&o.explain, "explain", false, "print the placer's explanation of every decision")
}

func (o *deployOpts) request(arg string) (controller.DeployRequest, error) {
	file, data, err := specArg(arg)
	if err != nil {
		return controller.DeployRequest{}, err
	}
	if !(o.load > 0) {
		return controller.DeployRequest{}, fmt.Errorf("--load %v: want requests/s > 0", o.load)
	}
	return controller.DeployRequest{Spec: string(data), File: file, RPS: o.load, Seed: o.seed, Algo: o.algo}, nil
}

// send builds the request for arg, sends it with call (Deploy or Plan:
// the same request, and an answer of the same form) and prints the
// answer.
func (o *deployOpts) send(cmd *cobra.Command, arg string, call func(*controller.Client, context.Context, controller.DeployRequest) (*controller.PlanResponse, error)) error {
	req, err := o.request(arg)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if err := o.needToken(c); err != nil {
		return err
	}
	resp, err := call(c, cmd.Context(), req)
	if err != nil {
		return err
	}
	if o.asJSON {
		return writeJSON(cmd.OutOrStdout(), resp)
	}
	return printPlan(cmd.OutOrStdout(), resp, o.explain)
}

func newDeployCmd() *cobra.Command {
	var o deployOpts
	cmd := &cobra.Command{
		Use:   "deploy APP|FILE",
		Short: "Deploy an application through the controller",
		Long: `Sends a built-in application (see 'e3 apps') or a spec file to the controller,
which places it (HCM by default) on the nodes whose agents are alive,
replicates the decision, and publishes new routes. Prints where every
instance went. An application that does not fit is not deployed; the error
says which instance fits nowhere and why.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.send(cmd, args[0], (*controller.Client).Deploy)
		},
	}
	o.flags(cmd)
	return cmd
}

func newPlanCmd() *cobra.Command {
	var o deployOpts
	cmd := &cobra.Command{
		Use:   "plan APP|FILE",
		Short: "Ask the controller where an application would go, changing nothing",
		Long: `A dry run of 'e3 deploy': the controller runs placement on a copy of the
cluster's current load, with the nodes that have no live agent left out, and
answers what it would place where, with the quality metrics (modelled) and,
with --explain, the reasons. Nothing is deployed or recorded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.send(cmd, args[0], (*controller.Client).Plan)
		},
	}
	o.flags(cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printPlan(w io.Writer, r *controller.PlanResponse, explain bool) error {
	if r.DryRun {
		fmt.Fprintf(w, "%s by %s at %.0f requests/s (dry run: nothing deployed)\n\n", r.App, r.Algo, r.RPS)
	} else {
		fmt.Fprintf(w, "%s deployed as app %d by %s at %.0f requests/s; routes at epoch %d\n\n", r.App, r.AppID, r.Algo, r.RPS, r.Epoch)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSERVICE\tROLE\tNODE\tKIND\tLEVEL")
	for _, in := range r.Instances {
		node := in.Node
		if node == "" {
			node = "UNPLACED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Instance, in.Service, in.Role, node, orDash(in.Kind), orDash(in.Level))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Unplaced) > 0 {
		fmt.Fprintf(w, "\n%d unplaced:\n", len(r.Unplaced))
		for _, u := range r.Unplaced {
			fmt.Fprintf(w, "  %s\n", u)
		}
	}
	if len(r.Masked) > 0 {
		fmt.Fprintf(w, "\nnot considered (no live agent): %s\n", strings.Join(r.Masked, ", "))
	}
	if m := r.Metrics; m != nil {
		fmt.Fprintf(w, "\n%d on SmartNICs, %d on hosts; communication cost %.4g Gb/s x hops; modelled power %.1f W, %.2f requests/J; max CPU utilisation %.2f\n",
			m.OnSmartNIC, m.OnHost, m.CommCost, m.PowerW, m.RequestsPerJoule, m.MaxCPUUtil)
	}
	fmt.Fprintf(w, "placement took %.3f ms\n", r.ElapsedMs)
	if explain {
		fmt.Fprintln(w, "\nexplanations:")
		for _, in := range r.Instances {
			fmt.Fprint(w, in.Explanation)
		}
	}
	return nil
}

func newUndeployCmd() *cobra.Command {
	var o clientOpts
	cmd := &cobra.Command{
		Use:   "undeploy APP",
		Short: "Remove a deployed application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := o.needToken(c); err != nil {
				return err
			}
			if err := c.Undeploy(cmd.Context(), args[0]); err != nil {
				return err
			}
			if o.asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"undeployed": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s undeployed\n", args[0])
			return nil
		},
	}
	o.flags(cmd, true)
	return cmd
}

// statusJSON is the --json form of `e3 status`.
type statusJSON struct {
	Cluster *controller.ClusterStatus  `json:"cluster"`
	Nodes   []controller.NodeStatus    `json:"nodes"`
	Apps    []controller.AppSummary    `json:"apps"`
	Events  *controller.EventsResponse `json:"events"`
}

func newStatusCmd() *cobra.Command {
	var (
		o      clientOpts
		events int
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the controller cluster, the agents, the applications and recent events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var st statusJSON
			if st.Cluster, err = c.Cluster(ctx); err != nil {
				return err
			}
			if st.Nodes, err = c.Nodes(ctx); err != nil {
				return err
			}
			if st.Apps, err = c.Apps(ctx); err != nil {
				return err
			}
			since := uint64(0)
			if ev, err := c.Events(ctx, 0, 1); err == nil && ev.Next > uint64(events) {
				since = ev.Next - uint64(events)
			}
			if st.Events, err = c.Events(ctx, since, max(events, 1)); err != nil {
				return err
			}
			if o.asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), &st, events)
		},
	}
	o.flags(cmd, false)
	cmd.Flags().IntVar(&events, "events", 10, "how many recent events to show")
	return cmd
}

func printStatus(w io.Writer, st *statusJSON, events int) error {
	cs := st.Cluster
	leader := cs.Leader
	if leader == "" {
		leader = "NONE (no majority?)"
	}
	fmt.Fprintf(w, "controller: cluster %s, leader %s, term %d, routing epoch %d (answered by %s, %s)\n", cs.Cluster, leader, cs.Term, cs.Epoch, cs.Replica, strings.ToLower(cs.State))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tRAFT\tAPI\tVOTER\tLEADER")
	for _, r := range cs.Replicas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", r.ID, r.RaftAddr, orDash(r.APIAddr), r.Voter, r.Leader)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nagents: %d registered\n", len(st.Nodes))
	if len(st.Nodes) > 0 {
		fmt.Fprintln(tw, "NODE\tROLE\tADDR\tSTATE\tLAST HEARD\tINSTANCES")
		for _, n := range st.Nodes {
			state, heard := "?", "?"
			switch {
			case n.Failed:
				state = "FAILED"
			case n.Alive != nil && *n.Alive:
				state = "alive"
			case n.Alive != nil:
				state = "silent"
			}
			if n.LastHeardMs != nil {
				heard = "never"
				if *n.LastHeardMs >= 0 {
					heard = fmt.Sprintf("%d ms ago", *n.LastHeardMs)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", n.Name, n.Role, n.Addr, state, heard, n.Instances)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\napplications: %d\n", len(st.Apps))
	if len(st.Apps) > 0 {
		fmt.Fprintln(tw, "APP\tID\tINSTANCES\tSMARTNIC\tHOST\tUNPLACED\tRPS\tEPOCH")
		for _, a := range st.Apps {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%d\n", a.Name, a.ID, a.Instances, a.OnSmartNIC, a.OnHost, a.Unplaced, a.RPS, a.Epoch)
		}
		tw.Flush()
	}
	if len(cs.Migrations) > 0 {
		fmt.Fprintf(w, "\nmigrations in flight: %d\n", len(cs.Migrations))
		for _, m := range cs.Migrations {
			fmt.Fprintf(w, "  m%d %s/%s %s -> %s\n", m.ID, m.App, m.Instance, m.From, m.To)
		}
	}
	if events > 0 && len(st.Events.Events) > 0 {
		fmt.Fprintf(w, "\nrecent events:\n")
		for _, e := range st.Events.Events {
			fmt.Fprintf(w, "  %s  %-16s %s\n", time.Unix(0, e.At).Format("15:04:05.000"), e.Kind, e.Message)
		}
	}
	return nil
}
