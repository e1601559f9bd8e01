package placement

import (
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

// TestPackByMemory packs every built-in application on 3xType1-SmartNIC
// and checks what X6 relies on: every instance placed, no pin, fault
// domain or memory constraint broken, SQL (pinned to hosts) on hosts, and
// as many primaries on SmartNICs as memory allows: no primary on a host
// could have gone to a SmartNIC with its memory still free.
func TestPackByMemory(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	apps, err := app.Builtins(services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	topo := c.Topology()
	for _, a := range apps {
		p, err := FromApp(a, NewLoad(c), 1e4)
		if err != nil {
			t.Fatal(err)
		}
		asg := PackByMemory(p)
		s := NewState(p)
		for i, n := range asg {
			if n == Unassigned {
				t.Fatalf("%s: %s unassigned", a.Name, p.Instance(InstanceID(i)).Name)
			}
			if err := s.Assign(InstanceID(i), n); err != nil {
				t.Fatal(err)
			}
		}
		onNIC, primaries := 0, 0
		for i, n := range asg {
			id := InstanceID(i)
			in := p.Instance(id)
			// The checkers judge adding an instance: take it off, ask, put it back.
			s.Unassign(id)
			if !fits(s, id, n) {
				t.Errorf("%s: %s on %s breaks the pin, fault-domain or memory constraint", a.Name, in.Name, topo.Name(n))
			}
			if err := s.Assign(id, n); err != nil {
				t.Fatal(err)
			}
			if in.IsBackup() {
				continue
			}
			primaries++
			if topo.Node(n).Kind == topology.SmartNIC {
				onNIC++
				continue
			}
			if in.Pin == PinAny {
				// A primary on a host: no SmartNIC could take it (memory or
				// fault domain), else the packing stopped too early.
				s.Unassign(id)
				for m := range topo.Nodes() {
					if topo.Node(m).Kind != topology.SmartNIC {
						continue
					}
					if fits(s, id, m) {
						t.Errorf("%s: primary %s on host %s though SmartNIC %s could take it", a.Name, in.Name, topo.Name(n), topo.Name(m))
						break
					}
				}
				if err := s.Assign(id, n); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Logf("%s: %d of %d primaries on SmartNICs", a.Name, onNIC, primaries)
		if onNIC == 0 {
			t.Errorf("%s: no primary on a SmartNIC", a.Name)
		}
	}
}

// fits says whether the pin, fault-domain and memory checkers accept
// instance i on node n.
func fits(s *State, i InstanceID, n topology.NodeID) bool {
	for _, c := range []Checker{PinCheck{}, FaultDomainCheck{}, MemoryCheck{}} {
		if !c.Check(s, i, n).OK() {
			return false
		}
	}
	return true
}
