package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release version, set at link time with
// -ldflags "-X github.com/e3-platform/e3/internal/cli.Version=v0.1.0".
var Version = "dev"

func init() {
	subcommands = append(subcommands, func() *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the e3 version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				rev := ""
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" && len(s.Value) >= 12 {
							rev = " (" + s.Value[:12] + ")"
						}
					}
					fmt.Fprintf(cmd.OutOrStdout(), "e3 %s%s %s\n", Version, rev, bi.GoVersion)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "e3 %s\n", Version)
				return nil
			},
		}
	})
}
