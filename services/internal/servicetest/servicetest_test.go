package servicetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// fakeTB records failures instead of failing the real test, so that each
// check can be shown to catch what it is for. Fatal ends the goroutine, as
// testing.T's does.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Logf(string, ...any) {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// run calls check with a fakeTB on its own goroutine and returns the
// failures it reported.
func run(check func(t testing.TB)) []string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f)
	}()
	<-done
	return f.failed
}

func expectFailure(t *testing.T, what string, failures []string, mention string) {
	t.Helper()
	if len(failures) == 0 {
		t.Errorf("%s: not caught", what)
		return
	}
	if !strings.Contains(failures[0], mention) {
		t.Errorf("%s: failure %q does not mention %q", what, failures[0], mention)
	}
}

// counter is a test service whose state, a count per key, lives in a
// reliable map; hidden adds state outside it, which a rebuild loses.
type counter struct {
	m      *collections.Map[uint64, uint64]
	hidden uint64
	leak   bool
}

func newCounter(s collections.Store, leak bool) (service.Handler, error) {
	m, err := collections.NewMap(s, "counts", collections.Uint64, collections.Uint64)
	return &counter{m: m, leak: leak}, err
}

func (h *counter) Handle(c *service.Context, req []byte) error {
	if len(req) < 8 {
		return fmt.Errorf("%w: %d bytes", service.ErrMalformed, len(req))
	}
	k := binary.LittleEndian.Uint64(req) % 50
	n, _ := h.m.Get(k)
	h.m.Set(k, n+1)
	if h.leak {
		h.hidden++
		n += h.hidden
	}
	c.Respond(binary.LittleEndian.AppendUint64(nil, n+1))
	return nil
}

// eventGen generates valid event requests of a size; its flaws are the
// mistakes CheckGenerator must catch.
type eventGen struct {
	rng                     *rand.Rand
	size                    int
	appendToDst, ignoreSeed bool
	shared                  *atomic.Uint64 // a global counter: not deterministic
	shortBy                 int
	now                     int64
}

var sharedCounter atomic.Uint64

func (g *eventGen) Next(dst []byte) ([]byte, uint64) {
	if !g.appendToDst {
		dst = dst[:0]
	}
	k := g.rng.Uint64N(1000)
	if g.shared != nil {
		k += g.shared.Add(1)
	}
	g.now++
	out, _ := service.AppendEvent(dst, &service.Event{Op: service.OpObserve, Key: k, Time: g.now}, g.size-g.shortBy)
	return out, k
}

func eventDescriptor(flaw func(*eventGen)) service.Descriptor {
	return service.Descriptor{Name: "test", Family: service.FamilyEvent, NewGenerator: func(seed int64, size int) service.Generator {
		if size <= 0 {
			size = 256
		}
		g := &eventGen{rng: rand.New(rand.NewPCG(uint64(seed), 1)), size: size}
		if flaw != nil {
			flaw(g)
		}
		if g.ignoreSeed {
			g.rng = rand.New(rand.NewPCG(1, 1))
		}
		return g
	}}
}

func TestCheckGenerator(t *testing.T) {
	if f := run(func(t testing.TB) { CheckGenerator(t, eventDescriptor(nil), 256) }); len(f) != 0 {
		t.Fatalf("a correct event generator failed: %v", f)
	}
	packets := service.Descriptor{Name: "packets", Family: service.FamilyPacket, NewGenerator: func(seed int64, size int) service.Generator {
		return packet.NewGenerator(packet.GenConfig{Seed: seed, Size: size})
	}}
	if f := run(func(t testing.TB) { CheckGenerator(t, packets, packet.DefaultSize) }); len(f) != 0 {
		t.Fatalf("the packet generator failed: %v", f)
	}
	expectFailure(t, "appending to dst", run(func(t testing.TB) {
		CheckGenerator(t, eventDescriptor(func(g *eventGen) { g.appendToDst = true }), 256)
	}), "differs")
	expectFailure(t, "shared state", run(func(t testing.TB) {
		CheckGenerator(t, eventDescriptor(func(g *eventGen) { g.shared = &sharedCounter }), 256)
	}), "differs")
	expectFailure(t, "seed ignored", run(func(t testing.TB) {
		CheckGenerator(t, eventDescriptor(func(g *eventGen) { g.ignoreSeed = true }), 256)
	}), "same")
	expectFailure(t, "short requests", run(func(t testing.TB) {
		CheckGenerator(t, eventDescriptor(func(g *eventGen) { g.shortBy = 1 }), 256)
	}), "bytes")
	expectFailure(t, "wrong default", run(func(t testing.TB) { CheckGenerator(t, eventDescriptor(nil), 512) }), "bytes")
}

func TestRebuiltAndLockstep(t *testing.T) {
	gen := func() service.Generator { return service.Echo.NewGenerator(3, 8) }
	var replies [][]byte
	if f := run(func(t testing.TB) {
		a, b := Rebuilt(t, func(s collections.Store) (service.Handler, error) { return newCounter(s, false) }, gen(), 500)
		replies = Lockstep(t, gen(), 300, a, b)
	}); len(f) != 0 {
		t.Fatalf("state kept in a map failed to rebuild: %v", f)
	}
	if len(replies) != 300 || binary.LittleEndian.Uint64(replies[0]) < 2 {
		t.Errorf("%d replies, first %x: the rebuilt counts were not compared", len(replies), replies[0])
	}
	expectFailure(t, "state outside the collections", run(func(t testing.TB) {
		a, b := Rebuilt(t, func(s collections.Store) (service.Handler, error) { return newCounter(s, true) }, gen(), 500)
		Lockstep(t, gen(), 300, a, b)
	}), "replied")
	expectFailure(t, "a handler error", run(func(t testing.TB) {
		refuse := service.HandlerFunc(func(*service.Context, []byte) error { return service.ErrMalformed })
		Lockstep(t, gen(), 1, refuse)
	}), "malformed")
}

func TestCopySnapshots(t *testing.T) {
	src, dst := collections.NewMemStore(), collections.NewMemStore()
	a, _ := newCounter(src, false)
	b, _ := newCounter(dst, false)
	Lockstep(t, service.Echo.NewGenerator(1, 8), 400, a)
	Lockstep(t, service.Echo.NewGenerator(2, 8), 100, b) // state to be replaced
	CopySnapshots(t, src.Collections(), dst.Collections())
	Lockstep(t, service.Echo.NewGenerator(3, 8), 300, a, b)

	other := collections.NewMemStore()
	if _, err := collections.NewMap(other, "other", collections.Uint64, collections.Uint64); err != nil {
		t.Fatal(err)
	}
	expectFailure(t, "different collections", run(func(t testing.TB) {
		CopySnapshots(t, src.Collections(), other.Collections())
	}), "against")
}

func TestRecordingStoreReplayError(t *testing.T) {
	rs := NewRecordingStore()
	h, _ := newCounter(rs, false)
	Lockstep(t, service.Echo.NewGenerator(1, 8), 10, h)
	if n := len(rs.Records("counts")); n != 10 {
		t.Fatalf("%d records of 10 updates", n)
	}
	// A collection whose codec refuses the values cannot take the records.
	ms := collections.NewMemStore()
	if _, err := collections.NewMap(ms, "counts", collections.Uint64, refusing{}); err != nil {
		t.Fatal(err)
	}
	expectFailure(t, "records that do not apply", run(func(t testing.TB) { rs.Replay(t, ms.Collections()) }), "counts")
}

// refusing is a codec that decodes nothing.
type refusing struct{}

func (refusing) Append(dst []byte, v uint64) []byte { return dst }
func (refusing) Decode([]byte) (uint64, error)      { return 0, errors.New("refused") }

// racy answers with a count shared by all callers: its replies depend on
// the interleaving, which CheckConcurrent must notice.
type racy struct{ n atomic.Uint64 }

func (h *racy) Handle(c *service.Context, req []byte) error {
	c.Respond(binary.LittleEndian.AppendUint64(nil, h.n.Add(1)))
	return nil
}

func TestCheckConcurrent(t *testing.T) {
	reqs, _ := Requests(service.Echo.NewGenerator(1, 16), 100)
	echo, _ := service.Echo.New(service.Env{})
	if f := run(func(t testing.TB) { CheckConcurrent(t, echo, reqs) }); len(f) != 0 {
		t.Fatalf("echo failed: %v", f)
	}
	expectFailure(t, "replies that depend on other calls", run(func(t testing.TB) { CheckConcurrent(t, &racy{}, reqs) }), "differs")
}

func TestReply(t *testing.T) {
	errDropped := errors.New("dropped")
	h := service.HandlerFunc(func(c *service.Context, req []byte) error {
		switch string(req) {
		case "bad":
			return fmt.Errorf("x: %w: bad", service.ErrMalformed)
		case "drop":
			return fmt.Errorf("x: %w", errDropped)
		case "boom":
			return errors.New("boom")
		}
		c.Respond(req)
		return nil
	})
	var c service.Context
	if r, ok := Reply(t, h, &c, []byte("hi")); !ok || string(r) != "hi" {
		t.Errorf("good request: %q %v", r, ok)
	}
	if _, ok := Reply(t, h, &c, []byte("bad")); ok {
		t.Error("malformed request reported ok")
	}
	if _, ok := Reply(t, h, &c, []byte("drop"), errDropped); ok {
		t.Error("dropped request reported ok")
	}
	expectFailure(t, "an error wrapping nothing known", run(func(t testing.TB) { Reply(t, h, &c, []byte("boom")) }), "boom")
	expectFailure(t, "a drop not allowed", run(func(t testing.TB) { Reply(t, h, &c, []byte("drop")) }), "dropped")
}

func TestCheckMalformed(t *testing.T) {
	h := service.HandlerFunc(func(c *service.Context, req []byte) error {
		switch string(req) {
		case "bad":
			return fmt.Errorf("x: %w: bad", service.ErrMalformed)
		case "bad but emitted":
			c.Emit(0, req)
			return fmt.Errorf("x: %w: bad", service.ErrMalformed)
		case "other":
			return errors.New("other")
		}
		return nil
	})
	if f := run(func(t testing.TB) { CheckMalformed(t, h, map[string][]byte{"a": []byte("bad")}) }); len(f) != 0 {
		t.Errorf("a refused request failed: %v", f)
	}
	expectFailure(t, "an accepted request", run(func(t testing.TB) { CheckMalformed(t, h, map[string][]byte{"ok": []byte("fine")}) }), "ok")
	expectFailure(t, "another error", run(func(t testing.TB) { CheckMalformed(t, h, map[string][]byte{"o": []byte("other")}) }), "other")
	expectFailure(t, "a refused request passed on", run(func(t testing.TB) {
		CheckMalformed(t, h, map[string][]byte{"e": []byte("bad but emitted")})
	}), "passed on")
}

func TestHandleAllocs(t *testing.T) {
	if RaceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	reqs, _ := Requests(service.Echo.NewGenerator(1, 64), 8)
	echo, _ := service.Echo.New(service.Env{})
	c := &service.Context{}
	c.Respond(make([]byte, 64)) // room for the reply
	if n := HandleAllocs(t, echo, c, 100, reqs); n != 0 {
		t.Errorf("echo: %v allocations", n)
	}
	alloc := service.HandlerFunc(func(c *service.Context, req []byte) error {
		c.Respond(append([]byte(nil), req...))
		return nil
	})
	if n := HandleAllocs(t, alloc, c, 100, reqs); n != 1 {
		t.Errorf("a copying handler: %v allocations, want 1", n)
	}
}

func TestDigest(t *testing.T) {
	a, b := NewDigest(), NewDigest()
	a.Bytes([]byte("ab"))
	a.Bytes([]byte("c"))
	b.Bytes([]byte("a"))
	b.Bytes([]byte("bc"))
	if a.Hex() == b.Hex() {
		t.Error("moving a boundary kept the fingerprint")
	}
	c, d := NewDigest(), NewDigest()
	c.Text("x")
	c.Float(1.5)
	d.Bytes([]byte("x"))
	d.Uint(0x3ff8000000000000)
	if c.Hex() != d.Hex() || len(c.Hex()) != 64 {
		t.Errorf("Text/Float and Bytes/Uint disagree: %s %s", c.Hex(), d.Hex())
	}
}

func TestThreadCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread CPU time is read on Linux only")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	x := 0
	for i := range 10_000_000 {
		x += i % 7
	}
	if d := threadCPU() - start; start <= 0 || d <= 0 || x == 0 {
		t.Errorf("thread CPU time %d, then %d ns more", start, d)
	}
}
