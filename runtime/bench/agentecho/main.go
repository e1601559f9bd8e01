// Command agentecho is the E3 side of the runtime's one-hop echo
// benchmark: one node agent in real mode (no emulation) with one core,
// running the echo service, whose client socket serves bare E3 requests on
// -addr. Each request is admitted at the ingress, given its completion
// weight, run through the echo handler, completed, and answered: the whole
// per-request path of the agent, against the C recvmmsg/sendmmsg echo
// server of transport/bench (../run.sh runs both under the same client).
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// spec has two echo shards so that instance 1, which the benchmark client
// addresses, exists.
const spec = `
name: echo
class: RTA
nodes:
  e: {service: echo, shards: 2}
`

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "client socket address")
	sockbuf := flag.Int("sockbuf", 4<<20, "socket buffer bytes")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agentecho:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*addr, *sockbuf); err != nil {
		fmt.Fprintln(os.Stderr, "agentecho:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(addr string, sockbuf int) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	cl, err := hwmodel.ClusterByName("1xBeefy")
	if err != nil {
		return err
	}
	topo, err := hwmodel.Topology(cl)
	if err != nil {
		return err
	}
	data, err := transport.ListenUDP(netip.AddrPortFrom(ap.Addr(), 0), transport.UDPConfig{})
	if err != nil {
		return err
	}
	cc, err := transport.ListenUDP(ap, transport.UDPConfig{SocketBuffer: sockbuf})
	if err != nil {
		return err
	}
	reg := services.Registry()
	ag, err := runtime.New(runtime.Config{Node: 0, Topology: topo, Cores: 1, Registry: reg, Conn: data, ClientConn: cc})
	if err != nil {
		return err
	}
	a, err := app.Load("echo.yaml", []byte(spec), reg)
	if err != nil {
		return err
	}
	ag.Start()
	defer ag.Close()
	t := &runtime.Table{Epoch: 1, Addrs: []netip.AddrPort{ag.Addr()},
		Apps: []runtime.AppRoute{{ID: 1, App: a, Nodes: []topology.NodeID{0, 0}}}}
	if err := ag.Apply(t); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s := ag.Stats()
	fmt.Printf("completed %d\n", s.Completed)
	return nil
}
