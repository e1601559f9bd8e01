package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/controller"
)

func init() { subcommands = append(subcommands, newControllerCmd) }

func newControllerCmd() *cobra.Command {
	var (
		cfg                       controller.Config
		join                      []string
		tokenFile, joinTokenFile  string
		logLevel                  string
		raftLog                   bool
		failureTimeout, heartbeat time.Duration
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run a replica of the E3 resource controller",
		Long: `Runs one replica of the replicated resource controller: its state (registered
agents, applications, placements, migrations, routing epochs) is replicated
with raft over TCP on --raft, and its HTTP/JSON API listens on --http
(docs/controller.md is the reference).

One replica is the default: started on an empty --data directory without
--join it bootstraps a cluster of its own. For three or five replicas start
the first with --bootstrap and the others with --join pointing at its API:

  e3 controller --id c1 --raft 10.0.0.1:7401 --http 10.0.0.1:7400 --data /var/lib/e3/c1 \
      --bootstrap --token-file admin.token --join-token-file join.token
  e3 controller --id c2 --raft 10.0.0.2:7401 --http 10.0.0.2:7400 --data /var/lib/e3/c2 \
      --join 10.0.0.1:7400 --token-file admin.token --join-token-file join.token

Every replica needs the same two tokens: the admin token for deploy,
undeploy, plan and membership, the join token for agents. Without
--token-file / --join-token-file the replica creates random tokens in its
data directory (admin.token, join.token) on first start and reuses them.
A restarted replica resumes from its data directory; --bootstrap and --join
are then ignored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg.Logger = log
			if raftLog {
				cfg.RaftLog = cmd.ErrOrStderr()
			}
			cfg.Join = join
			cfg.FailureTimeout, cfg.HeartbeatPeriod = failureTimeout, heartbeat
			if cfg.DataDir == "" {
				cfg.DataDir = "e3-controller-" + cfg.ID
			}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("--data %s: %w", cfg.DataDir, err)
			}
			if cfg.AdminToken, err = loadToken(tokenFile, filepath.Join(cfg.DataDir, "admin.token"), "--token-file", cmd.ErrOrStderr()); err != nil {
				return err
			}
			if cfg.JoinToken, err = loadToken(joinTokenFile, filepath.Join(cfg.DataDir, "join.token"), "--join-token-file", cmd.ErrOrStderr()); err != nil {
				return err
			}
			s, err := controller.New(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "e3 controller %s: API on http://%s, raft on %s, data in %s\n", cfg.ID, s.APIAddr(), s.RaftAddr(), cfg.DataDir)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			got := <-sig
			log.Info("stopping", "signal", got.String())
			return s.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "c1", "this replica's name in the raft configuration")
	f.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:7401", "raft transport listen address (host:port, a specific IP unless --raft-advertise is set)")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "raft address peers dial, if not --raft")
	f.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:7400", "HTTP API listen address")
	f.StringVar(&cfg.APIAdvertise, "api-advertise", "", "API address other replicas and clients reach, if not --http")
	f.StringVar(&cfg.DataDir, "data", "", "data directory: raft log (raft.db), snapshots, generated tokens (default e3-controller-ID)")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new controller cluster with this replica as its first member")
	f.StringSliceVar(&join, "join", nil, "API address(es) of existing replicas to join through (host:port, comma separated)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the admin token (default DATA/admin.token, created if missing)")
	f.StringVar(&joinTokenFile, "join-token-file", "", "file holding the cluster join token for agents (default DATA/join.token, created if missing)")
	f.StringVar(&cfg.Cluster, "cluster", controller.DefaultCluster, "the cluster of Table 4 (or NxMACHINE) whose nodes agents register as")
	f.StringVar(&cfg.Algo, "algo", controller.DefaultAlgo, "default placement algorithm")
	f.DurationVar(&failureTimeout, "failure-timeout", controller.DefaultFailureTimeout, "an agent silent this long is failed with its server")
	f.DurationVar(&heartbeat, "heartbeat", controller.DefaultHeartbeatPeriod, "the agents' heartbeat period")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&raftLog, "raft-log", false, "print raft's own warnings to stderr")
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// loadToken reads a token from file, or, with no file named, from the
// default path, creating it with a random token on first use.
func loadToken(file, def, flag string, stderr io.Writer) (string, error) {
	path := file
	if path == "" {
		path = def
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			var b [24]byte
			if _, err := rand.Read(b[:]); err != nil {
				return "", err
			}
			if err := os.WriteFile(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil {
				return "", fmt.Errorf("creating %s: %w", path, err)
			}
			fmt.Fprintf(stderr, "e3 controller: created a random token in %s (give it to %s of the other replicas)\n", path, flag)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < controller.MinTokenLength {
		return "", fmt.Errorf("%s %s: the token is %d bytes, want at least %d", flag, path, len(tok), controller.MinTokenLength)
	}
	return tok, nil
}
