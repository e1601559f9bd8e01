package localcluster

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// ErrNetnsUnavailable is returned when network namespaces cannot be used:
// not root, or iproute2's ip missing.
var ErrNetnsUnavailable = errors.New("localcluster: network namespaces unavailable")

// NetnsAvailable says whether this process can build the namespaced
// cluster, and if not, why.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: they need root (this process runs as uid %d); run e3 up --netns with sudo, or without --netns for loopback addresses", ErrNetnsUnavailable, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: the ip command of iproute2 is missing (apt-get install iproute2)", ErrNetnsUnavailable)
	}
	return nil
}

// netns is the namespaced network: a namespace per server (its host and
// SmartNIC agents, each with its own address on the server's eth0, as a
// server with a SmartNIC has on its ports), a namespace per controller
// replica, and a namespace for the top-of-rack switch holding a Linux
// bridge that every other namespace's veth is plugged into. A veth from
// the root namespace is plugged in too, so that e3 up, the client
// commands and the operator's shell reach every address directly.
type netns struct {
	prefix string
	subnet netip.Prefix
	tor    string // the ToR namespace
	// nsOf maps a member (controller id or server name) to its namespace,
	// and torPort to its veth's end on the bridge.
	nsOf    map[string]string
	torPort map[string]string
	nveth   int
	created []string // namespaces, in creation order
	rootDev string
	log     func(string)
}

const torBridge = "tor0"

func newNetns(prefix string, subnet netip.Prefix) (*netns, error) {
	if len(prefix) == 0 || len(prefix) > 6 {
		return nil, fmt.Errorf("localcluster: netns prefix %q: want 1 to 6 characters (interface names are at most 15)", prefix)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return nil, fmt.Errorf("localcluster: netns prefix %q: want lower-case letters and digits", prefix)
		}
	}
	if !subnet.Addr().Is4() || subnet.Bits() != 16 {
		return nil, fmt.Errorf("localcluster: netns subnet %v: want an IPv4 /16, e.g. 10.177.0.0/16", subnet)
	}
	return &netns{prefix: prefix, subnet: subnet.Masked(), tor: prefix + "-tor", nsOf: map[string]string{}, torPort: map[string]string{},
		rootDev: prefix + "-root"}, nil
}

// addr returns subnet.x.y.
func (n *netns) addr(x, y int) netip.Addr {
	b := n.subnet.Addr().As4()
	b[2], b[3] = byte(x), byte(y)
	return netip.AddrFrom4(b)
}

// nodeIP is compute node id's address: x.y = 1 + id/250 . id%250 + 1.
func (n *netns) nodeIP(id int) netip.Addr { return n.addr(1+id/250, id%250+1) }

// controllerIP is replica i's (from 0) address.
func (n *netns) controllerIP(i int) netip.Addr { return n.addr(200, i+1) }

// rootIP is the root namespace's address on the bridge.
func (n *netns) rootIP() netip.Addr { return n.addr(255, 254) }

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("localcluster: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanStale removes namespaces and the root veth a previous run with
// the same prefix left behind (it was killed before tearing down).
func (n *netns) cleanStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], n.prefix+"-") {
				ipCmd("netns", "del", f[0])
			}
		}
	}
	if exec.Command("ip", "link", "show", n.rootDev).Run() == nil {
		ipCmd("link", "del", n.rootDev)
	}
}

// setup builds the ToR and the root's port.
func (n *netns) setup() error {
	n.cleanStale()
	if err := n.addNS(n.tor); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"-n", n.tor, "link", "add", torBridge, "type", "bridge"},
		{"-n", n.tor, "link", "set", torBridge, "up"},
		{"link", "add", n.rootDev, "type", "veth", "peer", "name", n.rootDev + "t"},
		{"link", "set", n.rootDev + "t", "netns", n.tor},
		{"-n", n.tor, "link", "set", n.rootDev + "t", "master", torBridge, "up"},
		{"addr", "add", n.rootIP().String() + "/16", "dev", n.rootDev},
		{"link", "set", n.rootDev, "up"},
	} {
		if err := ipCmd(c...); err != nil {
			return err
		}
	}
	return nil
}

func (n *netns) addNS(name string) error {
	if err := ipCmd("netns", "add", name); err != nil {
		return err
	}
	n.created = append(n.created, name)
	return ipCmd("-n", name, "link", "set", "lo", "up")
}

// addMember creates member's namespace (ns) with an eth0 plugged into the
// ToR and the given addresses on it.
func (n *netns) addMember(member, ns string, ips ...netip.Addr) error {
	if err := n.addNS(ns); err != nil {
		return err
	}
	n.nveth++
	dev := fmt.Sprintf("%s-v%d", n.prefix, n.nveth)
	port := dev + "t"
	cmds := [][]string{
		{"link", "add", dev, "type", "veth", "peer", "name", port},
		{"link", "set", port, "netns", n.tor},
		{"-n", n.tor, "link", "set", port, "master", torBridge, "up"},
		{"link", "set", dev, "netns", ns},
		{"-n", ns, "link", "set", dev, "name", "eth0"},
	}
	for _, ip := range ips {
		cmds = append(cmds, []string{"-n", ns, "addr", "add", ip.String() + "/16", "dev", "eth0"})
	}
	cmds = append(cmds, []string{"-n", ns, "link", "set", "eth0", "up"})
	for _, c := range cmds {
		if err := ipCmd(c...); err != nil {
			return err
		}
	}
	n.nsOf[member], n.torPort[member] = ns, port
	return nil
}

// partition unplugs member's port from the bridge: it keeps its address
// and its processes run, but it reaches nobody and nobody reaches it
// (except through its own namespace).
func (n *netns) partition(member string) error {
	port, ok := n.torPort[member]
	if !ok {
		return fmt.Errorf("localcluster: no namespace member %q", member)
	}
	return ipCmd("-n", n.tor, "link", "set", port, "nomaster")
}

// heal plugs member's port back in.
func (n *netns) heal(member string) error {
	port, ok := n.torPort[member]
	if !ok {
		return fmt.Errorf("localcluster: no namespace member %q", member)
	}
	return ipCmd("-n", n.tor, "link", "set", port, "master", torBridge)
}

// teardown deletes every namespace (their veths go with them) and the
// root's veth.
func (n *netns) teardown() error {
	var errs []error
	for i := len(n.created) - 1; i >= 0; i-- {
		if err := ipCmd("netns", "del", n.created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	n.created = nil
	if exec.Command("ip", "link", "show", n.rootDev).Run() == nil {
		if err := ipCmd("link", "del", n.rootDev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// exec wraps argv to run in member's namespace.
func (n *netns) exec(member string, argv []string) []string {
	return append([]string{"ip", "netns", "exec", n.nsOf[member]}, argv...)
}
