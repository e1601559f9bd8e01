package app_test

import (
	"testing"

	"github.com/e3-platform/e3/app"
)

func TestPrintStats(t *testing.T) {
	cat := testCatalog()
	tot, snd := 0.0, 0
	for _, n := range app.BuiltinNames() {
		a, err := app.Builtin(n, cat)
		if err != nil {
			t.Fatal(err)
		}
		f := a.FanOut()
		t.Logf("%-9s N=%3d services=%v fanout mean=%.2f max=%d senders=%d", a.Name, len(a.Instances()), a.Services(), f.Mean, f.Max, f.Senders)
		for _, nd := range a.Nodes() {
			t.Logf("   %-10s shards=%2d rate=%.3f per-inst=%.4f fanout=%d", nd.Name, nd.Shards, nd.Rate, nd.Primary(0).Rate, nd.Primary(0).FanOut())
		}
		tot += f.Mean * float64(f.Senders)
		snd += f.Senders
	}
	t.Logf("pooled mean %.2f", tot/float64(snd))
}
