package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/services/kvs"
)

// storeSpec is one KVS shard with a backup.
const storeSpec = `
name: kv-store
class: IOT
nodes:
  kvs: {service: kvs, backups: 1}
`

// placeStore places storeSpec's primary and backup on the named nodes.
func placeStore(t *testing.T, clusterName string, a *app.App, rps float64, primary, backup string) *Plan {
	t.Helper()
	spec, _ := hwmodel.ClusterByName(clusterName)
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		t.Fatal(err)
	}
	assign := make(placement.Assignment, len(a.Instances()))
	for _, in := range a.Instances() {
		name := backup
		if in.IsPrimary() {
			name = primary
		}
		if assign[in.Index], err = topo.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := NewPlan(clusterName, a, rps, assign)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// setWorkload writes key k<i> = v<i> for i = 0, 1, 2, ...
type setWorkload struct{ n int }

func (w *setWorkload) Next(dst []byte) ([]byte, uint64, int) {
	k, v := fmt.Sprintf("k%d", w.n), fmt.Sprintf("value of k%d", w.n)
	w.n++
	b, _ := service.AppendEvent(dst[:0], &service.Event{Op: service.OpSet, Token: []byte(k), Text: []byte(v)}, 0)
	return b, kvs.KeyHash([]byte(k)), 0
}

// getWorkload reads the keys it is given, in order.
type getWorkload struct {
	keys []string
	n    int
}

func (w *getWorkload) Next(dst []byte) ([]byte, uint64, int) {
	k := w.keys[w.n%len(w.keys)]
	w.n++
	b, _ := service.AppendEvent(dst[:0], &service.Event{Op: service.OpGet, Token: []byte(k)}, 0)
	return b, kvs.KeyHash([]byte(k)), 0
}

func keyOf(payload []byte) string {
	var ev service.Event
	if err := service.DecodeEvent(payload, &ev); err != nil {
		return ""
	}
	return string(ev.Token)
}

// p99 of the samples sent in [from, to).
func p99(samples []Sample, from, to int64) (time.Duration, time.Duration, int) {
	var lat []int64
	for _, s := range samples {
		if s.Sent >= from && s.Sent < to && !s.Failed {
			lat = append(lat, s.Latency)
		}
	}
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	return time.Duration(lat[(len(lat)*99)/100]), time.Duration(lat[len(lat)-1]), len(lat)
}

// TestMigrationUnderSteadyLoad is the must-show: a KVS primary
// (durable store, backup on another server) moves from a SmartNIC to its
// host while an open-loop client writes a new key at a steady rate. Every
// request completes (the loadgen accounting has no failure, timeout or
// shed), every acknowledged write is read back from the destination, key
// by key, and the migration's duration and the latency spike (p99 of the
// requests sent during the migration against those sent before) are
// reported.
func TestMigrationUnderSteadyLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const (
		clusterName = "3xType1-SmartNIC"
		dilation    = 10
		rate        = 20000 // requests/s, emulated
	)
	a, err := app.Load("store.yaml", []byte(storeSpec), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	plan := placeStore(t, clusterName, a, rate, "r0/s0/nic0", "r0/s1/host")
	c, err := Start(Config{Cluster: clusterName, Dilation: dilation})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	dep, err := c.Deploy(plan, 1)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.NewTarget(dep)
	if err != nil {
		t.Fatal(err)
	}
	tg.RecordSamples(true)
	var mu sync.Mutex
	acked := map[string]bool{}
	arr, _ := loadgen.Periodic(rate)
	run := loadgen.OpenLoop{Options: loadgen.Options{Target: tg, Workload: &setWorkload{}, Clock: c.Clock(),
		Warmup: 20 * time.Millisecond, Duration: 140 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Verify: func(r loadgen.Request, resp []byte) error {
			if len(resp) < 1 || kvs.Status(resp[0]) != kvs.StatusOK {
				return fmt.Errorf("set %s: reply %x", keyOf(r.Payload), resp)
			}
			mu.Lock()
			acked[keyOf(r.Payload)] = true
			mu.Unlock()
			return nil
		}}, Arrivals: arr}
	x, err := run.Start()
	if err != nil {
		t.Fatal(err)
	}
	// Migrate in the middle of the measurement.
	time.Sleep(time.Duration(dilation) * 70 * time.Millisecond)
	host, _ := c.Topology().Lookup("r0/s0/host")
	res, err := c.Migrate(context.Background(), dep, "kvs.0", host)
	if err != nil {
		t.Fatal(err)
	}
	s, err := x.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed {
		t.Fatalf("migration called off: %v", res)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.Failed+s.TimedOut+s.Shed != 0 || s.Completed != s.Requests || s.Late+s.Duplicate != 0 {
		t.Fatalf("requests lost or failed: %v (first error %v)", s, s.FirstError)
	}
	if c.NodeOf(dep, 0) != host {
		t.Fatalf("kvs.0 runs on %s", c.Topology().Name(c.NodeOf(dep, 0)))
	}
	samples := tg.Samples()
	before, _, nb := p99(samples, res.StartedAt-int64(50*time.Millisecond), res.StartedAt)
	during, worst, nd := p99(samples, res.StartedAt, res.EndedAt)
	after, _, na := p99(samples, res.EndedAt, res.EndedAt+int64(50*time.Millisecond))
	t.Logf("%v", res)
	t.Logf("migration: %v emulated (%v real, D=%d); source held new messages for %v emulated (drain %v), %d messages held",
		res.Emulated.Round(time.Microsecond), res.Real.Round(time.Microsecond), dilation, res.PauseEmulated.Round(time.Microsecond),
		res.DrainEmulated.Round(time.Microsecond), res.Source.Held)
	t.Logf("latency p99 of writes sent in the 50 ms before: %v (%d); during the migration: %v, worst %v (%d); in the 50 ms after: %v (%d)",
		before, nb, during, worst, nd, after, na)
	t.Logf("loadgen: %v", s)
	if nd == 0 || during < before {
		t.Errorf("no latency spike seen: p99 %v during against %v before (%d requests during)", during, before, nd)
	}

	// Every acknowledged write, from the destination.
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if int64(len(keys)) != s.Completed {
		t.Fatalf("%d keys acknowledged, %d requests completed", len(keys), s.Completed)
	}
	var bad []string
	read := loadgen.ClosedLoop{Options: loadgen.Options{Target: tg, Workload: &getWorkload{keys: keys}, Clock: c.Clock(),
		MaxRequests: int64(len(keys)), Timeout: time.Second,
		Verify: func(r loadgen.Request, resp []byte) error {
			k := keyOf(r.Payload)
			if len(resp) < kvs.ReplyHeaderLen || kvs.Status(resp[0]) != kvs.StatusOK || string(resp[kvs.ReplyHeaderLen:]) != "value of "+k {
				mu.Lock()
				bad = append(bad, k)
				mu.Unlock()
				return fmt.Errorf("get %s: reply %q", k, resp)
			}
			return nil
		}}, Outstanding: 32}
	rs, err := read.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Completed != int64(len(keys)) || len(bad) > 0 {
		t.Fatalf("%d of %d acknowledged keys read back; wrong or missing: %v (first error %v)", rs.Completed, len(keys), bad, rs.FirstError)
	}
	t.Logf("all %d acknowledged writes read back from %s, one by one", len(keys), c.Topology().Name(host))
}
