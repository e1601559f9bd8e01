package orchestrator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/e3-platform/e3/topology"
)

// HeartbeatCoreSize is the size of a heartbeat without execution samples:
// the 16 bytes the paper's agents send every 50 ms.
const HeartbeatCoreSize = 16

// ExecSampleSize is the encoded size of one [ExecSample].
const ExecSampleSize = 12

// MaxExecSamples bounds the samples of one heartbeat. A SmartNIC holds a few
// dozen instances at most (4 GB of memory, services of 64 MB and more); the
// bound keeps a heartbeat inside one UDP datagram (16 + 12 x 4096 bytes
// < 64 KB) and catches a length field gone wrong.
const MaxExecSamples = 4096

// InstanceID names a deployed instance cluster-wide. The orchestrator hands
// out dense IDs, 0, 1, 2, ..., in the order [Orchestrator.Deploy] registers
// instances, and never reuses one; agents learn their instances' IDs from
// the controller with the instances and report them in heartbeats.
type InstanceID int32

// NoInstance is the InstanceID of no instance.
const NoInstance InstanceID = -1

// Heartbeat is one agent's report for one heartbeat period: the canonical
// record that a host or SmartNIC agent sends (as the payload of a
// transport message of KindHeartbeat) and the orchestrator observes.
//
// Wire layout, little endian, offsets in bytes:
//
//	 0 node u32     4 seq u16     6 queue u16
//	 8 rx bytes u32                12 tx bytes u32
//	16 samples: 12 bytes each, in strictly increasing instance order
//	   +0 instance u32   +4 count u32   +8 mean execution time u32 (ns)
//
// The first 16 bytes are the paper's fixed heartbeat (traffic-manager
// queue and traffic); the samples that follow are optional, as many as the
// node has instances to report. The payload length tells how many there
// are, so nothing counts them twice. Counters that would overflow their
// field saturate at its maximum.
type Heartbeat struct {
	// Node is the reporting compute node.
	Node topology.NodeID
	// Seq counts the node's heartbeats, wrapping at 2^16. The orchestrator
	// uses it to drop duplicates and late arrivals and to tell consecutive
	// heartbeats from ones with a loss between them.
	Seq uint16
	// Queue is the depth, in packets, of the SmartNIC traffic manager's
	// queue averaged over the period (0 on hosts).
	Queue uint16
	// RxBytes and TxBytes crossed the node's own network ports during
	// the period.
	RxBytes, TxBytes uint32
	// Samples are per-instance execution statistics for the period, in
	// strictly increasing Instance order (so a duplicate is caught in one
	// pass). Decode reuses the slice's capacity.
	Samples []ExecSample
}

// ExecSample is one instance's execution over a heartbeat period.
type ExecSample struct {
	Instance InstanceID
	// Count is the number of requests the instance finished.
	Count uint32
	// MeanNs is their mean execution time on a core, in nanoseconds.
	MeanNs uint32
}

// ErrBadHeartbeat is wrapped by every error about a malformed heartbeat.
var ErrBadHeartbeat = errors.New("orchestrator: bad heartbeat")

// HeartbeatError describes a malformed heartbeat: the field, its byte
// offset, the value found and what was expected. It wraps ErrBadHeartbeat.
type HeartbeatError struct {
	Field  string
	Offset int
	Value  uint64
	Want   string
}

// Error names the field, its offset, the value and what was expected.
func (e *HeartbeatError) Error() string {
	return fmt.Sprintf("orchestrator: bad heartbeat: %s at offset %d: %d, want %s", e.Field, e.Offset, e.Value, e.Want)
}

// Unwrap makes errors.Is(err, ErrBadHeartbeat) hold.
func (e *HeartbeatError) Unwrap() error { return ErrBadHeartbeat }

// EncodedSize returns the size of h on the wire.
func (h *Heartbeat) EncodedSize() int { return HeartbeatCoreSize + ExecSampleSize*len(h.Samples) }

// Append appends the encoding of h to b. It refuses, with the error Decode
// would give, a heartbeat that Decode would refuse: a node ID outside
// 0..2^31-1, more than MaxExecSamples samples, samples out of order, or a
// sample with a mean but no count. It does not allocate when b has room.
func (h *Heartbeat) Append(b []byte) ([]byte, error) {
	if err := h.check(); err != nil {
		return b, err
	}
	n := len(b)
	need := h.EncodedSize()
	if cap(b)-n < need {
		nb := make([]byte, n, n+need)
		copy(nb, b)
		b = nb
	}
	b = b[:n+need]
	p := b[n:]
	binary.LittleEndian.PutUint32(p[0:], uint32(h.Node))
	binary.LittleEndian.PutUint16(p[4:], h.Seq)
	binary.LittleEndian.PutUint16(p[6:], h.Queue)
	binary.LittleEndian.PutUint32(p[8:], h.RxBytes)
	binary.LittleEndian.PutUint32(p[12:], h.TxBytes)
	off := HeartbeatCoreSize
	for _, s := range h.Samples {
		binary.LittleEndian.PutUint32(p[off:], uint32(s.Instance))
		binary.LittleEndian.PutUint32(p[off+4:], s.Count)
		binary.LittleEndian.PutUint32(p[off+8:], s.MeanNs)
		off += ExecSampleSize
	}
	return b, nil
}

func (h *Heartbeat) check() error {
	if h.Node < 0 {
		return &HeartbeatError{Field: "node", Offset: 0, Value: uint64(uint32(h.Node)), Want: "a node ID 0.." + strconv.Itoa(1<<31-1)}
	}
	if len(h.Samples) > MaxExecSamples {
		return &HeartbeatError{Field: "sample count", Offset: HeartbeatCoreSize, Value: uint64(len(h.Samples)), Want: "at most " + strconv.Itoa(MaxExecSamples)}
	}
	prev := int64(-1)
	for k, s := range h.Samples {
		off := HeartbeatCoreSize + k*ExecSampleSize
		if int64(s.Instance) <= prev {
			return &HeartbeatError{Field: "sample " + strconv.Itoa(k) + " instance", Offset: off, Value: uint64(uint32(s.Instance)), Want: "above the previous sample's " + strconv.FormatInt(prev, 10) + " (strictly increasing)"}
		}
		if s.Count == 0 && s.MeanNs != 0 {
			return &HeartbeatError{Field: "sample " + strconv.Itoa(k) + " mean", Offset: off + 8, Value: uint64(s.MeanNs), Want: "0 when the count is 0"}
		}
		prev = int64(s.Instance)
	}
	return nil
}

// Decode parses the heartbeat payload b into h, reusing h.Samples'
// capacity: with enough capacity it does not allocate. b must hold exactly
// one heartbeat. Every error is a *HeartbeatError naming the field and its
// offset; on error h's fields are unspecified.
//
// Decode checks the encoding only; whether the node and the instances exist
// is for [Orchestrator.Observe] to judge.
func (h *Heartbeat) Decode(b []byte) error {
	if len(b) < HeartbeatCoreSize {
		return &HeartbeatError{Field: "length", Offset: 0, Value: uint64(len(b)), Want: "at least " + strconv.Itoa(HeartbeatCoreSize) + " bytes"}
	}
	extra := len(b) - HeartbeatCoreSize
	if extra%ExecSampleSize != 0 {
		return &HeartbeatError{Field: "length", Offset: 0, Value: uint64(len(b)), Want: strconv.Itoa(HeartbeatCoreSize) + " + " + strconv.Itoa(ExecSampleSize) + " x samples (a partial sample at offset " + strconv.Itoa(len(b)-extra%ExecSampleSize) + ")"}
	}
	ns := extra / ExecSampleSize
	if ns > MaxExecSamples {
		return &HeartbeatError{Field: "sample count", Offset: HeartbeatCoreSize, Value: uint64(ns), Want: "at most " + strconv.Itoa(MaxExecSamples)}
	}
	node := binary.LittleEndian.Uint32(b[0:])
	if node > 1<<31-1 {
		return &HeartbeatError{Field: "node", Offset: 0, Value: uint64(node), Want: "a node ID 0.." + strconv.Itoa(1<<31-1)}
	}
	h.Node = topology.NodeID(node)
	h.Seq = binary.LittleEndian.Uint16(b[4:])
	h.Queue = binary.LittleEndian.Uint16(b[6:])
	h.RxBytes = binary.LittleEndian.Uint32(b[8:])
	h.TxBytes = binary.LittleEndian.Uint32(b[12:])
	if cap(h.Samples) < ns {
		h.Samples = make([]ExecSample, ns)
	}
	h.Samples = h.Samples[:ns]
	prev := int64(-1)
	p := b[HeartbeatCoreSize:]
	for k := range ns {
		q := p[k*ExecSampleSize : k*ExecSampleSize+ExecSampleSize]
		inst := binary.LittleEndian.Uint32(q[0:])
		off := HeartbeatCoreSize + k*ExecSampleSize
		if int64(inst) <= prev || inst > 1<<31-1 {
			return &HeartbeatError{Field: "sample " + strconv.Itoa(k) + " instance", Offset: off, Value: uint64(inst), Want: "above the previous sample's " + strconv.FormatInt(prev, 10) + " (strictly increasing) and below 2^31"}
		}
		cnt, mean := binary.LittleEndian.Uint32(q[4:]), binary.LittleEndian.Uint32(q[8:])
		if cnt == 0 && mean != 0 {
			return &HeartbeatError{Field: "sample " + strconv.Itoa(k) + " mean", Offset: off + 8, Value: uint64(mean), Want: "0 when the count is 0"}
		}
		h.Samples[k] = ExecSample{Instance: InstanceID(inst), Count: cnt, MeanNs: mean}
		prev = int64(inst)
	}
	return nil
}

// Saturate32 converts a counter to a uint32 heartbeat field, saturating at
// its maximum; agents use it for bytes, counts and nanoseconds.
func Saturate32(v uint64) uint32 {
	if v > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(v)
}

// Saturate16 converts a counter to a uint16 heartbeat field, saturating.
func Saturate16(v uint64) uint16 {
	if v > 1<<16-1 {
		return 1<<16 - 1
	}
	return uint16(v)
}
