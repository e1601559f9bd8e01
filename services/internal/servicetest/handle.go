package servicetest

import (
	"errors"
	"testing"

	"github.com/e3-platform/e3/service"
)

// Reply has h handle req on c, which the caller has reset, and returns
// the reply. A request h refuses must be refused with an error wrapping
// service.ErrMalformed or one of also: then Reply returns ok false, and
// any other error fails t. That is the contract of every handler on any
// input, the core of the services' fuzz tests.
func Reply(t testing.TB, h service.Handler, c *service.Context, req []byte, also ...error) (reply []byte, ok bool) {
	t.Helper()
	err := h.Handle(c, req)
	if err == nil {
		return c.Response(), true
	}
	if errors.Is(err, service.ErrMalformed) {
		return nil, false
	}
	for _, e := range also {
		if errors.Is(err, e) {
			return nil, false
		}
	}
	t.Fatalf("error %v does not wrap %v", err, errors.Join(append([]error{service.ErrMalformed}, also...)...))
	return nil, false
}

// Requests draws the next n requests of g and their routing keys, the
// working set of a benchmark or an allocation test.
func Requests(g service.Generator, n int) (reqs [][]byte, keys []uint64) {
	reqs, keys = make([][]byte, n), make([]uint64, n)
	for i := range reqs {
		reqs[i], keys[i] = g.Next(nil)
	}
	return reqs, keys
}

// HandleAllocs returns the average number of allocations of h.Handle over
// runs calls on c, cycling through reqs, with c reset (time 0, key 0, no
// emitter) before each; a handler error fails t. The caller warms h up
// first where the first requests may allocate.
func HandleAllocs(t testing.TB, h service.Handler, c *service.Context, runs int, reqs [][]byte) float64 {
	t.Helper()
	i := 0
	return testing.AllocsPerRun(runs, func() {
		c.Reset(0, 0, nil)
		if err := h.Handle(c, reqs[i%len(reqs)]); err != nil {
			t.Fatalf("request %d: %v", i%len(reqs), err)
		}
		i++
	})
}

// CheckMalformed has h handle every request of cases, each of which is
// malformed: each must be refused with an error wrapping
// service.ErrMalformed and must not be passed on. The errors are logged,
// so that a reader of -v output sees that they name what is wrong.
func CheckMalformed(t testing.TB, h service.Handler, cases map[string][]byte) {
	t.Helper()
	for name, req := range cases {
		var c service.Context
		err := h.Handle(&c, req)
		if !errors.Is(err, service.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if c.Emitted() != 0 {
			t.Errorf("%s: a malformed request was passed on", name)
		}
	}
}
