package placement

import (
	"fmt"
	"math"

	"github.com/e3-platform/e3/app"
)

// FromApp builds the problem of placing application a, offered offeredRPS
// requests a second, on load. Instance i of the problem is a's instance i
// (a.Instances()[i]), so IDs, names ("sql.3", "sql.3.b1") and order carry
// over.
//
// Rates come from the application's traffic model (see package app): a's
// instances and links carry the expected messages per request entering the
// application, derived from the ingress mix over the sources, an even split
// over a node's shards, the edges' shares and their routing policies. Here
// each is multiplied by offeredRPS: an instance's RPS is the messages it
// processes a second, its IngressRPS the client requests that enter at it
// (the node's ingress share over its shards), and an edge's RPS the
// messages a second on one link between two primaries. Every message is
// taken to be the workload's request size. Backups carry their service's
// memory and no traffic. Memory and migratability come from the service
// descriptors, demand from hwmodel's Table 1, and pinning from the spec
// (a non-migratable service is pinned to hosts).
func FromApp(a *app.App, load *Load, offeredRPS float64) (*Problem, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: FromApp: nil application", ErrBadProblem)
	}
	if !(offeredRPS >= 0) || math.IsInf(offeredRPS, 0) {
		return nil, fmt.Errorf("%w: FromApp(%s): offered load %v, want a finite rate >= 0", ErrBadProblem, a.Name, offeredRPS)
	}
	p := NewProblem(load)
	bytes := float64(a.Workload.RequestSize)
	for _, inst := range a.Instances() {
		nd := inst.Node
		if nd.Descriptor == nil {
			return nil, fmt.Errorf("%w: FromApp(%s): node %s has no service descriptor", ErrBadProblem, a.Name, nd.Name)
		}
		in := Instance{
			Name:          inst.ID,
			App:           a.Name,
			Service:       nd.Service,
			NonMigratable: !nd.Descriptor.Migratable,
			MemoryMB:      float64(nd.Descriptor.MemoryMB),
			Bytes:         bytes,
		}
		switch nd.Pin {
		case app.PinHost:
			in.Pin = PinHost
		case app.PinSmartNIC:
			in.Pin = PinSmartNIC
		}
		var id InstanceID
		if inst.IsPrimary() {
			in.RPS = offeredRPS * inst.Rate
			in.IngressRPS = min(offeredRPS*nd.Ingress/float64(nd.Shards), in.RPS)
			in.Source = nd.IsSource()
			id = p.AddInstance(in)
		} else {
			id = p.AddBackup(InstanceID(inst.Primary.Index), in)
		}
		if int(id) != inst.Index {
			return nil, fmt.Errorf("placement: FromApp(%s): instance %s got ID %d, want its index %d", a.Name, inst.ID, id, inst.Index)
		}
	}
	for _, l := range a.Links() {
		p.AddEdge(InstanceID(l.From.Index), InstanceID(l.To.Index), offeredRPS*l.Rate, bytes)
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("FromApp(%s): %w", a.Name, err)
	}
	return p, nil
}
