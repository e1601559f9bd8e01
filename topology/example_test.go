package topology_test

import (
	"fmt"

	"github.com/e3-platform/e3/topology"
)

// The paper's small testbed: three servers with one SmartNIC each under one
// ToR. From the first SmartNIC, HCM would try its own node, then its host,
// then the other SmartNICs, then the other hosts.
func Example() {
	nic := topology.SmartNICSpec{Cores: 12, MemoryMB: 4096, Ports: 2, PortGbps: 10}
	server := topology.ServerSpec{Model: "Type1-SmartNIC", Cores: 12, MemoryMB: 65536, SmartNICs: []topology.SmartNICSpec{nic}}
	t, err := topology.New(server, server, server)
	if err != nil {
		fmt.Println(err)
		return
	}
	from, err := t.Lookup("r0/s0/nic0")
	if err != nil {
		fmt.Println(err)
		return
	}
	for l, n := range t.Levels(from) {
		p := t.Path(from, n)
		fmt.Printf("%d %-13s %-10s via %-9s hops %d\n", l, l, t.Name(n), p.Via, p.SwitchHops)
	}
	fmt.Println(t.HostPorts(1))
	// Output:
	// 0 same-node     r0/s0/nic0 via queue     hops 0
	// 1 same-server   r0/s0/host via host-link hops 0
	// 2 rack-smartnic r0/s1/nic0 via tor       hops 1
	// 2 rack-smartnic r0/s2/nic0 via tor       hops 1
	// 3 rack-host     r0/s1/host via tor       hops 1
	// 3 rack-host     r0/s2/host via tor       hops 1
	// [{3 0} {3 1}]
}

// A FatTree of 2,000 servers of 40 per rack, 10 racks per pod: from a host,
// the near levels are small and the far ones hold the rest.
func ExampleFatTree() {
	nic := topology.SmartNICSpec{Cores: 12, MemoryMB: 4096, Ports: 2, PortGbps: 10}
	t, err := topology.FatTree(topology.FatTreeOptions{
		Servers:     2000,
		RacksPerPod: 10,
		Server: topology.ServerSpec{Model: "Type2-SmartNIC", Cores: 16, MemoryMB: 131072,
			SmartNICs: []topology.SmartNICSpec{nic, nic, nic, nic}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t)
	from, _ := t.Lookup("r12/s7/host")
	for l := range topology.NumLevels {
		fmt.Printf("%-16s %d\n", l, t.LevelSize(from, l))
	}
	// Output:
	// 10000 nodes on 2000 servers in 50 racks, 5 pods
	// same-node        1
	// same-server      4
	// rack-smartnic    156
	// rack-host        39
	// pod-smartnic     1440
	// pod-host         360
	// cluster-smartnic 6400
	// cluster-host     1600
}
