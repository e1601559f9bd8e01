package orchestrator

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

func TestRunScale(t *testing.T) {
	var fake time.Duration
	clock := func() time.Duration { fake += time.Microsecond; return fake }
	r, err := RunScale(ScaleOptions{Servers: 200, Periods: 30, StarvePerPeriod: 0.01, Seed: 3, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if r.Servers != 200 || r.Nodes != 1000 || r.Instances != 1600 || r.Heartbeats != 800 || r.PerSecond != 16000 {
		t.Errorf("sizes %+v, want 200 servers, 1000 nodes, 1600 instances, 800 heartbeats a period (16,000/s)", r)
	}
	if r.PayloadBytes != HeartbeatCoreSize+2*ExecSampleSize {
		t.Errorf("payload %v bytes, want %d", r.PayloadBytes, HeartbeatCoreSize+2*ExecSampleSize)
	}
	if r.Migrations == 0 {
		t.Error("no migration: the starving SmartNICs were not relieved")
	}
	// The fake clock advances 1 µs per reading, two readings per phase.
	if r.IngestNs <= 0 || r.DecideNs != 1000 || r.CoreShare <= 0 {
		t.Errorf("timings %+v", r)
	}
	for _, bad := range []ScaleOptions{{}, {Servers: 10}, {Servers: 10, Clock: clock, InstancesPerNIC: -1}, {Servers: 10, Clock: clock, StarvePerPeriod: 2}} {
		if _, err := NewScale(bad); err == nil {
			t.Errorf("NewScale(%+v) accepted", bad)
		}
	}
}

// TestObserveBatchMatchesObserve feeds one stream of heartbeats to two
// orchestrators, one at a time and in batches, and compares what they
// decide and hold.
func TestObserveBatchMatchesObserve(t *testing.T) {
	mk := func() (*Orchestrator, []InstanceID) {
		o, _ := New(Config{Load: placement.NewLoad(newCluster(t, "4xType2-SmartNIC"))}, 0)
		return o, deployApp(t, o, "iot-ts", 20000)
	}
	a, _ := mk()
	b, _ := mk()
	rng := rand.New(rand.NewPCG(5, 5))
	nn := a.topo.NumNodes()
	var now time.Duration
	for step := range 100 {
		now += DefaultHeartbeatPeriod
		var batch [][]byte
		for n := range topology.NodeID(nn) {
			if step > 50 && a.topo.ServerOf(n) == 2 {
				continue // server 2 falls silent
			}
			h := Heartbeat{Node: n, Seq: uint16(step + 1), Queue: uint16(rng.IntN(100)), RxBytes: uint32(rng.IntN(1 << 22))}
			for _, id := range a.InstancesOn(n) {
				h.Samples = append(h.Samples, ExecSample{Instance: id, Count: 100, MeanNs: uint32(5000 + rng.IntN(5000))})
			}
			p, _ := h.Append(nil)
			batch = append(batch, p)
		}
		batch = append(batch, []byte{1, 2, 3}) // a bad one in the middle of nothing
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		var firstErr error
		for _, p := range batch {
			if err := a.ObservePayload(now, p); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if err := b.ObserveBatch(now, batch); !errors.Is(err, ErrBadHeartbeat) || !errors.Is(firstErr, ErrBadHeartbeat) {
			t.Fatalf("errors %v and %v, want the bad payload reported", firstErr, err)
		}
		da, db := a.Decide(now), b.Decide(now)
		if !reflect.DeepEqual(da, db) {
			t.Fatalf("step %d: one at a time decided %v, in batches %v", step, da, db)
		}
		for _, m := range a.Migrations() {
			a.MigrationDone(now, m.ID)
			b.MigrationDone(now, m.ID)
		}
	}
	if !reflect.DeepEqual(a.nodes, b.nodes) || !reflect.DeepEqual(a.inst, b.inst) || a.Stats() != b.Stats() {
		t.Error("the two orchestrators hold different state")
	}
	if a.Stats().Heartbeats == 0 || !a.NodeFailed(a.topo.Server(2).Host) {
		t.Errorf("the stream tested little: %+v", a.Stats())
	}
}

// FuzzObservePayload feeds arbitrary payloads to an orchestrator with a
// deployment: whatever arrives, Observe and Decide must not panic, and a
// payload that decodes must be accepted or refused with ErrUnknownNode.
func FuzzObservePayload(f *testing.F) {
	h := Heartbeat{Node: 1, Seq: 1, Queue: 500, Samples: []ExecSample{{Instance: 3, Count: 100, MeanNs: 50000}}}
	seed, _ := h.Append(nil)
	f.Add(seed, uint8(3))
	f.Add([]byte{}, uint8(1))
	f.Add(make([]byte, 16), uint8(0))
	cluster := newCluster(f, "3xType1-SmartNIC")
	f.Fuzz(func(t *testing.T, b []byte, repeat uint8) {
		o, err := New(Config{Load: placement.NewLoad(cluster)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		deployApp(t, o, "iot-ts", 5000)
		now := time.Duration(0)
		for k := range int(repeat%8) + 1 {
			now += DefaultHeartbeatPeriod
			if len(b) >= 6 {
				b[4], b[5] = byte(k+1), 0 // consecutive sequence numbers
			}
			err := o.ObservePayload(now, b)
			var hb Heartbeat
			if derr := hb.Decode(b); derr != nil {
				if !errors.Is(err, ErrBadHeartbeat) {
					t.Fatalf("undecodable payload: Observe said %v", err)
				}
			} else if err != nil && !errors.Is(err, ErrUnknownNode) {
				t.Fatalf("decodable payload refused: %v", err)
			}
			for _, a := range o.Decide(now) {
				_ = o.Describe(a)
			}
		}
	})
}
