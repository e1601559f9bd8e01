package orchestrator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReporter(t *testing.T) {
	r := NewReporter(4)
	h, err := r.Next(7, 1000, 2000, []InstanceCounters{{Instance: 1, Messages: 10, ExecNs: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	want := Heartbeat{Node: 4, Seq: 1, Queue: 7, Samples: []ExecSample{{Instance: 1, Count: 10, MeanNs: 100}}}
	if diff := cmp.Diff(want, *h); diff != "" {
		t.Errorf("first heartbeat (-want +got):\n%s", diff)
	}
	// A period later: deltas; instance 2 is new; instance 1 restarted
	// (its counters went back).
	h, _ = r.Next(0, 1500, 2100, []InstanceCounters{{Instance: 1, Messages: 4, ExecNs: 800}, {Instance: 2, Messages: 5, ExecNs: 50}})
	want = Heartbeat{Node: 4, Seq: 2, RxBytes: 500, TxBytes: 100,
		Samples: []ExecSample{{Instance: 1, Count: 4, MeanNs: 200}, {Instance: 2, Count: 5, MeanNs: 10}}}
	if diff := cmp.Diff(want, *h); diff != "" {
		t.Errorf("second heartbeat (-want +got):\n%s", diff)
	}
	h, _ = r.Next(0, 1500, 2100, []InstanceCounters{{Instance: 2, Messages: 105, ExecNs: 2050}})
	want = Heartbeat{Node: 4, Seq: 3, Samples: []ExecSample{{Instance: 2, Count: 100, MeanNs: 20}}}
	if diff := cmp.Diff(want, *h); diff != "" {
		t.Errorf("third heartbeat (-want +got):\n%s", diff)
	}
	if _, err := h.Append(nil); err != nil {
		t.Errorf("the reporter's heartbeat does not encode: %v", err)
	}
	if _, err := r.Next(0, 0, 0, []InstanceCounters{{Instance: 3}, {Instance: 3}}); err == nil {
		t.Error("instances out of order accepted")
	}
	counters := []InstanceCounters{{Instance: 1, Messages: 1}, {Instance: 2, Messages: 1}}
	if n := testing.AllocsPerRun(50, func() {
		counters[0].Messages++
		r.Next(1, 1, 1, counters)
	}); n != 0 {
		t.Errorf("Next allocates %v times", n)
	}
}
