package placement

import (
	"testing"
)

var testMix = []ScaleService{{Name: "kvs", MemoryMB: 1024}, {Name: "sql", MemoryMB: 1024, NonMigratable: true}, {Name: "ema", MemoryMB: 64}}

// TestScaleWorkload checks that the scale experiment's microservices are
// reproducible from the seed and shaped as documented: one new instance,
// fed by clients or by one placed earlier microservice (deployed, with an
// edge), never sending on more than it receives.
func TestScaleWorkload(t *testing.T) {
	run := func(seed uint64) []string {
		sc, err := NewScale(ScaleOptions{Servers: 2, ServersPerRack: 1, Services: testMix, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		sent := map[string]float64{}
		rps := map[string]float64{}
		for range 500 {
			p := sc.Next()
			if err := p.Err(); err != nil {
				t.Fatal(err)
			}
			last := InstanceID(p.NumInstances() - 1)
			in := p.Instance(last)
			rps[in.Name] = in.RPS
			switch p.NumInstances() {
			case 1:
				if in.IngressRPS != in.RPS {
					t.Fatalf("%s: a client-fed microservice with ingress %v of %v", in.Name, in.IngressRPS, in.RPS)
				}
			case 2:
				up := p.Instance(0)
				if up.Deployed < 0 || p.NumEdges() != 1 || p.Edge(0).RPS != in.RPS {
					t.Fatalf("%s fed by %s: deployed %v, edges %d", in.Name, up.Name, up.Deployed, p.NumEdges())
				}
				sent[up.Name] += in.RPS
				if sent[up.Name] > rps[up.Name]*(1+1e-9) {
					t.Fatalf("%s sends %v messages/s, receives %v", up.Name, sent[up.Name], rps[up.Name])
				}
			default:
				t.Fatalf("a problem of %d instances", p.NumInstances())
			}
			// A trivial placer: the first node that fits.
			s := NewState(p)
			for n := range s.ScanCandidates(last) {
				if s.Check(last, n).OK() {
					s.Assign(last, n)
					break
				}
			}
			if err := sc.Commit(p, &Result{Assignment: s.Assignment()}); err != nil {
				t.Fatal(err)
			}
			out = append(out, in.Name+"/"+in.Service)
		}
		committed, placed := sc.Deployed()
		t.Logf("seed %d: %d committed, %d placed on 2 servers", seed, committed, placed)
		if placed == 0 || placed == committed {
			t.Errorf("seed %d: %d of %d placed; the test wants a cluster that fills up", seed, placed, committed)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("seed 1 twice: microservice %d is %s then %s", k, a[k], b[k])
		}
	}
	same := 0
	for k := range a {
		if a[k] == c[k] {
			same++
		}
	}
	if same == len(a) {
		t.Error("seeds 1 and 2 give the same microservices")
	}
	if _, err := NewScale(ScaleOptions{Servers: 0, Services: testMix}); err == nil {
		t.Error("0 servers accepted")
	}
	if _, err := NewScale(ScaleOptions{Servers: 1, Services: []ScaleService{{Name: "toaster"}}}); err == nil {
		t.Error("a service without calibration accepted")
	}
}
