package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/e3-platform/e3/cluster"
)

// TestRunStateAndOrchestratorFlags: bad values of the flags this file's
// command adds are refused with a message naming the flag.
func TestRunStateAndOrchestratorFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "iot-ts", "--state", "tape"}, "--state"},
		{[]string{"run", "iot-ts", "--orchestrator", "maybe"}, "--orchestrator"},
	} {
		var out, errb bytes.Buffer
		if code := Run(c.args, &out, &errb); code == 0 {
			t.Errorf("%v: exit 0", c.args)
		} else if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: error %q does not name %s", c.args, errb.String(), c.want)
		}
	}
}

// TestPrintX6 checks the text form of an X6 report: both runs and the
// migrations with their outcome.
func TestPrintX6(t *testing.T) {
	rep := &cluster.X6Report{App: "IOT-TS", Cluster: "3xType1-SmartNIC", State: "disk", OfferedRPS: 38686, OnSmartNIC: 42, Primaries: 54,
		Dilation: 30, WarmupMs: 1500, WindowMs: 500,
		Runs: []cluster.X6Run{
			{ThroughputRPS: 26428, PowerW: 367.3, RPJ: 72.0, AvgUs: 645303, P99Us: 962068},
			{Orchestrator: true, ThroughputRPS: 37882, PowerW: 621.5, RPJ: 61.0, AvgUs: 187819, P99Us: 318504,
				Moves: []cluster.X6Move{{AtMs: 401, Instance: "recommend.9", From: "r0/s0/nic0", To: "r0/s0/host", Cause: "starvation", Committed: true, DurationMs: 106.2, PauseMs: 85.8, Bytes: 4382283},
					{AtMs: 1500, Instance: "apigw.2", From: "r0/s2/nic0", To: "r0/s2/host", Cause: "starvation", Reason: "the source is down"}}},
		}}
	var b bytes.Buffer
	if err := printX6(&b, rep); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"X6 IOT-TS on 3xType1-SmartNIC: 42 of 54 primaries", "D=30", "26428", "37882", "recommend.9", "committed", "called off: the source is down", "modelled"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
