package servicetest

import (
	"bytes"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
)

// Lockstep sends the next n requests of g to every handler of hs in turn,
// each with the routing key g gives it, and fails t when a handler returns
// an error, or a reply or a number of emitted messages that differs from
// the first handler's. It returns the replies, for checks of what the
// comparison covered.
func Lockstep(t testing.TB, g service.Generator, n int, hs ...service.Handler) [][]byte {
	t.Helper()
	var c service.Context
	replies := make([][]byte, 0, n)
	for i := range n {
		req, key := g.Next(nil)
		var first []byte
		var emitted int
		for k, h := range hs {
			c.Reset(0, key, nil)
			if err := h.Handle(&c, req); err != nil {
				t.Fatalf("request %d: handler %d: %v", i, k, err)
			}
			if k == 0 {
				first, emitted = append([]byte(nil), c.Response()...), c.Emitted()
			} else if !bytes.Equal(first, c.Response()) || c.Emitted() != emitted {
				t.Fatalf("request %d: handler %d replied %x and emitted %d, handler 0 %x and %d", i, k, c.Response(), c.Emitted(), first, emitted)
			}
		}
		replies = append(replies, first)
	}
	return replies
}

// Rebuilt checks that an instance's state lives in its reliable
// collections alone. It makes an instance with newHandler on a
// RecordingStore and feeds it the next n requests of g; then it makes a
// second one on an empty MemStore and replays every record of the first
// into its collections, as a backup replica does. The caller then checks
// that the two answer alike, with Lockstep or with queries of its own.
func Rebuilt(t testing.TB, newHandler func(collections.Store) (service.Handler, error), g service.Generator, n int) (orig, rebuilt service.Handler) {
	t.Helper()
	rs := NewRecordingStore()
	orig, err := newHandler(rs)
	if err != nil {
		t.Fatal(err)
	}
	Lockstep(t, g, n, orig)
	ms := collections.NewMemStore()
	rebuilt, err = newHandler(ms)
	if err != nil {
		t.Fatal(err)
	}
	rs.Replay(t, ms.Collections())
	return orig, rebuilt
}
