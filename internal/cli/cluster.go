package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/e3-platform/e3/hwmodel"
)

func init() { subcommands = append(subcommands, newClusterCmd) }

// clusterJSON is the --json form of a cluster.
type clusterJSON struct {
	Name          string       `json:"name"`
	Servers       []serverJSON `json:"servers"`
	CostUSD       float64      `json:"cost_usd"`
	IdleW         float64      `json:"idle_w"`
	PeakW         float64      `json:"peak_w"`
	BandwidthGbps float64      `json:"bandwidth_gbps"`
	MemoryGB      float64      `json:"memory_gb"`
	BeefyCores    int          `json:"beefy_cores"`
	WimpyCores    int          `json:"wimpy_cores"`
}

type serverJSON struct {
	Name      string        `json:"name"`
	Model     string        `json:"model"`
	Host      computeJSON   `json:"host"`
	SmartNICs []computeJSON `json:"smartnics"`
	IdleW     float64       `json:"idle_w"`
	PeakW     float64       `json:"peak_w"`
	CostUSD   float64       `json:"cost_usd"`
}

type computeJSON struct {
	Cores    int     `json:"cores"`
	Core     string  `json:"core"`
	MemoryGB float64 `json:"memory_gb"`
	Ports    int     `json:"ports"`
	PortGbps float64 `json:"port_gbps"`
}

func toClusterJSON(c hwmodel.Cluster) clusterJSON {
	out := clusterJSON{
		Name: c.Name, CostUSD: c.CostUSD(), IdleW: c.IdleW(), PeakW: c.PeakW(),
		BandwidthGbps: c.BandwidthGbps(), MemoryGB: c.MemoryGB(),
		BeefyCores: c.BeefyCores(), WimpyCores: c.WimpyCores(),
	}
	i := 0
	for _, mem := range c.Members {
		m := mem.Machine
		for range mem.Count {
			s := serverJSON{
				Name: fmt.Sprintf("s%d", i), Model: m.Name, IdleW: m.IdleW, PeakW: m.PeakW, CostUSD: m.CostUSD,
				Host:      computeJSON{Cores: m.HostCores, Core: m.HostCore.String(), MemoryGB: m.HostMemoryGB, Ports: m.PlainPorts, PortGbps: m.PlainPortGbps},
				SmartNICs: []computeJSON{},
			}
			for range m.NICs {
				s.SmartNICs = append(s.SmartNICs, computeJSON{Cores: m.NIC.Cores, Core: m.NIC.Core.String(), MemoryGB: m.NIC.MemoryGB, Ports: m.NICPortsUsed, PortGbps: m.NIC.PortGbps})
			}
			out.Servers = append(out.Servers, s)
			i++
		}
	}
	return out
}

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The clusters of Table 4"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the named clusters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs := hwmodel.Clusters()
			if asJSON {
				out := make([]clusterJSON, len(cs))
				for i, c := range cs {
					out[i] = toClusterJSON(c)
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSERVERS\tCOST $\tBEEFY CORES\tWIMPY CORES\tMEMORY GB\tIDLE W\tPEAK W\tGB/S")
			for _, c := range cs {
				fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\n", c.Name, c.Servers(), c.CostUSD(),
					c.BeefyCores(), c.WimpyCores(), c.MemoryGB(), c.IdleW(), c.PeakW(), c.BandwidthGbps())
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one cluster's servers, SmartNICs, cost, power and bandwidth",
		Long:  "NAME is a cluster of Table 4 (e3 cluster list) or NxMACHINE, e.g. 8xType2-SmartNIC.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := hwmodel.ClusterByName(args[0])
			if err != nil {
				return err
			}
			j := toClusterJSON(c)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), j)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %d servers, $%.0f, idle %.0f W, peak %.0f W, %.0f Gb/s, %.0f GB\n",
				j.Name, len(j.Servers), j.CostUSD, j.IdleW, j.PeakW, j.BandwidthGbps, j.MemoryGB)
			for _, s := range j.Servers {
				fmt.Fprintf(w, "  %s %s: host %d x %s, %.0f GB", s.Name, s.Model, s.Host.Cores, s.Host.Core, s.Host.MemoryGB)
				if s.Host.Ports > 0 {
					fmt.Fprintf(w, ", %d x %.0f GbE", s.Host.Ports, s.Host.PortGbps)
				}
				for k, n := range s.SmartNICs {
					fmt.Fprintf(w, "; nic%d %d x %s, %.0f GB, %d x %.0f GbE", k, n.Cores, n.Core, n.MemoryGB, n.Ports, n.PortGbps)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list, show)
	return cmd
}
