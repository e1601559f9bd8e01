package envcfg

import (
	"math"
	"testing"

	"github.com/e3-platform/e3/service"
)

func TestReader(t *testing.T) {
	r := NewReader(service.Env{Config: map[string]string{"n": " 7 ", "x": "0.25", "big": "1e400"}})
	if n, x, d, f := r.Int("n", 1, 0, 10), r.Float("x", 1, 0, 1), r.Int("absent", 3, 0, 10), r.Float("none", 0.5, 0, 1); n != 7 || x != 0.25 || d != 3 || f != 0.5 || r.Err() != nil {
		t.Fatalf("n %d x %v defaults %d %v err %v", n, x, d, f, r.Err())
	}
	for _, tc := range []struct {
		cfg  map[string]string
		read func(*Reader)
		want string
	}{
		{map[string]string{"k": "11"}, func(r *Reader) { r.Int("k", 1, 1, 10) }, `config "k": 11 is outside [1, 10]`},
		{map[string]string{"k": "x"}, func(r *Reader) { r.Int("k", 1, 1, 10) }, `config "k": "x" is not an integer`},
		{map[string]string{"s": "NaN"}, func(r *Reader) { r.Float("s", 1, 0, 100) }, `config "s": NaN is outside [0, 100]`},
		{map[string]string{"s": "-0.5"}, func(r *Reader) { r.Float("s", 1, 1e-9, 100) }, `config "s": -0.5 is outside [1e-09, 100]`},
		{map[string]string{"s": "big"}, func(r *Reader) { r.Float("s", 1, 0, 1) }, `config "s": "big" is not a number`},
		// The first error stays; later reads return 0 and do not look.
		{map[string]string{"a": "0", "b": "bad"}, func(r *Reader) {
			r.Int("a", 1, 1, 2)
			if v := r.Int("b", 1, 1, 2); v != 0 {
				t.Errorf("read after an error gave %d", v)
			}
		}, `config "a": 0 is outside [1, 2]`},
	} {
		r := NewReader(service.Env{Config: tc.cfg})
		tc.read(r)
		if r.Err() == nil || r.Err().Error() != tc.want {
			t.Errorf("%v: error %v, want %s", tc.cfg, r.Err(), tc.want)
		}
	}
	r = NewReader(service.Env{Config: map[string]string{"seed": "-9"}})
	if v := r.Int("seed", 0, math.MinInt, math.MaxInt); v != -9 || r.Err() != nil {
		t.Errorf("full range: %d %v", v, r.Err())
	}
}
