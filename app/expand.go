package app

import "strconv"

// expand builds the instances and links of a checked App and computes the
// expected traffic of every node, edge, instance and link.
//
// Traffic model: one request entering the application is split over the
// sources by the workload mix and, within a source, evenly over its shards
// (the ToR's ECMP spreads client connections). Every message a node
// processes leads to one message on each outgoing edge with probability
// Share. KeyHash spreads keys, assumed uniform, evenly over the shards it can
// reach; RoundRobin spreads evenly over all shards; Broadcast delivers a copy
// to every shard. Backups take no part: they receive state replication only.
func (a *App) expand() {
	// Ingress split.
	total := 0.0
	for _, s := range a.sources {
		if a.Workload.Mix != nil {
			total += a.Workload.Mix[s.Name]
		} else {
			total++
		}
	}
	for _, s := range a.sources {
		w := 1.0
		if a.Workload.Mix != nil {
			w = a.Workload.Mix[s.Name]
		}
		s.Ingress = w / total
	}
	norm := make(map[string]float64, len(a.sources))
	for _, s := range a.sources {
		norm[s.Name] = s.Ingress
	}
	a.Workload.Mix = norm

	// Instances, grouped by node in topological order.
	n := 0
	for _, nd := range a.nodes {
		n += nd.Shards * (1 + nd.Backups)
	}
	a.instances = make([]*Instance, 0, n)
	a.byID = make(map[string]*Instance, n)
	islab := make([]Instance, n)
	for _, nd := range a.nodes {
		nd.instances = make([]*Instance, 0, nd.Shards*(1+nd.Backups))
		for s := 0; s < nd.Shards; s++ {
			id := nd.Name + "." + strconv.Itoa(s)
			p := &islab[len(a.instances)]
			*p = Instance{ID: id, Node: nd, Shard: s, Index: len(a.instances)}
			p.Primary = p
			p.Rate = nd.Ingress / float64(nd.Shards)
			a.add(p)
			if nd.Backups > 0 {
				p.Backups = make([]*Instance, 0, nd.Backups)
			}
			for r := 1; r <= nd.Backups; r++ {
				b := &islab[len(a.instances)]
				*b = Instance{ID: id + ".b" + strconv.Itoa(r), Node: nd, Shard: s, Replica: r, Primary: p, Index: len(a.instances)}
				p.Backups = append(p.Backups, b)
				a.add(b)
			}
		}
	}

	// Links, grouped by edge in spec order. Counts are known up front, so
	// links and the Out/In slices live in a few large arrays: an
	// application at the link limit loads in one allocation per kind.
	perSrc := make([]int, len(a.edges)) // destinations per sending shard
	nlinks := 0
	for i, e := range a.edges {
		perSrc[i] = e.To.Shards / e.step()
		nlinks += e.From.Shards * perSrc[i]
	}
	slab := make([]Link, nlinks)
	a.links = make([]*Link, nlinks)
	outs := make([]*Link, nlinks)
	ins := make([]*Link, nlinks)
	for _, nd := range a.nodes {
		out, in := 0, 0
		for _, e := range nd.Out {
			out += perSrc[e.Index]
		}
		for _, e := range nd.In {
			in += e.From.Shards / e.step()
		}
		for s := 0; s < nd.Shards; s++ {
			p := nd.Primary(s)
			p.Out, outs = outs[:0:out], outs[out:]
			p.In, ins = ins[:0:in], ins[in:]
		}
	}
	k := 0
	for _, e := range a.edges {
		step := e.step()
		for s := 0; s < e.From.Shards; s++ {
			src := e.From.Primary(s)
			for d := s % step; d < e.To.Shards; d += step {
				dst := e.To.Primary(d)
				l := &slab[k]
				*l = Link{From: src, To: dst, Edge: e}
				a.links[k] = l
				k++
				src.Out = append(src.Out, l)
				dst.In = append(dst.In, l)
			}
		}
	}

	// Rates, in topological order so that every sender's rate is final
	// before its messages are counted at the receivers.
	for _, nd := range a.nodes {
		nd.Rate = nd.Ingress
		for _, e := range nd.In {
			if e.Policy == Broadcast {
				nd.Rate += e.Rate * float64(nd.Shards)
			} else {
				nd.Rate += e.Rate
			}
		}
		for _, e := range nd.Out {
			e.Rate = nd.Rate * e.Share
		}
		for s := 0; s < nd.Shards; s++ {
			p := nd.Primary(s)
			for _, l := range p.Out {
				r := p.Rate * l.Edge.Share
				if l.Edge.Policy != Broadcast {
					r /= float64(perSrc[l.Edge.Index])
				}
				l.Rate = r
				l.To.Rate += r
			}
		}
	}
}

// step is the stride between the destination shards one sending shard
// reaches: gcd of the shard counts for a key: same edge, else 1 (all).
func (e *Edge) step() int {
	if e.Policy == KeyHash && e.SameKey {
		return gcd(e.From.Shards, e.To.Shards)
	}
	return 1
}

func (a *App) add(i *Instance) {
	i.Node.instances = append(i.Node.instances, i)
	a.instances = append(a.instances, i)
	a.byID[i.ID] = i
}
