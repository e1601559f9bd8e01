package app_test

import (
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
