package hwmodel

import (
	"fmt"
	"strings"

	"github.com/e3-platform/e3/topology"
)

// MachineByName finds a machine of Table 4 by name, ignoring case. The
// name is the one [ServerSpec] writes into topology.ServerSpec.Model, so
// this is how placement and the simulator get from a server of a topology
// back to its power and demand profile.
func MachineByName(name string) (Machine, bool) {
	for _, m := range Machines() {
		if strings.EqualFold(m.Name, name) {
			return m, true
		}
	}
	return Machine{}, false
}

// ServerSpec describes machine m for the topology builders: its host
// processor, its plain NIC ports, and one SmartNIC per card with only the
// ports cabled to the ToR ([Machine.NICPortsUsed]), so that the topology's
// bandwidth equals Table 4's. The host link takes topology's PCIe default.
func ServerSpec(m Machine) topology.ServerSpec {
	s := topology.ServerSpec{
		Model:    m.Name,
		Cores:    m.HostCores,
		MemoryMB: int(m.HostMemoryGB * 1024),
		NICPorts: m.PlainPorts,
		NICGbps:  m.PlainPortGbps,
	}
	for range m.NICs {
		s.SmartNICs = append(s.SmartNICs, topology.SmartNICSpec{
			Cores:    m.NIC.Cores,
			MemoryMB: int(m.NIC.MemoryGB * 1024),
			Ports:    m.NICPortsUsed,
			PortGbps: m.NIC.PortGbps,
		})
	}
	return s
}

// Topology builds the single-rack cluster c: its members' servers in
// order under one ToR switch, as in the paper's testbed.
func Topology(c Cluster) (*topology.Topology, error) {
	var specs []topology.ServerSpec
	for _, mem := range c.Members {
		if mem.Count < 0 {
			return nil, fmt.Errorf("hwmodel: cluster %q: %d x %s, want a count >= 0", c.Name, mem.Count, mem.Machine.Name)
		}
		spec := ServerSpec(mem.Machine)
		for range mem.Count {
			specs = append(specs, spec)
		}
	}
	t, err := topology.New(specs...)
	if err != nil {
		return nil, fmt.Errorf("hwmodel: cluster %q: %w", c.Name, err)
	}
	return t, nil
}
