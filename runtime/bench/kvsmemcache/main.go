// Command kvsmemcache serves E3's KVS behind the runtime's memcached UDP
// ingress: one node agent in real mode with one core, a one-shard kvs
// application, and runtime.MemcacheIngress on -addr. ../memcache.sh drives
// it and memcached (one thread) with the same memaslap load.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

const spec = `
name: cache
class: RTA
nodes:
  kvs: {service: kvs}
`

func main() {
	addr := flag.String("addr", "127.0.0.1:11311", "memcached UDP address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "kvsmemcache:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	cl, _ := hwmodel.ClusterByName("1xBeefy")
	topo, err := hwmodel.Topology(cl)
	if err != nil {
		return err
	}
	data, err := transport.ListenUDP(netip.AddrPortFrom(ap.Addr(), 0), transport.UDPConfig{})
	if err != nil {
		return err
	}
	reg := services.Registry()
	ag, err := runtime.New(runtime.Config{Node: 0, Topology: topo, Cores: 1, Registry: reg, Conn: data})
	if err != nil {
		return err
	}
	ag.Start()
	defer ag.Close()
	a, err := app.Load("cache.yaml", []byte(spec), reg)
	if err != nil {
		return err
	}
	t := &runtime.Table{Epoch: 1, Addrs: []netip.AddrPort{ag.Addr()}, Apps: []runtime.AppRoute{{ID: 1, App: a, Nodes: []topology.NodeID{0}}}}
	if err := ag.Apply(t); err != nil {
		return err
	}
	conn, err := transport.ListenUDP(ap, transport.UDPConfig{})
	if err != nil {
		return err
	}
	g, err := runtime.NewMemcacheIngress(ag, 1, "kvs", conn)
	if err != nil {
		return err
	}
	defer g.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	fmt.Printf("completed %d\n", ag.Stats().Completed)
	return nil
}
