package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/agentd"
)

func init() { subcommands = append(subcommands, newAgentCmd) }

func newAgentCmd() *cobra.Command {
	var (
		cfg                     agentd.Config
		listen, metrics         string
		joinTokenFile, logLevel string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent of a host or a SmartNIC",
		Long: `Runs the E3 node agent of one compute node: a host, or a SmartNIC (DPU) of a
server. It registers with the controller with the cluster's join token,
heartbeats every 50 ms, runs the instances the controller places on it
(real handlers, durable state under --data), applies every newer routing
table (older epochs are refused), carries out the migrations and promotions
the tables order, and on a SmartNIC forwards its host's traffic (the
traffic manager) over the host link.

A host and its SmartNIC run one agent each. The SmartNIC listens for its
host's link on TCP at its --listen address; the host dials it when the
controller publishes it, so start them in any order.

  e3 agent --role smartnic --server r0/s1 --controller 10.0.0.1:7400,10.0.0.2:7400 \
      --listen 10.0.1.12:7000 --data /var/lib/e3/agent --join-token-file join.token
  e3 agent --role host --server r0/s1 --controller 10.0.0.1:7400,10.0.0.2:7400 \
      --listen 10.0.1.11:7000 --data /var/lib/e3/agent --join-token-file join.token

Prometheus metrics, /healthz and /v1/status (JSON) are served on --metrics
(default: the --listen IP, port + 100). SIGTERM or SIGINT stops the agent
cleanly; the controller then fails its server over after its failure
timeout. docs/operations.md is the operator's guide.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if cfg.Listen, err = netip.ParseAddrPort(listen); err != nil {
				return fmt.Errorf("--listen %q: want IP:port, e.g. 10.0.1.11:7000: %w", listen, err)
			}
			if cfg.HTTP, err = metricsAddr(metrics, cfg.Listen); err != nil {
				return err
			}
			if cfg.JoinToken, err = readJoinToken(joinTokenFile); err != nil {
				return err
			}
			if cfg.DataDir == "" && cfg.State != agentd.StateMemory {
				cfg.DataDir = defaultAgentDir(cfg.Server, cfg.Role, cfg.Slot)
			}
			if cfg.DataDir != "" && cfg.State != agentd.StateMemory {
				if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
					return fmt.Errorf("--data %s: %w", cfg.DataDir, err)
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := agentd.Start(ctx, cfg)
			if err != nil {
				return err
			}
			where := "state in memory"
			if cfg.State != agentd.StateMemory {
				where = fmt.Sprintf("state %s in %s", cfg.State, cfg.DataDir)
			}
			m := "no metrics"
			if a.HTTPAddr() != "" {
				m = "metrics on http://" + a.HTTPAddr() + "/metrics"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "e3 agent %s: cluster %s, data on %s, %s, %s\n", a.Node(), a.Cluster(), a.Addr(), m, where)
			<-ctx.Done()
			cfg.Logger.Info("stopping", "node", a.Node())
			return a.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Role, "role", "", "host or smartnic (required)")
	f.StringVar(&cfg.Server, "server", "", "the server this node belongs to, as the controller's cluster names it, e.g. r0/s1 (required)")
	f.IntVar(&cfg.Slot, "slot", 0, "the SmartNIC's index on its server (nic0 is 0; servers with several SmartNICs run one agent each)")
	def := []string{"127.0.0.1:7400"}
	if env := os.Getenv("E3_CONTROLLER"); env != "" {
		def = strings.Split(env, ",")
	}
	f.StringSliceVar(&cfg.Controllers, "controller", def, "controller replicas' API addresses, comma separated ($E3_CONTROLLER)")
	f.StringVar(&listen, "listen", "127.0.0.1:7000", "data endpoint IP:port (UDP; a SmartNIC also takes its host link on TCP there); the IP other agents reach")
	f.StringVar(&metrics, "metrics", "", "HTTP address for /metrics, /healthz, /v1/status (default: the --listen IP, port + 100; \"none\" to disable)")
	f.StringVar(&cfg.DataDir, "data", "", "directory for durable state (default e3-agent-SERVER-ROLE in the working directory)")
	f.StringVar(&cfg.State, "state", agentd.StateFsync, "fsync (durable across power loss), disk (no fsync: survives a process crash) or memory")
	f.StringVar(&joinTokenFile, "join-token-file", "", "file holding the cluster join token ($E3_JOIN_TOKEN if not given)")
	f.IntVar(&cfg.Cores, "cores", 0, "worker cores (default: the node's cores in the cluster's topology)")
	f.StringVar(&cfg.Model, "model", "", "Table 4 machine for the modelled-power metric (default: the server's model in the cluster)")
	f.BoolVar(&cfg.RequireBackup, "require-backup", false, "refuse writes to reliable collections while an instance has no backup attached")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// metricsAddr resolves --metrics: empty means the listen IP at the listen
// port + 100 (port 0 stays 0), "none" disables the endpoint.
func metricsAddr(flag string, listen netip.AddrPort) (string, error) {
	switch flag {
	case "none":
		return "", nil
	case "":
		port := listen.Port()
		if port != 0 {
			if port > 65535-100 {
				return "", fmt.Errorf("--listen port %d leaves no port + 100 for metrics; give --metrics", port)
			}
			port += 100
		}
		return netip.AddrPortFrom(listen.Addr(), port).String(), nil
	}
	if _, _, err := splitHostPort(flag); err != nil {
		return "", fmt.Errorf("--metrics %q: want host:port or none: %w", flag, err)
	}
	return flag, nil
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q", s[i+1:])
	}
	return s[:i], p, nil
}

// readJoinToken reads the join token from file, or from $E3_JOIN_TOKEN.
func readJoinToken(file string) (string, error) {
	if file == "" {
		if tok := strings.TrimSpace(os.Getenv("E3_JOIN_TOKEN")); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("no join token: pass --join-token-file (the controller's DATA/join.token by default) or set E3_JOIN_TOKEN")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--join-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// defaultAgentDir names an agent's data directory after its node.
func defaultAgentDir(server, role string, slot int) string {
	name := strings.ReplaceAll(server, "/", "-") + "-" + role
	if role == agentd.RoleSmartNIC {
		name += strconv.Itoa(slot)
	}
	return "e3-agent-" + name
}
