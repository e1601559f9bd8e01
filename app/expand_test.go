package app_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
)

func mustLoad(t *testing.T, spec string) *app.App {
	t.Helper()
	a, err := app.Load("t.yaml", []byte(spec), testCatalog())
	if err != nil {
		t.Fatalf("%v\n%s", err, spec)
	}
	return a
}

func TestInstanceIDs(t *testing.T) {
	a := mustLoad(t, `name: t
class: IOT
nodes:
  gw: {service: apigw, shards: 2}
  sql: {service: sql, shards: 4, backups: 2}
edges:
  - {from: gw, to: sql}
`)
	var ids []string
	for i, inst := range a.Instances() {
		ids = append(ids, inst.ID)
		if inst.Index != i {
			t.Errorf("%s has index %d, is at %d", inst.ID, inst.Index, i)
		}
		if got, ok := a.Instance(inst.ID); !ok || got != inst {
			t.Errorf("Instance(%q) does not find it", inst.ID)
		}
	}
	want := "gw.0 gw.1 sql.0 sql.0.b1 sql.0.b2 sql.1 sql.1.b1 sql.1.b2 sql.2 sql.2.b1 sql.2.b2 sql.3 sql.3.b1 sql.3.b2"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("IDs\n got %s\nwant %s", got, want)
	}
	b, _ := a.Instance("sql.3.b2")
	p, _ := a.Instance("sql.3")
	if b.Primary != p || b.Shard != 3 || b.Replica != 2 || b.IsPrimary() || !p.IsPrimary() || p.Primary != p {
		t.Errorf("sql.3.b2: %+v", b)
	}
	if len(p.Backups) != 2 || p.Backups[1] != b {
		t.Errorf("sql.3 backups %v", p.Backups)
	}
	if len(b.In) != 0 || len(b.Out) != 0 || b.Rate != 0 {
		t.Errorf("a backup has traffic: in %d out %d rate %g", len(b.In), len(b.Out), b.Rate)
	}
	sql, _ := a.Node("sql")
	if sql.Pin != app.PinHost {
		t.Errorf("sql left at pin %s; a non-migratable service is pinned to the host", sql.Pin)
	}
	if sql.Primary(2).ID != "sql.2" || len(sql.Primaries()) != 4 || len(sql.Instances()) != 12 {
		t.Errorf("node accessors: %s %d %d", sql.Primary(2).ID, len(sql.Primaries()), len(sql.Instances()))
	}
}

// TestSameKeyLinksMatchRouting checks the links of a key: same edge against
// what routing actually does: a key that ShardOf sends to shard s of the
// sender, re-emitted under the same key, must land on a shard the sender
// has a link to; and every link must be used by some key.
func TestSameKeyLinksMatchRouting(t *testing.T) {
	const seed = 42
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	for _, sd := range [][2]int{{12, 12}, {12, 6}, {6, 12}, {8, 12}, {12, 18}, {7, 5}, {1, 4}, {4, 1}} {
		S, D := sd[0], sd[1]
		a := mustLoad(t, fmt.Sprintf(`name: t
class: RTA
nodes:
  in:  {service: count, shards: 3}
  src: {service: ema, shards: %d}
  dst: {service: spike, shards: %d}
edges:
  - {from: in, to: src}
  - {from: src, to: dst, key: same}
`, S, D))
		src, _ := a.Node("src")
		linked := map[[2]int]bool{}
		used := map[[2]int]bool{}
		for _, p := range src.Primaries() {
			for _, l := range p.Out {
				linked[[2]int{l.From.Shard, l.To.Shard}] = true
			}
		}
		for range 20000 {
			k := rng.Uint64()
			pair := [2]int{app.ShardOf(k, S), app.ShardOf(k, D)}
			if !linked[pair] {
				t.Fatalf("%dx%d: key %d goes %v, which has no link", S, D, k, pair)
			}
			used[pair] = true
		}
		if len(used) != len(linked) {
			t.Errorf("%dx%d: %d links, routing used %d", S, D, len(linked), len(used))
		}
		g := gcd(S, D)
		if f := src.Primary(0).FanOut(); f != D/g {
			t.Errorf("%dx%d: fan-out %d, want %d", S, D, f, D/g)
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func TestPolicyLinksAndRates(t *testing.T) {
	a := mustLoad(t, `name: t
class: RTA
nodes:
  a: {service: count, shards: 2}
  b: {service: ema, shards: 4}
  c: {service: spike, shards: 3}
  d: {service: kvs, shards: 5}
edges:
  - {from: a, to: b, policy: round_robin}
  - {from: b, to: c, policy: broadcast, share: 0.5}
  - {from: b, to: d, policy: key_hash, share: 0.2}
`)
	node := func(n string) *app.Node { x, _ := a.Node(n); return x }
	// Node rates: a gets every request; b all of a's; c a copy of half of
	// b's on each of its 3 shards; d a fifth of b's.
	for n, want := range map[string]float64{"a": 1, "b": 1, "c": 1.5, "d": 0.2} {
		if got := node(n).Rate; !near(got, want) {
			t.Errorf("node %s rate %g, want %g", n, got, want)
		}
	}
	for e, want := range map[string]float64{"a->b": 1, "b->c": 0.5, "b->d": 0.2} {
		for _, x := range a.Edges() {
			if x.String() == e && !near(x.Rate, want) {
				t.Errorf("edge %s rate %g, want %g", e, x.Rate, want)
			}
		}
	}
	// Instance rates sum to the node rate and are equal across shards.
	for _, n := range a.Nodes() {
		sum := 0.0
		for _, p := range n.Primaries() {
			sum += p.Rate
			if !near(p.Rate, n.Rate/float64(n.Shards)) {
				t.Errorf("%s rate %g, want %g", p.ID, p.Rate, n.Rate/float64(n.Shards))
			}
		}
		if !near(sum, n.Rate) {
			t.Errorf("node %s: instances sum to %g, node rate %g", n.Name, sum, n.Rate)
		}
	}
	// Fan-out: every b shard reaches every c (broadcast) and d (key_hash) shard.
	if f := node("b").Primary(1).FanOut(); f != 3+5 {
		t.Errorf("b fan-out %d, want 8", f)
	}
	if f := node("a").Primary(0).FanOut(); f != 4 {
		t.Errorf("a fan-out %d, want 4", f)
	}
	if n := len(a.Links()); n != 2*4+4*3+4*5 {
		t.Errorf("%d links, want %d", n, 2*4+4*3+4*5)
	}
	// A broadcast link carries the sender's whole (shared) rate.
	for _, l := range node("b").Primary(0).Out {
		want := 0.25 * 0.2 / 5
		if l.Edge.Policy == app.Broadcast {
			want = 0.25 * 0.5
		}
		if !near(l.Rate, want) {
			t.Errorf("%s->%s rate %g, want %g", l.From, l.To, l.Rate, want)
		}
	}
}

func TestMixSplitsIngress(t *testing.T) {
	a := mustLoad(t, `name: t
class: IOT
nodes:
  gw:  {service: apigw, shards: 2}
  adm: {service: kvs, shards: 3}
  sql: {service: sql, shards: 4}
edges:
  - {from: gw, to: sql}
  - {from: adm, to: sql}
workload:
  mix: {gw: 3, adm: 1}
`)
	gw, _ := a.Node("gw")
	adm, _ := a.Node("adm")
	sql, _ := a.Node("sql")
	if !near(gw.Ingress, 0.75) || !near(adm.Ingress, 0.25) || !near(a.Workload.Mix["gw"], 0.75) {
		t.Errorf("ingress gw %g adm %g mix %v", gw.Ingress, adm.Ingress, a.Workload.Mix)
	}
	if !near(sql.Rate, 1) || !near(gw.Primary(1).Rate, 0.375) {
		t.Errorf("sql rate %g, gw.1 rate %g", sql.Rate, gw.Primary(1).Rate)
	}
	if src := a.Sources(); len(src) != 2 || !src[0].IsSource() || sql.IsSource() {
		t.Errorf("sources %v", src)
	}
}

func TestTopologicalOrderKeepsSpecOrderOnTies(t *testing.T) {
	a := mustLoad(t, `name: t
class: RTA
nodes:
  z: {service: ema}
  y: {service: spike}
  x: {service: count}
  w: {service: kvs}
edges:
  - {from: x, to: z}
  - {from: y, to: w}
  - {from: x, to: y}
`)
	var got []string
	for _, n := range a.Nodes() {
		got = append(got, n.Name)
	}
	// x is the only source; then z and y become ready (spec order z, y); w last.
	if s := strings.Join(got, " "); s != "x z y w" {
		t.Errorf("order %s, want x z y w", s)
	}
}

// TestRandomDAGs loads randomly generated specs and checks the invariants of
// expansion against direct counts: instance totals, link counts per policy,
// topological order, and conservation of traffic at every node.
func TestRandomDAGs(t *testing.T) {
	const seed = 7
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	svcs := []string{"count", "ema", "kvs", "spike", "topk", "bayes"}
	for iter := range 200 {
		nn := 1 + rng.IntN(8)
		var b strings.Builder
		b.WriteString("name: r\nclass: RTA\nnodes:\n")
		shards := make([]int, nn)
		backups := make([]int, nn)
		wantInst := 0
		for i := range nn {
			shards[i], backups[i] = 1+rng.IntN(12), rng.IntN(3)
			wantInst += shards[i] * (1 + backups[i])
			fmt.Fprintf(&b, "  n%d: {service: %s, shards: %d, backups: %d}\n", i, svcs[rng.IntN(len(svcs))], shards[i], backups[i])
		}
		// Edges only forward in a random permutation, so the graph is a DAG;
		// every non-first node gets at least one input, so all are reachable.
		perm := rng.Perm(nn)
		type edge struct {
			from, to int
			policy   string
			same     bool
		}
		var edges []edge
		inputs := make([][]string, nn)
		for j := 1; j < nn; j++ {
			for i := 0; i < j; i++ {
				if i == j-1 || rng.IntN(3) == 0 {
					pol := []string{"key_hash", "round_robin", "broadcast"}[rng.IntN(3)]
					edges = append(edges, edge{from: perm[i], to: perm[j], policy: pol})
					inputs[perm[j]] = append(inputs[perm[j]], pol)
				}
			}
		}
		keyed := func(n int) bool {
			if len(inputs[n]) == 0 {
				return false
			}
			for _, p := range inputs[n] {
				if p != "key_hash" {
					return false
				}
			}
			return true
		}
		if len(edges) > 0 {
			b.WriteString("edges:\n")
		}
		wantLinks := 0
		for i := range edges {
			e := &edges[i]
			e.same = e.policy == "key_hash" && keyed(e.from) && rng.IntN(2) == 0
			key := "new"
			if e.same {
				key = "same"
				wantLinks += shards[e.from] * shards[e.to] / gcd(shards[e.from], shards[e.to])
			} else {
				wantLinks += shards[e.from] * shards[e.to]
			}
			fmt.Fprintf(&b, "  - {from: n%d, to: n%d, policy: %s, share: %.2f, key: %s}\n", e.from, e.to, e.policy, 0.05+0.95*rng.Float64(), key)
		}
		spec := b.String()
		a, err := app.Load("r.yaml", []byte(spec), testCatalog())
		if err != nil {
			t.Fatalf("iteration %d: %v\n%s", iter, err, spec)
		}
		if got := len(a.Instances()); got != wantInst {
			t.Fatalf("iteration %d: %d instances, want %d", iter, got, wantInst)
		}
		if got := len(a.Links()); got != wantLinks {
			t.Fatalf("iteration %d: %d links, want %d\n%s", iter, got, wantLinks, spec)
		}
		for _, e := range a.Edges() {
			if e.From.Topo >= e.To.Topo {
				t.Fatalf("iteration %d: edge %s goes backwards in topological order", iter, e)
			}
		}
		ingress := 0.0
		for _, n := range a.Nodes() {
			ingress += n.Ingress
			in := n.Ingress
			for _, e := range n.In {
				if e.Policy == app.Broadcast {
					in += e.From.Rate * e.Share * float64(n.Shards)
				} else {
					in += e.From.Rate * e.Share
				}
			}
			sum := 0.0
			for _, p := range n.Primaries() {
				sum += p.Rate
				lin := 0.0
				for _, l := range p.In {
					lin += l.Rate
				}
				if !near(lin+n.Ingress/float64(n.Shards), p.Rate) {
					t.Fatalf("iteration %d: %s: links bring %g, rate %g", iter, p.ID, lin, p.Rate)
				}
			}
			if !near(in, n.Rate) || !near(sum, n.Rate) {
				t.Fatalf("iteration %d: node %s rate %g, inputs %g, instances %g", iter, n.Name, n.Rate, in, sum)
			}
		}
		if !near(ingress, 1) {
			t.Fatalf("iteration %d: ingress sums to %g", iter, ingress)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
