package placement

import (
	"testing"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

// clusterOf builds a placement cluster of the named hwmodel cluster.
func clusterOf(t testing.TB, name string) *Cluster {
	t.Helper()
	hc, err := hwmodel.ClusterByName(name)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(hc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fatTree builds a fat tree of Type2-SmartNIC servers.
func fatTree(t testing.TB, servers, perRack, racksPerPod int) *Cluster {
	t.Helper()
	topo, err := topology.FatTree(topology.FatTreeOptions{Servers: servers, ServersPerRack: perRack, RacksPerPod: racksPerPod,
		Server: hwmodel.ServerSpec(hwmodel.Type2SmartNIC)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func node(t testing.TB, c *Cluster, name string) topology.NodeID {
	t.Helper()
	n, err := c.Topology().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
