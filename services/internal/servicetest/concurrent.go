package servicetest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/e3-platform/e3/service"
)

// CheckConcurrent checks a handler whose replies depend on the request
// alone (a read-only index, model or rule set, whatever scratch memory it
// pools): it handles reqs one by one, then has four goroutines handle all
// of them again at once, each starting at another place, and fails t when
// any reply differs from the sequential one.
func CheckConcurrent(t testing.TB, h service.Handler, reqs [][]byte) {
	t.Helper()
	want := make([][]byte, len(reqs))
	var c service.Context
	for i, req := range reqs {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, req); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want[i] = append([]byte(nil), c.Response()...)
	}
	const workers = 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c service.Context
			for i := range reqs {
				j := (i + w*len(reqs)/workers) % len(reqs)
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, reqs[j]); err != nil {
					t.Errorf("worker %d request %d: %v", w, j, err)
					return
				}
				if !bytes.Equal(c.Response(), want[j]) {
					t.Errorf("worker %d request %d: reply %x differs from the sequential %x", w, j, c.Response(), want[j])
					return
				}
			}
		}()
	}
	wg.Wait()
}
