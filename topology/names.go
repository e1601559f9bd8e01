package topology

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Name returns the stable human name of node n: "r<rack>/s<i>/host" or
// "r<rack>/s<i>/nic<k>", where i is the server's position in its rack and
// k the SmartNIC's slot, all counted from 0. Names depend only on the shape
// of the cluster, so the same cluster built twice names its nodes alike.
func (t *Topology) Name(n NodeID) string {
	s := t.nodeServer[n]
	if i := n - t.serverFirst[s]; i > 0 {
		return t.ServerName(s) + "/nic" + strconv.Itoa(int(i-1))
	}
	return t.ServerName(s) + "/host"
}

// ServerName returns "r<rack>/s<i>", the prefix of its nodes' names.
func (t *Topology) ServerName(s ServerID) string {
	r := t.serverRack[s]
	return "r" + strconv.Itoa(int(r)) + "/s" + strconv.Itoa(int(s-t.rackFirst[r]))
}

// NameError reports a node name that [Topology.Lookup] cannot resolve.
type NameError struct {
	// Name is the whole name given.
	Name string
	// Part is the offending "/"-separated part, or "" when the name as a
	// whole is malformed.
	Part string
	// Reason says what is wrong and what was expected.
	Reason string
}

// Error names the node name, the bad part and what was expected.
func (e *NameError) Error() string {
	if e.Part == "" {
		return fmt.Sprintf("topology: node name %q: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("topology: node name %q: part %q: %s", e.Name, e.Part, e.Reason)
}

// Lookup returns the node called name (see [Topology.Name]). On failure the
// error is a *[NameError] naming the bad part.
func (t *Topology) Lookup(name string) (NodeID, error) {
	bad := func(part, format string, args ...any) (NodeID, error) {
		return -1, &NameError{Name: name, Part: part, Reason: fmt.Sprintf(format, args...)}
	}
	rackPart, rest, ok1 := strings.Cut(name, "/")
	serverPart, nodePart, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || strings.Contains(nodePart, "/") {
		return bad("", "want three parts r<rack>/s<server>/host or r<rack>/s<server>/nic<slot>")
	}
	r, err := number(rackPart, "r")
	if err != nil {
		return bad(rackPart, "%v", err)
	}
	if r >= t.NumRacks() {
		return bad(rackPart, "no such rack: the racks are r0..r%d", t.NumRacks()-1)
	}
	i, err := number(serverPart, "s")
	if err != nil {
		return bad(serverPart, "%v", err)
	}
	rack := t.Rack(RackID(r))
	if i >= rack.Servers {
		return bad(serverPart, "no such server: rack r%d holds s0..s%d", r, rack.Servers-1)
	}
	s := rack.FirstServer + ServerID(i)
	host := t.serverFirst[s]
	if nodePart == "host" {
		return host, nil
	}
	k, err := number(nodePart, "nic")
	if err != nil {
		return bad(nodePart, "want host or nic<slot>: %v", err)
	}
	nics := int(t.serverFirst[s+1]-host) - 1
	if k >= nics {
		if nics == 0 {
			return bad(nodePart, "no such SmartNIC: server r%d/s%d has none", r, i)
		}
		return bad(nodePart, "no such SmartNIC: server r%d/s%d holds nic0..nic%d", r, i, nics-1)
	}
	return host + 1 + NodeID(k), nil
}

// number parses prefix followed by a canonical decimal number (no sign, no
// leading zero) that fits an int32.
func number(part, prefix string) (int, error) {
	digits, ok := strings.CutPrefix(part, prefix)
	if !ok {
		return 0, fmt.Errorf("want %s<number>", prefix)
	}
	if digits == "" {
		return 0, fmt.Errorf("want %s<number>, the number is missing", prefix)
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, fmt.Errorf("number %q has a leading zero", digits)
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("want %s<number>, %q is not a decimal number", prefix, digits)
		}
	}
	v, err := strconv.ParseUint(digits, 10, 31)
	if err != nil || v > math.MaxInt32 {
		return 0, fmt.Errorf("number %s is too large", digits)
	}
	return int(v), nil
}
