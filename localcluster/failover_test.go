package localcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/agentd"
	"github.com/e3-platform/e3/controller"
	"github.com/e3-platform/e3/localcluster"
)

var statusHTTP = &http.Client{Timeout: 2 * time.Second}

// agentStatus reads an agent's /v1/status.
func agentStatus(addr string) (*agentd.Status, error) {
	resp, err := statusHTTP.Get("http://" + addr + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st agentd.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// eventSeq is the sequence number the next event will have.
func eventSeq(t *testing.T, cl *controller.Client) uint64 {
	t.Helper()
	ev, err := cl.Events(context.Background(), 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Next
}

// serverFailed waits for an event from sequence number since on that
// fails server, and returns when the controller recorded it.
func serverFailed(t *testing.T, cl *controller.Client, server string, since uint64, d time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, d, "server "+server+" failed over", func() bool {
		ev, err := cl.Events(context.Background(), since, 1024)
		if err != nil {
			return false
		}
		for _, e := range ev.Events {
			if e.Kind == "server-failed" && strings.Contains(e.Message, server) {
				at = time.Unix(0, e.At)
				return true
			}
		}
		return false
	})
	return at
}

// TestProcFailoverServerKill is the failover drill with real processes: the kv
// store (two shards, each with a backup on another server) is written by
// eight closed-loop clients; the server holding shard 0's primary loses
// its power (SIGKILL to its host and SmartNIC agent processes at once).
// The controller declares the server failed, promotes the backups, and
// the clients, on the new routes, write again. Requests must resume
// within 1 s of the detection, and every write acknowledged before,
// during or after the failure must read back, through the promoted
// primary, with its value.
func TestProcFailoverServerKill(t *testing.T) {
	if raceEnabled {
		t.Skip("measures failover in real time; the race detector slows every process several times over (run without -race)")
	}
	c := upProcs(t, localcluster.Config{Controllers: 1})
	cl := c.Client()
	dep := deploy(t, cl, kvSpec)
	primary := map[int]string{}
	backup := map[int]string{}
	for _, in := range dep.Instances {
		var shard int
		fmt.Sscanf(strings.TrimPrefix(in.Instance, "kvs."), "%d", &shard)
		if in.Role == controller.RolePrimary {
			primary[shard] = in.Node
		} else {
			backup[shard] = in.Node
		}
	}
	victim := serverOf(primary[0])
	t.Logf("placement: kvs.0 on %s (backup %s), kvs.1 on %s (backup %s); killing server %s", primary[0], backup[0], primary[1], backup[1], victim)
	waitReplicated(t, c, "kv", 2)

	k := newKVClient(t, c, "kv", netip.MustParseAddr("127.0.0.1"))
	w := startWriters(k, 8, 150*time.Millisecond)
	waitFor(t, 10*time.Second, "300 acknowledged writes", func() bool { return w.count() >= 300 })
	seq := eventSeq(t, cl)
	if ev, err := cl.Events(context.Background(), 0, 1024); err == nil {
		for _, e := range ev.Events {
			if e.Kind == "server-failed" {
				t.Fatalf("a server failed before the drill: %s", e.Message)
			}
		}
	}
	killed := time.Now()
	if err := c.KillServer(victim); err != nil {
		t.Fatal(err)
	}
	detected := serverFailed(t, cl, victim, seq, 5*time.Second)
	var routed time.Time
	waitFor(t, 5*time.Second, "the client on the failover's routes", func() bool {
		for {
			select {
			case ta := <-k.tables:
				if ta.at.After(detected) || ta.at.Equal(detected) {
					routed = ta.at
					return true
				}
			default:
				return false
			}
		}
	})
	time.Sleep(1500 * time.Millisecond) // keep writing on the new routes
	acks := w.halt()
	failed := w.failed.Load()

	// Resume: per shard, the gap in acknowledgements around the failure,
	// and the first acknowledgement after the detection.
	var worst time.Duration
	for shard := range 2 {
		var last, first time.Time
		for _, a := range acks {
			if a.shard != shard {
				continue
			}
			if !a.at.After(killed) {
				last = a.at
			} else if a.at.After(detected) && first.IsZero() {
				first = a.at
			}
		}
		if first.IsZero() {
			t.Fatalf("shard %d: no write acknowledged after the detection", shard)
		}
		resume := max(first.Sub(detected), 0)
		worst = max(worst, resume)
		t.Logf("shard %d (primary %s, backup %s): last ack %v before the kill, first ack %v after the detection; outage %v",
			shard, primary[shard], backup[shard], killed.Sub(last).Round(time.Millisecond), resume.Round(time.Millisecond), first.Sub(last).Round(time.Millisecond))
	}
	t.Logf("SIGKILL of %s: detected after %v, client on new routes %v after the detection, requests resumed %v after the detection; %d writes acknowledged, %d failed or timed out",
		victim, detected.Sub(killed).Round(time.Millisecond), routed.Sub(detected).Round(time.Millisecond), worst.Round(time.Millisecond), len(acks), failed)
	if worst > time.Second {
		t.Errorf("requests resumed %v after the detection, want within 1 s", worst)
	}

	// Every acknowledged write reads back through the primaries on the
	// new routes (the promoted backup for the victim's shard).
	lost := checkKeys(t, k, acks)
	t.Logf("read back all %d acknowledged keys; %d lost", len(acks), lost)
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost in the failover", lost, len(acks))
	}
	var promoted []string
	pl, err := cl.Placements(context.Background(), "kv", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pl {
		if p.Role == controller.RolePrimary {
			if serverOf(p.Node) == victim {
				t.Errorf("%s still on the failed server (%s)", p.Instance, p.Node)
			}
			if p.PromotedFrom != "" {
				promoted = append(promoted, p.Instance+" on "+p.Node+" (was "+p.PromotedFrom+")")
			}
		}
	}
	if len(promoted) == 0 {
		t.Errorf("no backup promoted: %+v", pl)
	}
	t.Logf("promoted: %s", strings.Join(promoted, ", "))
}

// checkKeys reads every acknowledged key with eight readers and returns
// how many are missing or hold another value.
func checkKeys(t *testing.T, k *kvClient, acks []ack) int {
	t.Helper()
	sort.Slice(acks, func(i, j int) bool { return acks[i].key < acks[j].key })
	var mu sync.Mutex
	lost := 0
	var wg sync.WaitGroup
	next := make(chan ack)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range next {
				var v string
				var found bool
				var err error
				for try := 0; try < 5; try++ {
					if v, found, err = k.get(a.key, time.Second); err == nil {
						break
					}
				}
				if err != nil || !found || v != a.value {
					mu.Lock()
					if lost < 5 {
						t.Errorf("key %s (shard %d, acknowledged at %v): got %q, found %v, err %v; want %q", a.key, a.shard, a.at.Format("15:04:05.000"), v, found, err, a.value)
					}
					lost++
					mu.Unlock()
				}
			}
		}()
	}
	for _, a := range acks {
		next <- a
	}
	close(next)
	wg.Wait()
	return lost
}
