package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
)

// BenchmarkLoadBuiltin measures parsing, validating and expanding IOT-TS, a
// 108-instance application.
func BenchmarkLoadBuiltin(b *testing.B) {
	_, data, err := app.BuiltinSpec("IOT-TS")
	if err != nil {
		b.Fatal(err)
	}
	cat := testCatalog()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := app.Load("iot-ts.yaml", data, cat); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadAtLinkLimit measures the largest expansion Load accepts: a
// broadcast edge between two 1448-shard nodes (2,096,704 links, just under
// MaxLinks). It bounds the work any spec can cause.
func BenchmarkLoadAtLinkLimit(b *testing.B) {
	spec := []byte(`name: big
class: RTA
nodes:
  a: {service: count, shards: 1448}
  b: {service: ema, shards: 1448}
edges:
  - {from: a, to: b, policy: broadcast}
`)
	cat := testCatalog()
	b.ReportAllocs()
	for b.Loop() {
		a, err := app.Load("big.yaml", spec, cat)
		if err != nil {
			b.Fatal(err)
		}
		if len(a.Links()) != 1448*1448 {
			b.Fatalf("%d links", len(a.Links()))
		}
	}
}

// BenchmarkLoadBrokenWholesale measures the worst kind of input for the
// checks: a 1 MiB spec of 256 long-named nodes with unknown services and
// thousands of edges to unknown nodes, every one an error.
func BenchmarkLoadBrokenWholesale(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("name: x\nclass: RTA\nnodes:\n")
	long := strings.Repeat("n", 60)
	for i := range 256 {
		fmt.Fprintf(&sb, "  %s%03d: {service: %s}\n", long, i, long)
	}
	sb.WriteString("edges:\n")
	for i := 0; sb.Len() < app.MaxSpecBytes-200; i++ {
		fmt.Fprintf(&sb, "  - {from: %s%03d, to: %sx%d}\n", long, i%256, long, i)
	}
	spec := []byte(sb.String())
	cat := testCatalog()
	b.ReportAllocs()
	b.SetBytes(int64(len(spec)))
	for b.Loop() {
		if _, err := app.Load("broken.yaml", spec, cat); err == nil {
			b.Fatal("loaded")
		}
	}
}
