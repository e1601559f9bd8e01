package service

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/e3-platform/e3/collections"
)

// Family is the kind of message a service consumes. Edges of an application
// DAG may only join services of the same family.
type Family uint8

const (
	// FamilyPacket services take a raw IPv4 packet and emit (possibly
	// rewritten) IPv4 packets: the network functions.
	FamilyPacket Family = iota + 1
	// FamilyEvent services take an [Event] record.
	FamilyEvent
)

func (f Family) String() string {
	switch f {
	case FamilyPacket:
		return "packet"
	case FamilyEvent:
		return "event"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// Accelerator is a set of SmartNIC hardware units a service benefits from.
type Accelerator uint8

const (
	AccelCrypto  Accelerator = 1 << iota // crypto coprocessor (AES, SHA)
	AccelPattern                         // deterministic finite automata / pattern matching unit
	AccelAtomics                         // fetch-and-add units
	AccelFloat32                         // single-precision FPU
	AccelFloat64                         // double precision: emulated in software on LiquidIO
)

var accelNames = []string{"crypto", "pattern", "atomics", "fp32", "fp64"}

// Names lists the accelerators in the set, in a fixed order.
func (a Accelerator) Names() []string {
	var out []string
	for i, n := range accelNames {
		if a&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (a Accelerator) String() string {
	if a == 0 {
		return "none"
	}
	return strings.Join(a.Names(), ",")
}

// Descriptor is what the platform knows about a microservice.
type Descriptor struct {
	// Name is the registry key used in application specs ("kvs", "ipsec").
	Name string
	// Summary is one line for listings.
	Summary string
	// Family is the kind of message the service consumes.
	Family Family
	// Stateful services keep state in reliable collections.
	Stateful bool
	// Migratable services can be moved between nodes with their state.
	// Services whose state does not live in reliable collections (SQL) are
	// not, and placement pins them to host processors.
	Migratable bool
	// Accelerators the service would use on a SmartNIC.
	Accelerators Accelerator
	// MemoryMB is the resident memory one instance needs, for placement.
	MemoryMB int
	// New builds one instance. It is nil only for descriptors registered
	// for their metadata alone.
	New func(env Env) (Handler, error)
	// NewGenerator returns a deterministic request generator producing
	// requests of about size bytes, for tests, benchmarks and load
	// generation.
	NewGenerator func(seed int64, size int) Generator
}

// Handler processes one message.
type Handler interface {
	// Handle processes req. It must not keep req or c after it returns.
	// A malformed request is reported by returning an error; the handler
	// must not panic on any input.
	Handle(c *Context, req []byte) error
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(c *Context, req []byte) error

// Handle calls f(c, req).
func (f HandlerFunc) Handle(c *Context, req []byte) error { return f(c, req) }

// Closer is implemented by handlers that hold resources beyond memory.
type Closer interface{ Close() error }

// Generator produces requests for a service.
type Generator interface {
	// Next appends the next request to dst[:0] and returns it with the key
	// hash the request is routed by.
	Next(dst []byte) (req []byte, key uint64)
}

// Env is what a service instance gets when it is created.
type Env struct {
	// Instance names the instance ("iot-ts/ema.3"), for logs and state.
	Instance string
	// Config is the node's config map from the application spec.
	Config map[string]string
	// Store holds the instance's reliable collections. It is never nil for
	// a stateful service.
	Store collections.Store
	// Seed seeds any randomness the service needs (IVs excepted, which come
	// from crypto/rand).
	Seed int64
}

// Int returns config key k as an int, or def when it is absent.
func (e Env) Int(k string, def int) (int, error) {
	s, ok := e.Config[k]
	if !ok {
		return def, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("config %q: %q is not an integer", k, s)
	}
	return v, nil
}

// Float returns config key k as a float64, or def when it is absent.
func (e Env) Float(k string, def float64) (float64, error) {
	s, ok := e.Config[k]
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("config %q: %q is not a number", k, s)
	}
	return v, nil
}

// String returns config key k, or def when it is absent.
func (e Env) String(k, def string) string {
	if s, ok := e.Config[k]; ok {
		return s
	}
	return def
}

// Emitter receives the messages a handler emits. The runtime, the simulator
// and tests each implement it.
type Emitter interface {
	// Emit sends payload along every outgoing edge of the current DAG node,
	// routed by key. The emitter copies payload before it returns.
	Emit(key uint64, payload []byte)
}

// Context carries one call of a handler. The runtime keeps one per worker
// and resets it before each call, so using it does not allocate.
type Context struct {
	// Now is the current time in nanoseconds, emulated or virtual where the
	// caller dilates or simulates time. Services read time only from here.
	Now int64
	// Key is the key hash the message was routed by.
	Key uint64
	// Scratch is a per-worker buffer a handler may use for the length of a
	// call, to build responses and emitted messages without allocating.
	Scratch []byte

	emitter Emitter
	resp    []byte
	emitted int
}

// Reset prepares c for a new call.
func (c *Context) Reset(now int64, key uint64, e Emitter) {
	c.Now, c.Key, c.emitter = now, key, e
	c.resp = c.resp[:0]
	c.emitted = 0
}

// Respond sets the reply to the client, copying b.
func (c *Context) Respond(b []byte) { c.resp = append(c.resp[:0], b...) }

// Response returns the reply set by the handler; it is valid until the next
// Reset.
func (c *Context) Response() []byte { return c.resp }

// Emit passes payload to the next DAG stage, routed by key. With no emitter
// (a service run alone) the message is counted and dropped.
func (c *Context) Emit(key uint64, payload []byte) {
	c.emitted++
	if c.emitter != nil {
		c.emitter.Emit(key, payload)
	}
}

// Emitted reports how many messages the current call emitted.
func (c *Context) Emitted() int { return c.emitted }

// ErrMalformed is wrapped by services for requests they cannot decode.
var ErrMalformed = errors.New("service: malformed request")
