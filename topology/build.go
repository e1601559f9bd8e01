package topology

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// MaxServers bounds the servers of one topology. It is far above the
// paper's largest cluster (50,000 servers) and keeps a mistyped size from
// asking for gigabytes before anything can complain.
const MaxServers = 1 << 24

// Node IDs are int32: the largest topology must fit. This fails to compile
// if the bounds above ever allow more nodes than an int32 can count.
const _ = uint32(math.MaxInt32 - MaxServers*(1+MaxSmartNICs))

// DefaultUplinkGbps is the bandwidth of a switch-to-switch link (ToR to
// aggregation, aggregation to core) when a [Fabric] leaves UplinkGbps zero.
// The paper's experiments use a single ToR and give no figure; 100 Gb/s is a
// common spine link speed today.
const DefaultUplinkGbps = 100.0

// ErrEmpty is returned (wrapped) when a topology would have no server, or a
// rack or pod without servers.
var ErrEmpty = errors.New("topology: empty")

// Fabric describes the switches above the ToRs. A topology with one rack has
// no aggregation switches and one with one pod has no core switches: no path
// could use them.
//
// Every ToR connects to every aggregation switch of its pod, and aggregation
// switch i of every pod connects to core switches i*CoreUplinks ..
// (i+1)*CoreUplinks-1, the wiring of a k-ary fat tree.
type Fabric struct {
	// AggregationPerPod is the number of aggregation switches in each pod.
	AggregationPerPod int
	// CoreUplinks is the number of core switches each aggregation switch
	// connects to; there are AggregationPerPod*CoreUplinks core switches.
	CoreUplinks int
	// UplinkGbps is the bandwidth of each switch-to-switch link.
	UplinkGbps float64
}

// validate fills the zero fields of f with defaults (1, 1, DefaultUplinkGbps)
// and rejects negative or absurd values.
func (f *Fabric) validate() error {
	const maxSwitches = 1 << 16
	if f.AggregationPerPod < 0 || f.AggregationPerPod > maxSwitches {
		return fmt.Errorf("topology: Fabric.AggregationPerPod = %d, want 0..%d (0 means 1)", f.AggregationPerPod, maxSwitches)
	}
	if f.CoreUplinks < 0 || f.CoreUplinks > maxSwitches {
		return fmt.Errorf("topology: Fabric.CoreUplinks = %d, want 0..%d (0 means 1)", f.CoreUplinks, maxSwitches)
	}
	if f.UplinkGbps < 0 || math.IsNaN(f.UplinkGbps) || math.IsInf(f.UplinkGbps, 0) {
		return fmt.Errorf("topology: Fabric.UplinkGbps = %v, want >= 0 (0 means %v)", f.UplinkGbps, DefaultUplinkGbps)
	}
	if f.AggregationPerPod == 0 {
		f.AggregationPerPod = 1
	}
	if f.CoreUplinks == 0 {
		f.CoreUplinks = 1
	}
	if f.UplinkGbps == 0 {
		f.UplinkGbps = DefaultUplinkGbps
	}
	return nil
}

// New builds a single-rack cluster: the given servers, in order, under one
// ToR switch, as in the paper's small testbed clusters.
func New(servers ...ServerSpec) (*Topology, error) {
	var b Builder
	for _, s := range servers {
		b.AddServer(s)
	}
	return b.Build()
}

// Builder assembles a topology of any shape, pod by pod and rack by rack.
// The zero value is ready to use. Errors in the specs are remembered and
// returned by Build, so a caller can add servers without checking each call.
//
//	var b topology.Builder
//	b.AddServer(beefy)   // pod 0, rack 0
//	b.AddRack()
//	b.AddServer(wimpy)   // pod 0, rack 1
//	t, err := b.Build()
type Builder struct {
	// Fabric describes the switches above the ToRs; see [Fabric] for the
	// defaults of zero fields.
	Fabric Fabric

	t        Topology
	specKey  map[string]int32
	lastSpec int32
	openRack bool // the current pod has a rack that AddServer may use
	err      error
}

// AddPod starts a new pod. The next server goes into a new rack in it.
func (b *Builder) AddPod() PodID {
	b.t.podFirst = append(b.t.podFirst, RackID(len(b.t.rackPod)))
	b.openRack = false
	return PodID(len(b.t.podFirst) - 1)
}

// AddRack starts a new rack in the current pod (pod 0 if none was started).
func (b *Builder) AddRack() RackID {
	if len(b.t.podFirst) == 0 {
		b.AddPod()
	}
	b.t.rackFirst = append(b.t.rackFirst, ServerID(len(b.t.serverRack)))
	b.t.rackPod = append(b.t.rackPod, PodID(len(b.t.podFirst)-1))
	b.openRack = true
	return RackID(len(b.t.rackPod) - 1)
}

// AddServer adds a server built from spec to the current rack (starting
// one if needed) and returns its ID. If spec is invalid, the server is not
// added, -1 is returned, and Build will report the error.
func (b *Builder) AddServer(spec ServerSpec) ServerID {
	if b.err != nil {
		return -1
	}
	if !b.openRack {
		b.AddRack()
	}
	id := ServerID(len(b.t.serverRack))
	where := func() string {
		return fmt.Sprintf("r%d/s%d", len(b.t.rackPod)-1, id-b.t.rackFirst[len(b.t.rackFirst)-1])
	}
	if int(id) >= MaxServers {
		b.err = fmt.Errorf("topology: server %s: more than %d servers", where(), MaxServers)
		return -1
	}
	si, err := b.spec(&spec)
	if err != nil {
		b.err = fmt.Errorf("topology: server %s (model %q): %w", where(), spec.Model, err)
		return -1
	}
	b.addServer(si)
	return id
}

// spec validates spec and returns its index in the spec table, adding it
// if it is new. Consecutive servers of one model, the common case, cost one
// comparison.
func (b *Builder) spec(spec *ServerSpec) (int32, error) {
	if err := spec.validate(); err != nil {
		return 0, err
	}
	if len(b.t.specs) > 0 && b.t.specs[b.lastSpec].equal(spec) {
		return b.lastSpec, nil
	}
	if b.specKey == nil {
		b.specKey = make(map[string]int32)
	}
	k := spec.key()
	i, ok := b.specKey[k]
	if !ok {
		i = int32(len(b.t.specs))
		b.t.specs = append(b.t.specs, spec.filled())
		b.specKey[k] = i
	}
	b.lastSpec = i
	return i, nil
}

// addServer appends a server of a known-valid spec to the current rack.
func (b *Builder) addServer(spec int32) {
	id := ServerID(len(b.t.serverRack))
	first := NodeID(len(b.t.nodeServer))
	b.t.serverFirst = append(b.t.serverFirst, first)
	b.t.serverRack = append(b.t.serverRack, RackID(len(b.t.rackPod)-1))
	b.t.serverSpec = append(b.t.serverSpec, spec)
	for range 1 + len(b.t.specs[spec].SmartNICs) {
		b.t.nodeServer = append(b.t.nodeServer, id)
	}
}

// grow reserves room for servers more servers of nodes nodes in all, so
// that generators with known sizes allocate once.
func (b *Builder) grow(servers, nodes, racks, pods int) {
	b.t.nodeServer = slices.Grow(b.t.nodeServer, nodes)
	b.t.serverFirst = slices.Grow(b.t.serverFirst, servers+1)
	b.t.serverRack = slices.Grow(b.t.serverRack, servers)
	b.t.serverSpec = slices.Grow(b.t.serverSpec, servers)
	b.t.rackFirst = slices.Grow(b.t.rackFirst, racks+1)
	b.t.rackPod = slices.Grow(b.t.rackPod, racks)
	b.t.podFirst = slices.Grow(b.t.podFirst, pods+1)
}

// Build checks the shape and returns the topology. It returns the first
// error met by AddServer, or an error wrapping [ErrEmpty] when there is no
// server or a rack or pod was started and left empty. The Builder is reset
// and may be used again.
func (b *Builder) Build() (*Topology, error) {
	defer func() { *b = Builder{Fabric: b.Fabric} }()
	if b.err != nil {
		return nil, b.err
	}
	t := &b.t
	if len(t.serverRack) == 0 {
		return nil, fmt.Errorf("%w: no servers", ErrEmpty)
	}
	t.rackFirst = append(t.rackFirst, ServerID(len(t.serverRack)))
	for r := range len(t.rackPod) {
		if t.rackFirst[r] == t.rackFirst[r+1] {
			return nil, fmt.Errorf("%w: rack r%d has no servers", ErrEmpty, r)
		}
	}
	t.podFirst = append(t.podFirst, RackID(len(t.rackPod)))
	for p := range len(t.podFirst) - 1 {
		if t.podFirst[p] == t.podFirst[p+1] {
			return nil, fmt.Errorf("%w: pod p%d has no racks", ErrEmpty, p)
		}
	}
	t.serverFirst = append(t.serverFirst, NodeID(len(t.nodeServer)))
	t.fabric = b.Fabric
	if err := t.fabric.validate(); err != nil {
		return nil, err
	}
	if nSwitch := int64(len(t.rackPod)) + int64(len(t.podFirst)-1)*int64(t.fabric.AggregationPerPod) +
		int64(t.fabric.AggregationPerPod)*int64(t.fabric.CoreUplinks); nSwitch > math.MaxInt32 {
		return nil, fmt.Errorf("topology: %d switches, want at most %d: lower Fabric.AggregationPerPod or CoreUplinks", nSwitch, math.MaxInt32)
	}
	out := &Topology{
		nodeServer:  tight(t.nodeServer),
		serverFirst: tight(t.serverFirst),
		serverRack:  tight(t.serverRack),
		serverSpec:  tight(t.serverSpec),
		rackFirst:   tight(t.rackFirst),
		rackPod:     tight(t.rackPod),
		podFirst:    tight(t.podFirst),
		specs:       tight(t.specs),
		fabric:      t.fabric,
	}
	return out, nil
}

// tight returns s without spare capacity worth keeping, so that a built
// topology holds no more than it needs.
func tight[S ~[]E, E any](s S) S {
	if cap(s)-len(s) <= len(s)/16 {
		return s
	}
	return slices.Clone(s)
}
