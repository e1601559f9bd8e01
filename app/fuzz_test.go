package app_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
)

// FuzzParse feeds arbitrary bytes to Load: it must never panic, must return
// either an App or an ErrorList whose every entry names the file, and an App
// it returns must satisfy the expansion invariants.
func FuzzParse(f *testing.F) {
	for _, n := range app.BuiltinNames() {
		_, data, err := app.BuiltinSpec(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(good))
	f.Add([]byte(good + "sources: [gw, store]\n  - {from: store, to: store}\n"))
	f.Add([]byte("name: x\nclass: RTA\nnodes:\n  a: &x {service: count}\n  b: *x\nedges: [{from: a, to: b, key: same}]\n"))
	f.Add([]byte("name: x\nclass: RTA\nnodes: {a: {service: count, shards: 4096}, b: {service: ema, shards: 4096}}\nedges: [{from: a, to: b, policy: broadcast}]\n"))
	f.Add([]byte("workload: {mix: {a: .inf}, key_space: 0x10}\n---\n"))
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := app.Load("fuzz.yaml", data, cat)
		if err != nil {
			var list app.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "fuzz.yaml") || e.Msg == "" {
					t.Fatalf("malformed error %q", e.Error())
				}
			}
			return
		}
		if a == nil {
			t.Fatal("nil App and nil error")
		}
		want := 0
		for _, n := range a.Nodes() {
			want += n.Shards * (1 + n.Backups)
			if n.Shards < 1 || n.Backups < 0 || n.Descriptor == nil {
				t.Fatalf("node %s accepted with shards %d backups %d", n.Name, n.Shards, n.Backups)
			}
		}
		if len(a.Instances()) != want {
			t.Fatalf("%d instances, want %d", len(a.Instances()), want)
		}
		for _, e := range a.Edges() {
			if e.From.Topo >= e.To.Topo {
				t.Fatalf("edge %s backwards in topological order", e)
			}
			if !(e.Share > 0 && e.Share <= 1) {
				t.Fatalf("share %g accepted", e.Share)
			}
		}
	})
}
