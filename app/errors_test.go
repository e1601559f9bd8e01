package app_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
)

// good is a valid spec the error cases below break one piece at a time.
const good = `name: shop
class: IOT
nodes:
  gw:    {service: apigw, shards: 2}
  store: {service: kvs, shards: 4, backups: 1}
edges:
  - {from: gw, to: store}
`

func loadErrs(t *testing.T, spec string) app.ErrorList {
	t.Helper()
	a, err := app.Load("f.yaml", []byte(spec), testCatalog())
	if err == nil {
		t.Fatalf("spec loaded (%v), want errors:\n%s", a, spec)
	}
	var list app.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T is not an ErrorList: %v", err, err)
	}
	for _, e := range list {
		if e.File != "f.yaml" {
			t.Errorf("error names file %q: %v", e.File, e)
		}
	}
	return list
}

func TestGoodSpecLoads(t *testing.T) {
	a, err := app.Load("f.yaml", []byte(good), testCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Instances()) != 2+8 {
		t.Errorf("%d instances, want 10", len(a.Instances()))
	}
	if a.Workload.RequestSize != app.DefaultRequestSize || a.Workload.KeySpace != app.DefaultKeySpace {
		t.Errorf("workload defaults not applied: %+v", a.Workload)
	}
	if len(a.Workload.Mix) != 1 || a.Workload.Mix["gw"] != 1 {
		t.Errorf("mix %v, want gw: 1", a.Workload.Mix)
	}
	e := a.Edges()[0]
	if e.Policy != app.KeyHash || e.Share != 1 || e.SameKey {
		t.Errorf("edge defaults not applied: %+v", e)
	}
	gw, _ := a.Node("gw")
	if gw.Pin != app.PinAny || gw.Backups != 0 {
		t.Errorf("node defaults not applied: %+v", gw)
	}
}

// TestErrors breaks the spec in one way per case and checks that exactly the
// expected FILE:LINE: field: message comes back.
func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want string // the one error expected, in full or as a prefix
	}{
		{"unknown service", strings.Replace(good, "service: kvs", "service: kvz", 1),
			`f.yaml:5: nodes.store.service: unknown microservice "kvz"; did you mean "kvs"?`},
		{"unknown service far from any", strings.Replace(good, "service: kvs", "service: zzzzzzzz", 1),
			`f.yaml:5: nodes.store.service: unknown microservice "zzzzzzzz" (known: apigw, bayes`},
		{"unknown edge endpoint", strings.Replace(good, "to: store", "to: stor", 1),
			`f.yaml:7: edges[0].to: unknown node "stor"; did you mean "store"?`},
		{"duplicate node", strings.Replace(good, "edges:", "  gw: {service: apigw}\nedges:", 1),
			`f.yaml:6: nodes.gw: duplicate node (first defined on line 4)`},
		{"shards zero", strings.Replace(good, "shards: 4", "shards: 0", 1),
			`f.yaml:5: nodes.store.shards: 0 is out of range; a node has 1 to 4096 shards`},
		{"shards text", strings.Replace(good, "shards: 4", `shards: "4"`, 1),
			`f.yaml:5: nodes.store.shards: want an integer, got "4"`},
		{"shards fraction", strings.Replace(good, "shards: 4", `shards: 1.5`, 1),
			`f.yaml:5: nodes.store.shards: want an integer, got "1.5"`},
		{"negative backups", strings.Replace(good, "backups: 1", "backups: -1", 1),
			`f.yaml:5: nodes.store.backups: -1 is out of range; a shard has 0 to 8 backups`},
		{"bad pin", strings.Replace(good, "shards: 2}", "shards: 2, pin: nic}", 1),
			`f.yaml:4: nodes.gw.pin: "nic" is not a pin; use host, smartnic or any`},
		{"bad policy", strings.Replace(good, "to: store}", "to: store, policy: hash}", 1),
			`f.yaml:7: edges[0].policy: "hash" is not a policy; use key_hash, round_robin or broadcast`},
		{"share zero", strings.Replace(good, "to: store}", "to: store, share: 0}", 1),
			`f.yaml:7: edges[0].share: 0 is out of range; a share is a fraction with 0 < share <= 1`},
		{"share above one", strings.Replace(good, "to: store}", "to: store, share: 1.5}", 1),
			`f.yaml:7: edges[0].share: 1.5 is out of range`},
		{"share nan", strings.Replace(good, "to: store}", "to: store, share: .nan}", 1),
			`f.yaml:7: edges[0].share: .nan is out of range`},
		{"bad key mode", strings.Replace(good, "to: store}", "to: store, key: old}", 1),
			`f.yaml:7: edges[0].key: "old" is not a key mode; use same or new`},
		{"unknown top field", good + "colour: red\n",
			`f.yaml:8: colour: unknown field "colour" (known: name, class`},
		{"unknown node field", strings.Replace(good, "shards: 2}", "shard: 2}", 1),
			`f.yaml:4: nodes.gw.shard: unknown field "shard"; did you mean "shards"?`},
		{"unknown edge field", strings.Replace(good, "to: store}", "to: store, weight: 2}", 1),
			`f.yaml:7: edges[0].weight: unknown field "weight"`},
		{"bad class", strings.Replace(good, "class: IOT", "class: HPC", 1),
			`f.yaml:2: class: "HPC" is not a class; use NFV, RTA or IOT`},
		{"bad name", strings.Replace(good, "name: shop", "name: my shop", 1),
			`f.yaml:1: name: "my shop" is not a valid name`},
		{"dotted node name", strings.Replace(strings.Replace(good, "  gw: ", "  g.w: ", 1), "from: gw", "from: g.w", 1),
			`f.yaml:4: nodes.g.w: "g.w" is not a valid node name`},
		{"missing name", strings.Replace(good, "name: shop\n", "", 1),
			`f.yaml:1: name: missing; every application needs a name`},
		{"missing service", strings.Replace(good, "service: apigw, ", "", 1),
			`f.yaml:4: nodes.gw.service: missing; name the microservice this node runs`},
		{"missing to", strings.Replace(good, ", to: store", "", 1),
			`f.yaml:7: edges[0].to: missing; name the node the edge enters`},
		{"family mismatch", strings.Replace(good, "service: kvs", "service: natv4", 1),
			`f.yaml:7: edges[0]: gw->store joins apigw (event messages) to natv4 (packet messages); an edge must stay within one message family`},
		{"sql on smartnic", strings.Replace(good, "service: kvs, shards: 4", "service: sql, shards: 4, pin: smartnic", 1),
			`f.yaml:5: nodes.store.pin: smartnic: sql cannot migrate`},
		{"source with incoming edge", good + "sources: [gw, store]\n",
			`f.yaml:8: sources[1]: source "store" has an incoming edge gw->store (line 7)`},
		{"unknown source", good + "sources: [gateway]\n",
			`f.yaml:8: sources[0]: unknown node "gateway"`},
		{"self loop", good + "  - {from: store, to: store}\n",
			`f.yaml:8: edges[1]: cycle: store -> store; the application must be a DAG`},
		{"duplicate edge", good + "  - {from: gw, to: store, policy: broadcast}\n",
			`f.yaml:8: edges[1]: duplicate edge gw->store (first on line 7)`},
		{"same key on round robin", strings.Replace(good, "edges:", "  s2: {service: count}\nedges:", 1) + "  - {from: store, to: s2, policy: round_robin, key: same}\n",
			`f.yaml:9: edges[1].key: same applies to key_hash edges only; store->s2 is round_robin`},
		{"same key from source", strings.Replace(good, "to: store}", "to: store, key: same}", 1),
			`f.yaml:7: edges[0].key: same on gw->store: gw is a source, reached by ECMP rather than by key`},
		{"key space too small", good + "workload: {key_space: 3}\n",
			`f.yaml:8: workload.key_space: 3 keys cannot cover the 4 shards of store (edge gw->store is key_hash); raise key_space`},
		{"request size", good + "workload: {request_size: 0}\n",
			`f.yaml:8: workload.request_size: 0 bytes is out of range`},
		{"mix names a non-source", good + "workload: {mix: {gw: 1, store: 1}}\n",
			`f.yaml:8: workload.mix.store: "store" is not a source (sources: gw)`},
		{"mix misses a source", good + "workload:\n  mix: {}\n",
			`f.yaml:9: workload.mix: source "gw" has no weight; give every source one`},
		{"mix negative", good + "workload: {mix: {gw: -1}}\n",
			`f.yaml:8: workload.mix.gw: weight -1 must be a positive number`},
		{"yaml syntax", good + "  - {from: gw, to: [\n",
			`f.yaml:9: YAML: did not find expected node content`},
		{"tab indent", strings.Replace(good, "  gw:", "\tgw:", 1),
			`f.yaml:4: YAML: found character that cannot start any token`},
		{"invalid utf8", strings.Replace(good, "shop", "sh\xffp", 1),
			`f.yaml:1: invalid UTF-8 byte 0xff`},
		{"control character", strings.Replace(good, "kvs", "kv\x01s", 1),
			`f.yaml:5: character U+0001 is not allowed in YAML`},
		{"alias", strings.Replace(strings.Replace(good, "{service: kvs, shards: 4, backups: 1}", "*x", 1), "{service: apigw", "&x {service: apigw", 1),
			`f.yaml:5: nodes.store: aliases (*x) are not supported`},
		{"flow map not closed", "name: x\nclass: {a\n", `f.yaml:2: YAML: did not find expected ',' or '}'`},
		{"bad indent", "name: x\nclass: NFV\nnodes:\n  a: {service: nids}\n b: 1\n", `f.yaml:5: YAML: did not find expected key`},
		{"sequence after map", "name: x\n- a\n", `f.yaml:2: YAML: did not find expected key`},
		{"scanner error on line 1", "a: b: c\n", `f.yaml:1: YAML: mapping values are not allowed in this context`},
		{"scanner error on line 3", "name: x\nclass: NFV\nnodes: a: b\n", `f.yaml:3: YAML: mapping values are not allowed in this context`},
		{"unknown anchor", "name: x\nclass: NFV\nnodes: *nodes\n", `f.yaml:3: YAML: unknown anchor 'nodes' referenced`},
		{"too large", "#" + strings.Repeat("x", app.MaxSpecBytes), `f.yaml:1: spec is 1048577 bytes; the limit is 1048576`},
		{"too many instances", "name: x\nclass: NFV\nnodes:\n" + manyNodes(70, 4096), `f.yaml:4: nodes: the application expands to 286720 instances; the limit is 262144`},
		{"empty", "", `f.yaml:1: spec is empty`},
		{"comment only", "# nothing\n", `f.yaml:1: spec is empty`},
		{"not a map", "- a\n- b\n", `f.yaml:1: want the spec, got a list`},
		{"two documents", good + "---\nname: other\n", `f.yaml:9: a spec is one YAML document; found a second one`},
		{"duplicate field", strings.Replace(good, "class: IOT\n", "class: IOT\nclass: NFV\n", 1),
			`f.yaml:3: class: duplicate field (first on line 2)`},
		{"config not scalar", strings.Replace(good, "shards: 2}", "shards: 2, config: {a: [1]}}", 1),
			`f.yaml:4: nodes.gw.config.a: want a scalar value`},
		{"config null", strings.Replace(good, "shards: 2}", "shards: 2, config: {a: ~}}", 1),
			`f.yaml:4: nodes.gw.config.a: want a scalar value (quote it to pass text), got null "~"`},
		{"nodes empty", "name: x\nclass: NFV\nnodes: {}\n", `f.yaml:3: nodes: is empty; an application needs at least one node`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list := loadErrs(t, c.spec)
			if len(list) != 1 {
				t.Fatalf("%d errors, want 1:\n%v", len(list), list)
			}
			if got := list[0].Error(); !strings.HasPrefix(got, c.want) {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestCycleNamesItsNodes(t *testing.T) {
	spec := `name: loop
class: RTA
nodes:
  in: {service: count}
  a:  {service: ema}
  b:  {service: spike}
  c:  {service: kvs}
edges:
  - {from: in, to: a}
  - {from: a, to: b}
  - {from: b, to: c}
  - {from: c, to: a}
`
	list := loadErrs(t, spec)
	if len(list) != 1 || list[0].Error() != "f.yaml:10: edges[1]: cycle: a -> b -> c -> a; the application must be a DAG" {
		t.Errorf("got %v", list)
	}
}

func TestUnreachable(t *testing.T) {
	spec := `name: x
class: RTA
nodes:
  in:  {service: count}
  out: {service: ema}
  lost: {service: spike}
  lost2: {service: kvs}
edges:
  - {from: in, to: out}
  - {from: lost, to: lost2}
sources: [in]
`
	list := loadErrs(t, spec)
	want := []string{
		"f.yaml:6: nodes.lost: unreachable from any source (in); no request would ever reach it",
		"f.yaml:7: nodes.lost2: unreachable from any source (in); no request would ever reach it",
	}
	if got := lines(list); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSameKeyNeedsKeyedSender(t *testing.T) {
	spec := `name: x
class: RTA
nodes:
  in:  {service: count, shards: 4}
  mid: {service: ema, shards: 4}
  out: {service: spike, shards: 4}
edges:
  - {from: in, to: mid, policy: round_robin}
  - {from: mid, to: out, key: same}
`
	list := loadErrs(t, spec)
	if len(list) != 1 || !strings.HasPrefix(list[0].Error(), "f.yaml:9: edges[1].key: same on mid->out: mid is also fed by in->mid (round_robin)") {
		t.Errorf("got %v", list)
	}
}

// TestAllErrorsReported checks that Load collects every problem rather than
// stopping at the first, in line order.
func TestAllErrorsReported(t *testing.T) {
	spec := `name: bad
class: XYZ
nodes:
  gw:  {service: apigw, shards: 0}
  db:  {service: sqlite, pin: everywhere}
  nat: {service: natv4}
edges:
  - {from: gw, to: nat, share: 2}
  - {from: gw, to: nowhere, policy: scatter}
workload: {request_size: -5, colour: blue}
`
	list := loadErrs(t, spec)
	want := []string{
		`f.yaml:2: class: "XYZ" is not a class; use NFV, RTA or IOT`,
		`f.yaml:4: nodes.gw.shards: 0 is out of range; a node has 1 to 4096 shards`,
		`f.yaml:5: nodes.db.pin: "everywhere" is not a pin; use host, smartnic or any`,
		`f.yaml:8: edges[0].share: 2 is out of range; a share is a fraction with 0 < share <= 1`,
		`f.yaml:9: edges[1].policy: "scatter" is not a policy; use key_hash, round_robin or broadcast`,
		`f.yaml:10: workload.request_size: -5 bytes is out of range; a request is 1 to 65507 bytes (one UDP datagram)`,
		`f.yaml:10: workload.colour: unknown field "colour" (known: request_size, key_space, mix)`,
	}
	got := lines(list)
	// The structural errors come first; the semantic ones (unknown service,
	// endpoint, family) are also there.
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("missing %s", w)
		}
	}
	for _, w := range []string{
		`f.yaml:9: edges[1].to: unknown node "nowhere"`,
		`f.yaml:8: edges[0]: gw->nat joins apigw (event messages) to natv4 (packet messages)`,
	} {
		if !containsPrefix(got, w) {
			t.Errorf("missing %s...", w)
		}
	}
	for i := 1; i < len(list); i++ {
		if list[i].Line < list[i-1].Line {
			t.Errorf("errors not in line order:\n%v", list)
		}
	}
	if !strings.Contains(list.Error(), "\n") || strings.Count(list.Error(), "\n") != len(list)-1 {
		t.Errorf("ErrorList.Error() should put one error per line:\n%s", list.Error())
	}
	t.Logf("\n%v", list)
}

func lines(l app.ErrorList) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.Error()
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func containsPrefix(l []string, s string) bool {
	for _, x := range l {
		if strings.HasPrefix(x, s) {
			return true
		}
	}
	return false
}

func manyNodes(n, shards int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  n%d: {service: nids, shards: %d}\n", i, shards)
	}
	return b.String()
}

// TestNoReachabilityNoiseAfterBadEdge: when an edge names an unknown node,
// the nodes behind it are not also reported unreachable.
func TestNoReachabilityNoiseAfterBadEdge(t *testing.T) {
	spec := `name: x
class: RTA
nodes:
  a: {service: count}
  b: {service: ema}
  c: {service: spike}
edges:
  - {from: a, to: bb}
  - {from: b, to: c}
sources: [a]
`
	list := loadErrs(t, spec)
	if len(list) != 1 || !strings.HasPrefix(list[0].Error(), `f.yaml:8: edges[0].to: unknown node "bb"`) {
		t.Errorf("got\n%v", list)
	}
}
