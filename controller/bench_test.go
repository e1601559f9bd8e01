package controller

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"
)

// benchReplicas starts n replicas on loopback TCP with their logs in
// bbolt (fsync on), as deployed.
func benchReplicas(b *testing.B, n int) *replicas {
	rs := &replicas{hc: newTestHTTP()}
	b.Cleanup(rs.close)
	for i := range n {
		cfg := Config{ID: fmt.Sprintf("c%d", i+1), AdminToken: adminTok, JoinToken: joinTok, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
			DataDir: b.TempDir(), HTTPClient: rs.hc, LeaderGrace: time.Hour}
		if i > 0 {
			cfg.Join = []string{rs.servers[0].APIAddr()}
		}
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		rs.servers = append(rs.servers, s)
		for i == 0 && !s.IsLeader() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var k int
		for _, s := range rs.servers {
			s.Read(func(st *State) { k += len(st.Replicas) })
		}
		if k == n*n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("replicas did not join")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return rs
}

// BenchmarkCommit measures replicated commands (an agent re-registering
// at a new address: a state change and an event) from proposal to
// application on the leader: one at a time, and many at once, which raft
// batches into one log write and one fsync per replica.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{1, 3} {
		for _, par := range []int{1, 16} {
			// RunParallel runs GOMAXPROCS x par proposers.
			b.Run(fmt.Sprintf("replicas=%d/proposers=%d", n, par*goruntime.GOMAXPROCS(0)), func(b *testing.B) {
				rs := benchReplicas(b, n)
				s := rs.servers[0]
				var port atomic.Int64
				port.Store(30000)
				b.SetParallelism(par)
				b.ResetTimer()
				run := func() {
					p := port.Add(1)%30000 + 1
					c := &Command{Op: OpRegister, Register: &RegisterCmd{Node: "r0/s0/host", Role: RoleHost, Addr: fmt.Sprintf("127.0.0.1:%d", p)}}
					if res, err := s.propose(c); err != nil || res.Err != nil {
						b.Fatal(err, res.Err)
					}
				}
				if par == 1 {
					for range b.N {
						run()
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						run()
					}
				})
			})
		}
	}
}

// BenchmarkDeploy measures a deploy and an undeploy of a five-instance
// application through the HTTP API of a one-replica controller: parsing,
// HCM placement with explanations on a copy of the load, commit, and the
// orchestrator's bookkeeping.
func BenchmarkDeploy(b *testing.B) {
	rs := benchReplicas(b, 1)
	c := &Client{Endpoints: rs.endpoints(), Token: joinTok, HTTP: rs.hc}
	for i, n := range nodeNames {
		if _, err := c.Register(context.Background(), RegisterRequest{Node: n, Role: roleOf(n), Addr: fmt.Sprintf("127.0.0.1:%d", 24000+i)}); err != nil {
			b.Fatal(err)
		}
	}
	c.Token = adminTok
	req := deployReq(tinySpec)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Deploy(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		if err := c.Undeploy(context.Background(), "tiny"); err != nil {
			b.Fatal(err)
		}
	}
}
