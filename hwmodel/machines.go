package hwmodel

import (
	"fmt"
	"sort"
	"strings"
)

// CoreKind is a processor core model. Service demand depends on it.
type CoreKind uint8

const (
	// XeonE5v3 is the Xeon E5-2680 v3 at 2.5 GHz of Beefy and Type1 servers,
	// the processor Table 1's host columns were measured on.
	XeonE5v3 CoreKind = iota
	// XeonE5_2620 is the 8-core E5-2620 at 2.1 GHz, two per Type2 server.
	XeonE5_2620
	// XeonPlatinum8160 is the 24-core Xeon Platinum 8160 at 2.1 GHz of
	// SuperBeefy.
	XeonPlatinum8160
	// CnMIPS64 is a 1.2 GHz cnMIPS64 core: the LiquidIO II SmartNIC's, and
	// the CN6880's of the Wimpy server.
	CnMIPS64
)

// ClockGHz returns the nominal clock of the core.
func (k CoreKind) ClockGHz() float64 {
	switch k {
	case XeonE5v3:
		return 2.5
	case XeonE5_2620, XeonPlatinum8160:
		return 2.1
	case CnMIPS64:
		return 1.2
	}
	return 0
}

// Wimpy reports whether the core is a low-power cnMIPS core.
func (k CoreKind) Wimpy() bool { return k == CnMIPS64 }

func (k CoreKind) String() string {
	switch k {
	case XeonE5v3:
		return "Xeon E5-2680 v3"
	case XeonE5_2620:
		return "Xeon E5-2620"
	case XeonPlatinum8160:
		return "Xeon Platinum 8160"
	case CnMIPS64:
		return "cnMIPS64"
	}
	return "unknown"
}

// NICProfile describes a SmartNIC model.
type NICProfile struct {
	Name     string
	Core     CoreKind
	Cores    int
	MemoryGB float64
	Ports    int     // MAC ports on the card
	PortGbps float64 // per port
	// PerCoreSleep is false for the LiquidIO II: all cores stay active.
	PerCoreSleep bool
	// Accelerators on the card; descriptive.
	Accelerators []string
}

// LiquidIOII is the Cavium LiquidIO II SmartNIC of the paper: one OCTEON
// processor with 12 cnMIPS64 cores at 1.2 GHz, 4 GB, two 10 GbE ports.
var LiquidIOII = NICProfile{
	Name:         "LiquidIO II",
	Core:         CnMIPS64,
	Cores:        12,
	MemoryGB:     4,
	Ports:        2,
	PortGbps:     10,
	PerCoreSleep: false,
	Accelerators: []string{"crypto", "pattern", "atomics", "fpu"},
}

// Machine is one server model of Table 4.
type Machine struct {
	Name    string
	CostUSD float64
	// Host processor.
	HostCore     CoreKind
	HostCores    int
	HostMemoryGB float64
	// SmartNICs; NIC is meaningful only when NICs > 0.
	NICs int
	NIC  NICProfile
	// NICPortsUsed is how many ports of each SmartNIC are cabled to the
	// ToR. Table 4 gives Type2 40 Gb/s with four dual-port cards, so one
	// port per card is cabled there.
	NICPortsUsed int
	// PlainPorts and PlainPortGbps describe a conventional NIC, for servers
	// without SmartNICs.
	PlainPorts    int
	PlainPortGbps float64
	IdleW, PeakW  float64 // wall power, Table 4
	// Printed Table 4 columns, kept to check the model against.
	TableMemoryGB float64
	TableBwGbps   float64
}

// MemoryGB is the total memory, host plus SmartNICs.
func (m Machine) MemoryGB() float64 { return m.HostMemoryGB + float64(m.NICs)*m.NIC.MemoryGB }

// BandwidthGbps is the network bandwidth the server has to its ToR.
func (m Machine) BandwidthGbps() float64 {
	if m.NICs > 0 {
		return float64(m.NICs*m.NICPortsUsed) * m.NIC.PortGbps
	}
	return float64(m.PlainPorts) * m.PlainPortGbps
}

// NICCoreTotal is the number of SmartNIC cores in the server.
func (m Machine) NICCoreTotal() int { return m.NICs * m.NIC.Cores }

// The machines of Table 4.
var (
	Beefy = Machine{Name: "Beefy", CostUSD: 4500, HostCore: XeonE5v3, HostCores: 12, HostMemoryGB: 64,
		PlainPorts: 2, PlainPortGbps: 10, IdleW: 83, PeakW: 201, TableMemoryGB: 64, TableBwGbps: 20}
	Wimpy = Machine{Name: "Wimpy", CostUSD: 2209, HostCore: CnMIPS64, HostCores: 32, HostMemoryGB: 2,
		PlainPorts: 2, PlainPortGbps: 10, IdleW: 79, PeakW: 95, TableMemoryGB: 2, TableBwGbps: 20}
	Type1SmartNIC = Machine{Name: "Type1-SmartNIC", CostUSD: 4650, HostCore: XeonE5v3, HostCores: 12, HostMemoryGB: 64,
		NICs: 1, NIC: LiquidIOII, NICPortsUsed: 2, IdleW: 98, PeakW: 222, TableMemoryGB: 68, TableBwGbps: 20}
	Type2SmartNIC = Machine{Name: "Type2-SmartNIC", CostUSD: 6750, HostCore: XeonE5_2620, HostCores: 16, HostMemoryGB: 128,
		NICs: 4, NIC: LiquidIOII, NICPortsUsed: 1, IdleW: 145, PeakW: 252, TableMemoryGB: 144, TableBwGbps: 40}
	SuperBeefy = Machine{Name: "SuperBeefy", CostUSD: 12550, HostCore: XeonPlatinum8160, HostCores: 24, HostMemoryGB: 192,
		PlainPorts: 2, PlainPortGbps: 40, IdleW: 77, PeakW: 256, TableMemoryGB: 192, TableBwGbps: 80}
)

// Machines returns the server models of Table 4 in table order.
func Machines() []Machine {
	return []Machine{Beefy, Wimpy, Type1SmartNIC, Type2SmartNIC, SuperBeefy}
}

// Member is a number of identical servers in a cluster.
type Member struct {
	Machine Machine
	Count   int
}

// Cluster is a named set of servers under one ToR.
type Cluster struct {
	Name    string
	Members []Member
	// TableCostUSD is Table 4's printed cost for the clusters it lists
	// (zero otherwise). It can differ from the sum of the machine prices:
	// for 2xBeefy+2xWimpy the table prints 13,018 while the machines sum
	// to 13,418. CostUSD uses the sum; docs/MODEL.md records the
	// discrepancy.
	TableCostUSD float64
}

func cl(name string, tableCost float64, ms ...Member) Cluster {
	return Cluster{Name: name, Members: ms, TableCostUSD: tableCost}
}

var clusters = []Cluster{
	cl("4xBeefy", 18000, Member{Beefy, 4}),
	cl("4xWimpy", 8836, Member{Wimpy, 4}),
	cl("2xBeefy+2xWimpy", 13018, Member{Beefy, 2}, Member{Wimpy, 2}),
	cl("2xType2-SmartNIC", 13500, Member{Type2SmartNIC, 2}),
	cl("1xSuperBeefy", 12550, Member{SuperBeefy, 1}),
	cl("3xBeefy", 0, Member{Beefy, 3}),
	cl("3xType1-SmartNIC", 0, Member{Type1SmartNIC, 3}),
}

// Clusters returns the clusters of Table 4 plus the two three-server
// clusters of the end-to-end experiments, in a fixed order.
func Clusters() []Cluster { return append([]Cluster(nil), clusters...) }

// ClusterNames returns the names accepted by [ClusterByName].
func ClusterNames() []string {
	out := make([]string, len(clusters))
	for i, c := range clusters {
		out[i] = c.Name
	}
	return out
}

// ClusterByName finds a cluster by name, ignoring case. Besides the named
// clusters it accepts "NxMACHINE" for any machine of Table 4 ("8xType2-SmartNIC").
func ClusterByName(name string) (Cluster, error) {
	for _, c := range clusters {
		if strings.EqualFold(c.Name, name) {
			return c, nil
		}
	}
	if n, mname, ok := strings.Cut(name, "x"); ok {
		var count int
		if _, err := fmt.Sscanf(n, "%d", &count); err == nil && count > 0 {
			for _, m := range Machines() {
				if strings.EqualFold(m.Name, mname) {
					return Cluster{Name: fmt.Sprintf("%dx%s", count, m.Name), Members: []Member{{m, count}}}, nil
				}
			}
		}
	}
	names := ClusterNames()
	sort.Strings(names)
	return Cluster{}, fmt.Errorf("hwmodel: unknown cluster %q (known: %s, or NxMACHINE with MACHINE one of Beefy, Wimpy, Type1-SmartNIC, Type2-SmartNIC, SuperBeefy)", name, strings.Join(names, ", "))
}

// Servers returns the number of servers.
func (c Cluster) Servers() int {
	n := 0
	for _, m := range c.Members {
		n += m.Count
	}
	return n
}

func (c Cluster) sum(f func(Machine) float64) float64 {
	s := 0.0
	for _, m := range c.Members {
		s += float64(m.Count) * f(m.Machine)
	}
	return s
}

// CostUSD is the sum of the machine prices.
func (c Cluster) CostUSD() float64 { return c.sum(func(m Machine) float64 { return m.CostUSD }) }

// IdleW is the cluster's idle wall power.
func (c Cluster) IdleW() float64 { return c.sum(func(m Machine) float64 { return m.IdleW }) }

// PeakW is the cluster's wall power with every core busy.
func (c Cluster) PeakW() float64 { return c.sum(func(m Machine) float64 { return m.PeakW }) }

// MemoryGB is the total memory.
func (c Cluster) MemoryGB() float64 { return c.sum(Machine.MemoryGB) }

// BandwidthGbps is the aggregate network bandwidth.
func (c Cluster) BandwidthGbps() float64 { return c.sum(Machine.BandwidthGbps) }

// BeefyCores counts Xeon cores and WimpyCores cnMIPS cores (host or
// SmartNIC), the BC and WC columns of Table 4.
func (c Cluster) BeefyCores() int {
	return int(c.sum(func(m Machine) float64 {
		if m.HostCore.Wimpy() {
			return 0
		}
		return float64(m.HostCores)
	}))
}

// WimpyCores counts cnMIPS cores, host or SmartNIC.
func (c Cluster) WimpyCores() int {
	return int(c.sum(func(m Machine) float64 {
		n := m.NICCoreTotal()
		if m.HostCore.Wimpy() {
			n += m.HostCores
		}
		return float64(n)
	}))
}
