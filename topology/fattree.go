package topology

import "fmt"

// DefaultServersPerRack is the rack size of the paper's scale experiments.
const DefaultServersPerRack = 40

// FatTreeOptions shapes a generated fat tree. Zero fields take defaults
// derived from ServersPerRack as in a k-ary fat tree with k =
// 2*ServersPerRack: a ToR has k/2 servers below it, a pod has k/2 racks and
// k/2 aggregation switches, each aggregation switch has k/2 core uplinks,
// so there are (k/2)^2 core switches. With the default 40 servers per rack
// that is k = 80: pods of 40 racks (1,600 servers), 1,600 core switches,
// room for 128,000 servers in 80 pods. More servers than a k-ary tree holds
// simply add pods.
type FatTreeOptions struct {
	// Servers is the number of servers; required, 1..MaxServers.
	Servers int
	// Server is the spec every server is built from.
	Server ServerSpec
	// ServersPerRack defaults to DefaultServersPerRack. Racks fill in
	// order; only the last rack may be partly filled.
	ServersPerRack int
	// RacksPerPod defaults to ServersPerRack. Pods fill in order; only the
	// last pod may be partly filled.
	RacksPerPod int
	// Fabric describes the switches above the ToRs. AggregationPerPod and
	// CoreUplinks default to RacksPerPod; UplinkGbps to DefaultUplinkGbps.
	Fabric Fabric
}

// validate checks o and fills its defaults. It is the only place that
// knows the defaults.
func (o *FatTreeOptions) validate() error {
	if o.Servers <= 0 || o.Servers > MaxServers {
		return fmt.Errorf("topology: FatTreeOptions.Servers = %d, want 1..%d", o.Servers, MaxServers)
	}
	if o.ServersPerRack < 0 {
		return fmt.Errorf("topology: FatTreeOptions.ServersPerRack = %d, want > 0 (0 means %d)", o.ServersPerRack, DefaultServersPerRack)
	}
	if o.RacksPerPod < 0 {
		return fmt.Errorf("topology: FatTreeOptions.RacksPerPod = %d, want > 0 (0 means ServersPerRack)", o.RacksPerPod)
	}
	if o.ServersPerRack == 0 {
		o.ServersPerRack = DefaultServersPerRack
	}
	if o.RacksPerPod == 0 {
		o.RacksPerPod = o.ServersPerRack
	}
	if o.Fabric.AggregationPerPod == 0 {
		o.Fabric.AggregationPerPod = o.RacksPerPod
	}
	if o.Fabric.CoreUplinks == 0 {
		o.Fabric.CoreUplinks = o.RacksPerPod
	}
	if err := o.Fabric.validate(); err != nil {
		return err
	}
	return nil
}

// FatTree generates a cluster of o.Servers identical servers, racked and
// podded as o describes. Server i is in rack i/ServersPerRack, and rack r in
// pod r/RacksPerPod.
func FatTree(o FatTreeOptions) (*Topology, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	b := Builder{Fabric: o.Fabric}
	spec, err := b.spec(&o.Server)
	if err != nil {
		return nil, fmt.Errorf("topology: FatTreeOptions.Server (model %q): %w", o.Server.Model, err)
	}
	racks := (o.Servers + o.ServersPerRack - 1) / o.ServersPerRack
	pods := (racks + o.RacksPerPod - 1) / o.RacksPerPod
	b.grow(o.Servers, o.Servers*(1+len(o.Server.SmartNICs)), racks, pods)
	for s := range o.Servers {
		if s%o.ServersPerRack == 0 {
			if (s/o.ServersPerRack)%o.RacksPerPod == 0 {
				b.AddPod()
			}
			b.AddRack()
		}
		b.addServer(spec)
	}
	return b.Build()
}
