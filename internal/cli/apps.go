package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
)

func init() { subcommands = append(subcommands, newAppsCmd) }

// appSummaryJSON is one row of `e3 apps --json`.
type appSummaryJSON struct {
	Name          string   `json:"name"`
	Class         string   `json:"class"`
	DAGNodes      int      `json:"dag_nodes"`
	Microservices []string `json:"microservices"`
	Description   string   `json:"description"`
}

func newAppsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List the built-in applications (Table 3)",
		Long: `Lists the eight built-in applications of the paper's Table 3: class, DAG
node count N (every instance, backups included) and microservices.
'e3 app show NAME' prints one expanded; 'e3 app spec NAME' its YAML.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apps, err := app.Builtins(services.Registry())
			if err != nil {
				return err
			}
			rows := make([]appSummaryJSON, len(apps))
			for i, a := range apps {
				rows[i] = appSummaryJSON{Name: a.Name, Class: string(a.Class), DAGNodes: len(a.Instances()), Microservices: a.Services(), Description: a.Description}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCLASS\tDAG NODES\tMICROSERVICES")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Name, r.Class, r.DAGNodes, strings.Join(r.Microservices, ", "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
