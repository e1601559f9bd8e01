package cluster

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/services"
)

// TestOrchestratorRelievesStarvation runs IOT-TS packed onto the
// SmartNICs by memory, with the data-plane orchestrator in the
// controller: the SmartNICs' traffic managers build standing queues, the
// orchestrator orders migrations to the hosts for host starvation, the
// controller carries them out with the instances' durable state, and no
// request is lost meanwhile. A short run of X6 (orchestrator on only).
func TestOrchestratorRelievesStarvation(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates a cluster for about half a second of emulated time")
	}
	if raceEnabled {
		t.Skip("the race detector slows the emulation several times over; CI runs this test without -race")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, err := app.Load("mini.yaml", []byte(miniIoT), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunX6(context.Background(), X6Config{App: a, Seed: 1, Dilation: 6, Warmup: 400 * time.Millisecond, Window: 100 * time.Millisecond, onOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	run := rep.On
	t.Logf("offered %.0f req/s (the simulator's knee of HCM), %d of %d primaries packed on SmartNICs", rep.OfferedRPS, rep.OnSmartNIC, rep.Primaries)
	committed := 0
	for _, m := range run.Moves {
		t.Logf("at %.0f ms: %s %s -> %s (%s): committed %v, %.2f ms emulated, paused %.2f ms, %d bytes",
			m.AtMs, m.Instance, m.From, m.To, m.Cause, m.Committed, m.DurationMs, m.PauseMs, m.Bytes)
		if m.Cause != orchestrator.CauseStarvation.String() {
			t.Errorf("migration of %s for %s, want host starvation", m.Instance, m.Cause)
		}
		if m.Committed {
			committed++
		}
	}
	if committed == 0 {
		t.Fatalf("no migration committed: %+v", run.Moves)
	}
	if run.ErrorRate != 0 {
		t.Errorf("%.2f%% of requests failed", 100*run.ErrorRate)
	}
	t.Logf("throughput %.0f req/s, p99 %.0f µs, %.1f W, %.1f req/J, %d requests completed, %.1f s real",
		run.ThroughputRPS, run.P99Us, run.PowerW, run.RPJ, run.Completed, run.RealSeconds)
}

// miniIoT is IOT-TS in small: a third of its shards and recommenders
// with a tenth of the users, so that a test emulates and migrates it
// quickly.
const miniIoT = `
name: IOT-MINI
class: IOT
nodes:
  apigw:     {service: apigw,     shards: 2, backups: 1}
  sql:       {service: sql,       shards: 4, backups: 1, pin: host}
  ema:       {service: ema,       shards: 4, backups: 1}
  spike:     {service: spike,     shards: 4, backups: 1}
  recommend: {service: recommend, shards: 4, backups: 1, config: {users: "100"}}
edges:
  - {from: apigw, to: sql, policy: key_hash}
  - {from: sql, to: ema, policy: key_hash, key: same}
  - {from: sql, to: spike, policy: key_hash, key: same}
  - {from: sql, to: recommend, policy: key_hash, key: same}
workload:
  request_size: 512
  key_space: 10000
`

func placeProblem(t *testing.T, clusterName string, a *app.App, rps float64) *placement.Problem {
	t.Helper()
	spec, err := hwmodel.ClusterByName(clusterName)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	p, err := placement.FromApp(a, placement.NewLoad(pc), rps)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
