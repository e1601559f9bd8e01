package agentd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/controller"
	"github.com/e3-platform/e3/hwmodel"
)

const (
	testAdmin = "admin-0123456789abcdef"
	testJoin  = "join-0123456789abcdef"
)

// startController runs one controller replica in this process for a
// one-server Type1-SmartNIC cluster.
func startController(t *testing.T) *controller.Server {
	t.Helper()
	s, err := controller.New(controller.Config{ID: "c1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Cluster: "1xType1-SmartNIC", AdminToken: testAdmin, JoinToken: testJoin, Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not take office")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func agentConfig(t *testing.T, s *controller.Server, role string) Config {
	return Config{Role: role, Server: "r0/s0", Controllers: []string{s.APIAddr()}, JoinToken: testJoin,
		Listen: netip.MustParseAddrPort("127.0.0.1:0"), HTTP: "127.0.0.1:0", State: StateDisk, DataDir: t.TempDir(), Cores: 2}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestAgentWithController starts a host and a SmartNIC agent against an
// in-process controller: they register, link up over TCP, run the kv
// store the controller places, expose metrics and status, and refuse a
// routing table older than the one in force.
func TestAgentWithController(t *testing.T) {
	s := startController(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var agents []*Agent
	for _, role := range []string{RoleSmartNIC, RoleHost} {
		a, err := Start(ctx, agentConfig(t, s, role))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		agents = append(agents, a)
	}
	nic, host := agents[0], agents[1]
	if nic.Node() != "r0/s0/nic0" || host.Node() != "r0/s0/host" || host.Cluster() != "1xType1-SmartNIC" {
		t.Fatalf("registered as %s and %s of %s", nic.Node(), host.Node(), host.Cluster())
	}
	cl := &controller.Client{Endpoints: []string{s.APIAddr()}, Token: testAdmin}
	dep, err := cl.Deploy(ctx, controller.DeployRequest{Spec: "name: kv\nclass: IOT\nnodes:\n  kvs: {service: kvs}\n", RPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for host.Epoch() < dep.Epoch || nic.Epoch() < dep.Epoch || !host.links()[0].up() || !nic.links()[0].up() {
		if time.Now().After(deadline) {
			t.Fatalf("epochs %d/%d (want %d), links %v/%v", host.Epoch(), nic.Epoch(), dep.Epoch, host.links()[0].up(), nic.links()[0].up())
		}
		time.Sleep(5 * time.Millisecond)
	}
	var st Status
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := json.Unmarshal([]byte(get(t, "http://"+host.HTTPAddr()+"/v1/status")), &st); err != nil {
			t.Fatal(err)
		}
		st2 := nic.Status()
		if len(st.Instances)+len(st2.Instances) > 0 && st.HeartbeatsSent > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no instance of kv running: host %+v, nic %+v", st, st2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(st.HostLinks) != 1 || !st.HostLinks[0].Up || st.HostLinks[0].Peer != "r0/s0/nic0" {
		t.Errorf("host status: links %+v", st.HostLinks)
	}

	// An older table is refused and counted.
	old := &controller.Routes{Epoch: 1, Cluster: "1xType1-SmartNIC"}
	host.onRoutes(old)
	if host.refusedOld.Load() != 1 || host.Epoch() < dep.Epoch {
		t.Fatalf("stale table: refused %d, epoch %d", host.refusedOld.Load(), host.Epoch())
	}
	m := get(t, "http://"+host.HTTPAddr()+"/metrics")
	for _, want := range []string{
		`e3_agent_tables_refused_total{kind="host",node="r0/s0/host",reason="stale_epoch"} 1`,
		`e3_agent_host_link_up{node="r0/s0/host",peer="r0/s0/nic0"} 1`,
		`e3_agent_power_modelled_watts{kind="host",node="r0/s0/host"}`,
		`e3_agent_requests_admitted_total{kind="host",node="r0/s0/host"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if got := get(t, "http://"+nic.HTTPAddr()+"/healthz"); got != "ok\n" {
		t.Errorf("healthz: %q", got)
	}
}

// TestAgentRefused: a wrong join token, or a node the cluster does not
// have, ends Start at once with the controller's reason.
func TestAgentRefused(t *testing.T) {
	s := startController(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"wrong token", func(c *Config) { c.JoinToken = "join-wrong-0123456789" }, "403"},
		{"no such server", func(c *Config) { c.Server = "r0/s7" }, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := agentConfig(t, s, RoleHost)
			tc.edit(&cfg)
			start := time.Now()
			a, err := Start(ctx, cfg)
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) || time.Since(start) > 3*time.Second {
				t.Fatalf("after %v: %v; want a refusal with %s at once", time.Since(start), err, tc.want)
			}
		})
	}
}

// TestAgentNoController: with no replica answering, Start keeps trying
// until its context ends and then says so.
func TestAgentNoController(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	cfg := Config{Role: RoleHost, Server: "r0/s0", Controllers: []string{"127.0.0.1:1"}, JoinToken: testJoin,
		Listen: netip.MustParseAddrPort("127.0.0.1:0"), State: StateMemory}
	_, err := Start(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("Start: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	base := func() Config {
		return Config{Role: RoleHost, Server: "r0/s0", Controllers: []string{"127.0.0.1:7400"}, JoinToken: testJoin,
			Listen: netip.MustParseAddrPort("127.0.0.1:7000"), DataDir: "d"}
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Role = "nic" }, "--role"},
		{func(c *Config) { c.Server = "" }, "--server"},
		{func(c *Config) { c.Controllers = nil }, "--controller"},
		{func(c *Config) { c.JoinToken = "short" }, "--join-token-file"},
		{func(c *Config) { c.Listen = netip.MustParseAddrPort("0.0.0.0:7000") }, "--listen"},
		{func(c *Config) { c.DataDir = "" }, "--data"},
		{func(c *Config) { c.State = "tape" }, "--state"},
		{func(c *Config) { c.Cores = -1 }, "--cores"},
		{func(c *Config) { c.Model = "BlueField" }, "--model"},
		{func(c *Config) { c.Slot = 300 }, "--slot"},
	} {
		c := base()
		tc.edit(&c)
		err := c.validate()
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", c, err, tc.want)
		}
	}
	c := base()
	if err := c.validate(); err != nil || c.State != StateFsync {
		t.Fatalf("valid config: %v, state %q", err, c.State)
	}
}

func TestPowerModel(t *testing.T) {
	m := hwmodel.Type1SmartNIC
	host := newPowerModel(m, true, 12)
	if _, w := host.read(); w != m.IdleW {
		t.Fatalf("idle host: %v W, want %v", w, m.IdleW)
	}
	t0 := time.Unix(1000, 0)
	host.observe(t0, 0)
	host.observe(t0.Add(500*time.Millisecond), int64(time.Second)) // within the window: no change
	if b, _ := host.read(); b != 0 {
		t.Fatalf("busy %v before a window passed", b)
	}
	host.observe(t0.Add(2*time.Second), int64(5*time.Second)) // 2.5 busy cores
	want, _ := m.Power(2.5, nil)
	if b, w := host.read(); b != 2.5 || w != want {
		t.Fatalf("host: %v busy, %v W; want 2.5 and %v", b, w, want)
	}
	nic := newPowerModel(m, false, 12)
	nic.observe(t0, 0)
	nic.observe(t0.Add(time.Second), int64(30*time.Second)) // more than its cores: clamped
	if b, w := nic.read(); b != 12 || w != 12*m.NICCoreW() {
		t.Fatalf("SmartNIC: %v busy, %v W; want 12 and %v", b, w, 12*m.NICCoreW())
	}
}

func TestRAPL(t *testing.T) {
	root := t.TempDir()
	write := func(dir, file, v string) {
		os.MkdirAll(filepath.Join(root, dir), 0o755)
		if err := os.WriteFile(filepath.Join(root, dir, file), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("intel-rapl:0", "name", "package-0")
	write("intel-rapl:0", "energy_uj", "999000000")
	write("intel-rapl:0", "max_energy_range_uj", "1000000000")
	write("intel-rapl:0:0", "name", "core") // a sub-domain: counted in its package
	write("intel-rapl:0:0", "energy_uj", "5")
	write("intel-rapl:1", "energy_uj", "not a number") // unreadable: left out
	r := newRAPL(root)
	if r == nil || len(r.domains) != 1 {
		t.Fatalf("domains: %+v", r)
	}
	write("intel-rapl:0", "energy_uj", "999500000")
	if j := r.read()["package-0"]; j != 0.5 {
		t.Fatalf("after 500,000 µJ: %v J", j)
	}
	write("intel-rapl:0", "energy_uj", "1000000") // wrapped at 10^9 µJ
	if j := r.read()["package-0"]; j != 2 {
		t.Fatalf("after the wrap: %v J, want 2", j)
	}
	if newRAPL(filepath.Join(root, "none")) != nil {
		t.Fatal("RAPL found in a missing directory")
	}
}
