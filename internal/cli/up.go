package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/agentd"
	"github.com/e3-platform/e3/localcluster"
)

func init() { subcommands = append(subcommands, newUpCmd) }

func newUpCmd() *cobra.Command {
	var (
		cfg      localcluster.Config
		subnet   string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up a local E3 deployment: controller replicas and an agent per node",
		Long: `Brings up, on this machine, the controller replicas and one node agent for
every host and SmartNIC of a Table 4 cluster, prints how to reach them, and
keeps them running until Ctrl-C, then stops them all.

  e3 up                      # everything in this process, on loopback addresses
  e3 up --procs              # every replica and agent its own process (e3 controller, e3 agent)
  sudo e3 up --netns         # and every server and replica in a network namespace of its own

Replicas listen on 127.0.100.i (API :7400, raft :7401), agents on 127.0.x.y
(data :7000, metrics :7100), one address per compute node. With --netns the
servers and replicas are namespaces on a bridge (the ToR) in 10.177.0.0/16,
and this host reaches them at 10.177.255.254. Tokens, data and logs go to
--data (a temporary directory, removed at exit, by default).

Drills: kill -9 a replica's or an agent's PID (printed), and watch e3 status.
docs/operations.md describes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.LogLevel = logLevel
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if cfg.NetnsSubnet, err = netip.ParsePrefix(subnet); err != nil {
				return fmt.Errorf("--netns-subnet %q: %w", subnet, err)
			}
			if cfg.Netns {
				if err := localcluster.NetnsAvailable(); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			c, err := localcluster.Up(ctx, cfg)
			if err != nil {
				return err
			}
			c.Print(cmd.OutOrStdout())
			fmt.Fprintf(cmd.OutOrStdout(), "(up in %.1f s)\n", time.Since(start).Seconds())
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "e3 up: stopping the agents, then the replicas")
			err = c.Down()
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "e3 up: stopped")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Cluster, "cluster", "3xType1-SmartNIC", "the cluster of Table 4 (or NxMACHINE) to run an agent for every node of")
	f.IntVar(&cfg.Controllers, "controllers", 3, "controller replicas (1, 3 or 5)")
	f.BoolVar(&cfg.Procs, "procs", false, "run every replica and agent as a process of its own")
	f.BoolVar(&cfg.Netns, "netns", false, "put every server and replica in a network namespace (root and iproute2; implies --procs)")
	f.StringVar(&cfg.NetnsPrefix, "netns-prefix", "e3up", "name prefix of the namespaces and veths (at most 6 characters)")
	f.StringVar(&subnet, "netns-subnet", "10.177.0.0/16", "the /16 the namespaced cluster is numbered in")
	f.StringVar(&cfg.Dir, "data", "", "directory for tokens, state and logs (default: a temporary directory removed at exit)")
	f.StringVar(&cfg.State, "state", agentd.StateDisk, "the agents' state: disk (no fsync: many agents share one disk), fsync or memory")
	f.DurationVar(&cfg.FailureTimeout, "failure-timeout", 0, "an agent silent this long is failed with its server (default the controller's, 500ms)")
	f.IntVar(&cfg.AgentCores, "cores", 0, "worker cores per agent (default: the node's in the topology)")
	f.BoolVar(&cfg.EphemeralPorts, "ephemeral-ports", false, "let every listener pick a free port (several clusters side by side)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error (members' logs; e3 up's own progress at info)")
	return cmd
}
