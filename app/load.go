package app

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"

	"github.com/e3-platform/e3/service"
)

// Load parses, validates and expands the YAML spec in data. file names the
// spec in errors ("apps/shop.yaml"). Every microservice the spec names is
// resolved through cat, usually services.Registry().
//
// On failure the error is an ErrorList holding every problem found, each
// naming the file, line and field. Load never panics, whatever data holds.
func Load(file string, data []byte, cat Catalog) (*App, error) {
	d := &decoder{file: file}
	raw := d.decode(data)
	if raw == nil {
		d.errs.sort()
		return nil, d.errs
	}
	a := d.check(raw, cat)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	a.expand()
	return a, nil
}

// check runs the semantic checks on a decoded spec and, when they pass,
// returns the App with its nodes and edges resolved (not yet expanded).
func (d *decoder) check(raw *rawSpec, cat Catalog) *App {
	a := &App{
		Name:        raw.name,
		Class:       Class(raw.class),
		Description: raw.description,
		File:        d.file,
		Workload:    raw.workload,
		byName:      map[string]*Node{},
	}

	// Nodes: resolve services and pins.
	var specOrder []*Node
	for _, rn := range raw.nodes {
		if _, dup := a.byName[rn.name]; dup {
			continue // reported by the decoder
		}
		n := &Node{Name: rn.name, Service: rn.service, Shards: rn.shards, Backups: rn.backups, Pin: rn.pin, Config: rn.config, Line: rn.line}
		if n.Config == nil {
			n.Config = map[string]string{}
		}
		a.byName[n.Name] = n
		specOrder = append(specOrder, n)
		if !rn.serviceOK {
			continue
		}
		desc, ok := cat.Lookup(rn.service)
		if !ok || desc == nil {
			msg := fmt.Sprintf("unknown microservice %q", rn.service)
			if names, ok := cat.(interface{ Names() []string }); ok && d.spendSuggestion() {
				if s := nearest(rn.service, names.Names()); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				} else {
					msg += fmt.Sprintf(" (known: %s)", strings.Join(names.Names(), ", "))
				}
			}
			d.add(rn.lines["service"], rn.field+".service", "%s", msg)
			continue
		}
		n.Descriptor = desc
		if !desc.Migratable {
			// Placement can only move such a service by losing its state, and
			// the orchestrator relieves an overloaded SmartNIC by migrating:
			// so it lives on a host, as the paper does with SQL.
			if rn.pinSet && rn.pin == PinSmartNIC {
				d.add(rn.lines["pin"], rn.field+".pin", "smartnic: %s cannot migrate (its state is not in reliable collections), so it must run on a host; use pin: host", rn.service)
			}
			n.Pin = PinHost
		}
	}

	// Edges: resolve endpoints, then check families and duplicates.
	type pairKey struct{ from, to string }
	firstEdge := map[pairKey]int{}
	edgesBroken := false // some edge did not resolve: reachability would mislead
	for _, re := range raw.edges {
		if !re.endpointOK {
			edgesBroken = true
			continue
		}
		from, okF := a.byName[re.from]
		if !okF {
			d.add(re.lines["from"], re.field+".from", "unknown node %q%s", re.from, d.suggest(re.from, a.byName))
		}
		to, okT := a.byName[re.to]
		if !okT {
			d.add(re.lines["to"], re.field+".to", "unknown node %q%s", re.to, d.suggest(re.to, a.byName))
		}
		if !okF || !okT {
			edgesBroken = true
			continue
		}
		k := pairKey{re.from, re.to}
		if l, dup := firstEdge[k]; dup {
			d.add(re.line, re.field, "duplicate edge %s->%s (first on line %d); one edge per pair of nodes", re.from, re.to, l)
			continue
		}
		firstEdge[k] = re.line
		e := &Edge{From: from, To: to, Policy: re.policy, Share: re.share, SameKey: re.sameKey, Line: re.line, Index: len(a.edges), raw: re}
		a.edges = append(a.edges, e)
		from.Out = append(from.Out, e)
		to.In = append(to.In, e)
		if from.Descriptor != nil && to.Descriptor != nil && from.Family() != to.Family() {
			d.add(re.line, re.field, "%s->%s joins %s (%s messages) to %s (%s messages); an edge must stay within one message family",
				re.from, re.to, from.Service, from.Family(), to.Service, to.Family())
		}
	}

	// Sources.
	if raw.sourcesSet {
		seen := map[string]int{}
		for i, r := range raw.sources {
			f := fmt.Sprintf("sources[%d]", i)
			n, ok := a.byName[r.name]
			if !ok {
				d.add(r.line, f, "unknown node %q%s", r.name, d.suggest(r.name, a.byName))
				continue
			}
			if l, dup := seen[r.name]; dup {
				d.add(r.line, f, "%q listed twice (first on line %d)", r.name, l)
				continue
			}
			seen[r.name] = r.line
			if len(n.In) > 0 {
				e := n.In[0]
				d.add(r.line, f, "source %q has an incoming edge %s (line %d); requests enter a DAG only at nodes nothing else feeds", r.name, e, e.Line)
			}
			a.sources = append(a.sources, n)
		}
	} else {
		for _, n := range specOrder {
			if len(n.In) == 0 {
				a.sources = append(a.sources, n)
			}
		}
		if len(a.sources) == 0 && len(specOrder) > 0 {
			d.add(raw.nodesLine, "sources", "every node has an incoming edge, so the DAG has no entry; list sources or break the cycle")
		}
	}
	isSource := map[*Node]bool{}
	for _, n := range a.sources {
		isSource[n] = true
	}

	// key: same needs a source node that is itself routed by key.
	for _, e := range a.edges {
		if !e.SameKey {
			continue
		}
		f := e.raw.field + ".key"
		line := e.raw.lines["key"]
		switch {
		case e.Policy != KeyHash:
			d.add(line, f, "same applies to key_hash edges only; %s is %s", e, e.Policy)
		case isSource[e.From] || len(e.From.In) == 0:
			d.add(line, f, "same on %s: %s is a source, reached by ECMP rather than by key, so its shards hold no key range; use key: new", e, e.From.Name)
		default:
			for _, in := range e.From.In {
				if in.Policy != KeyHash {
					d.add(line, f, "same on %s: %s is also fed by %s (%s), so its shards hold no key range; use key: new", e, e.From.Name, in, in.Policy)
					break
				}
			}
		}
	}

	d.checkCycles(specOrder)
	if !edgesBroken {
		d.checkReach(a, specOrder)
	}
	d.checkWorkload(a, raw, isSource)
	d.checkSize(a, specOrder, raw.nodesLine)
	if len(d.errs) > 0 {
		return nil
	}
	a.nodes = topoOrder(specOrder)
	for i, n := range a.nodes {
		n.Topo = i
	}
	return a
}

// checkCycles reports one cycle per strongly connected component, naming the
// nodes on it, at the line of its first edge.
func (d *decoder) checkCycles(nodes []*Node) {
	index := map[*Node]int{}
	low := map[*Node]int{}
	onStack := map[*Node]bool{}
	var stack []*Node
	next := 0
	var sccs [][]*Node
	// Iterative Tarjan: specs are outside input and may be deep.
	type frame struct {
		n *Node
		i int
	}
	for _, root := range nodes {
		if _, seen := index[root]; seen {
			continue
		}
		work := []frame{{root, 0}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(work) > 0 {
			top := &work[len(work)-1]
			if top.i < len(top.n.Out) {
				w := top.n.Out[top.i].To
				top.i++
				if _, seen := index[w]; !seen {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					work = append(work, frame{w, 0})
				} else if onStack[w] {
					low[top.n] = min(low[top.n], index[w])
				}
				continue
			}
			v := top.n
			work = work[:len(work)-1]
			if len(work) > 0 {
				p := work[len(work)-1].n
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				var comp []*Node
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				sccs = append(sccs, comp)
			}
		}
	}
	for _, comp := range sccs {
		in := map[*Node]bool{}
		for _, n := range comp {
			in[n] = true
		}
		if len(comp) == 1 {
			n := comp[0]
			for _, e := range n.Out {
				if e.To == n {
					d.add(e.Line, e.raw.field, "cycle: %s -> %s; the application must be a DAG", n.Name, n.Name)
				}
			}
			continue
		}
		// Start from the component's node that comes first in the spec and
		// walk a shortest path back to it.
		start := comp[0]
		for _, n := range comp {
			if n.Line < start.Line {
				start = n
			}
		}
		path := cycleThrough(start, in)
		names := make([]string, len(path))
		for i, e := range path {
			names[i] = e.From.Name
		}
		names = append(names, start.Name)
		first := path[0]
		d.add(first.Line, first.raw.field, "cycle: %s; the application must be a DAG", strings.Join(names, " -> "))
	}
}

// cycleThrough returns the edges of a shortest cycle through start inside the
// component in (breadth-first, so the message is as short as it can be).
func cycleThrough(start *Node, in map[*Node]bool) []*Edge {
	prev := map[*Node]*Edge{}
	queue := []*Node{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range v.Out {
			w := e.To
			if !in[w] {
				continue
			}
			if w == start {
				var path []*Edge
				path = append(path, e)
				for x := v; x != start; x = prev[x].From {
					path = append(path, prev[x])
				}
				for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			if _, seen := prev[w]; !seen {
				prev[w] = e
				queue = append(queue, w)
			}
		}
	}
	return nil // unreachable for a strongly connected component
}

func (d *decoder) checkReach(a *App, nodes []*Node) {
	if len(a.sources) == 0 {
		return
	}
	seen := map[*Node]bool{}
	queue := append([]*Node(nil), a.sources...)
	for _, n := range queue {
		seen[n] = true
	}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range v.Out {
			if !seen[e.To] {
				seen[e.To] = true
				queue = append(queue, e.To)
			}
		}
	}
	for _, n := range nodes {
		if !seen[n] {
			d.add(n.Line, "nodes."+n.Name, "unreachable from any source (%s); no request would ever reach it", names(a.sources))
		}
	}
}

func (d *decoder) checkWorkload(a *App, raw *rawSpec, isSource map[*Node]bool) {
	w := &a.Workload
	if w.Mix != nil {
		for _, k := range raw.mixOrder {
			n, ok := a.byName[k]
			if !ok {
				d.add(raw.mixLines[k], "workload.mix."+k, "unknown node %q%s", k, d.suggest(k, a.byName))
			} else if !isSource[n] {
				d.add(raw.mixLines[k], "workload.mix."+k, "%q is not a source (sources: %s)", k, names(a.sources))
			}
		}
		for _, s := range a.sources {
			if _, ok := w.Mix[s.Name]; !ok {
				d.add(raw.mixLine, "workload.mix", "source %q has no weight; give every source one", s.Name)
			}
		}
	}
	// Each key_hash destination must have at least as many keys as shards,
	// or some shards never see a request and the traffic model's uniform
	// spread is wrong.
	if w.KeySpace >= 1 {
		for _, e := range a.edges {
			if e.Policy == KeyHash && w.KeySpace < e.To.Shards {
				line := raw.keySpaceLine
				if line == 0 {
					line = raw.workloadLine
				}
				d.add(line, "workload.key_space", "%d keys cannot cover the %d shards of %s (edge %s is key_hash); raise key_space", w.KeySpace, e.To.Shards, e.To.Name, e)
				break
			}
		}
	}
}

// checkSize keeps expansion within the package limits before it allocates.
func (d *decoder) checkSize(a *App, nodes []*Node, nodesLine int) {
	inst := 0
	for _, n := range nodes {
		inst += n.Shards * (1 + n.Backups)
	}
	if inst > MaxInstances {
		d.add(nodesLine, "nodes", "the application expands to %d instances; the limit is %d", inst, MaxInstances)
	}
	links := 0
	for _, e := range a.edges {
		l := e.From.Shards * e.To.Shards
		if e.Policy == KeyHash && e.SameKey {
			l = e.From.Shards * (e.To.Shards / gcd(e.From.Shards, e.To.Shards))
		}
		links += l
		if links > MaxLinks {
			d.add(e.Line, "edges", "the application expands to more than %d instance links (edge %s alone has %d); use fewer shards", MaxLinks, e, l)
			return
		}
	}
}

// topoOrder sorts nodes so that every edge goes forward, breaking ties by
// spec order so the result is stable (Kahn's algorithm with the ready set in
// a heap keyed by spec position).
func topoOrder(spec []*Node) []*Node {
	pos := make(map[*Node]int, len(spec))
	indeg := make(map[*Node]int, len(spec))
	ready := &intHeap{}
	for i, n := range spec {
		pos[n] = i
		indeg[n] = len(n.In)
		if len(n.In) == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]*Node, 0, len(spec))
	for ready.Len() > 0 {
		n := spec[heap.Pop(ready).(int)]
		out = append(out, n)
		for _, e := range n.Out {
			indeg[e.To]--
			if indeg[e.To] == 0 {
				heap.Push(ready, pos[e.To])
			}
		}
	}
	return out
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// spendSuggestion reports whether another "did you mean" may be computed:
// past the first few, a spec is broken wholesale and hints only cost time.
func (d *decoder) spendSuggestion() bool {
	d.suggestions++
	return d.suggestions <= 32
}

// maxSuggest bounds the names suggest compares against, so that a spec with
// thousands of nodes and thousands of bad references stays cheap to check.
const maxSuggest = 256

// suggest returns a hint for an unknown node name: the nearest known name,
// or the list of known names when there are few.
func (d *decoder) suggest(name string, byName map[string]*Node) string {
	if len(byName) == 0 || len(byName) > maxSuggest || !d.spendSuggestion() {
		return ""
	}
	if d.nodeNames == nil {
		for k := range byName {
			d.nodeNames = append(d.nodeNames, k)
		}
		sort.Strings(d.nodeNames)
	}
	if s := nearest(name, d.nodeNames); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Sprintf(" (nodes: %s)", strings.Join(d.nodeNames, ", "))
}

func names(ns []*Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Name
	}
	return strings.Join(s, ", ")
}

var _ Catalog = (*service.Registry)(nil)
