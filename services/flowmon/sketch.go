package flowmon

import (
	"math/rand/v2"

	"github.com/e3-platform/e3/collections"
)

// sketch is a count-min sketch (Cormode and Muthukrishnan, 2005) whose
// d x w counters live in a reliable array, row after row, so they move
// with the instance. With w = ceil(e/eps) and d = ceil(ln(1/delta)) an
// estimate exceeds the true count by more than eps*N with probability at
// most delta, and is never below it.
type sketch struct {
	cells        *collections.Array[uint64]
	depth, width int
	shift        uint     // 64 - log2(width)
	hmul, hadd   []uint64 // row hash parameters
	conservative bool
	idx          [maxDepth]int // scratch: this update's cells
}

const maxDepth = 16

// newSketch creates or attaches the sketch's counters. Row i hashes a
// flow's 64-bit key k with multiply-shift, (mul_i*k + add_i) >> shift,
// a 2-universal family for power-of-two widths (Dietzfelbinger et al.);
// the parameters come from seed so that every instance with the same
// config, in particular a migrated one, indexes the same cells.
func newSketch(s collections.Store, depth, width int, seed uint64, conservative bool) (*sketch, error) {
	cells, err := collections.NewArray(s, "flowmon.cms", depth*width, collections.Uint64)
	if err != nil {
		return nil, err
	}
	sk := &sketch{cells: cells, depth: depth, width: width, conservative: conservative}
	for w := width; w > 1; w >>= 1 {
		sk.shift++
	}
	sk.shift = 64 - sk.shift
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	for range depth {
		sk.hmul = append(sk.hmul, rng.Uint64()|1)
		sk.hadd = append(sk.hadd, rng.Uint64())
	}
	return sk, nil
}

func (s *sketch) cell(row int, key uint64) int {
	if s.shift == 64 { // width 1
		return row * s.width
	}
	return row*s.width + int((s.hmul[row]*key+s.hadd[row])>>s.shift)
}

// add counts v for key and returns the new estimate. Conservative update
// (Estan and Varghese, 2002) raises only the counters that would otherwise
// fall below the new estimate: estimates stay upper bounds, and are
// tighter.
func (s *sketch) add(key, v uint64) uint64 {
	est := ^uint64(0)
	for r := range s.depth {
		i := s.cell(r, key)
		s.idx[r] = i
		est = min(est, s.cells.Get(i))
	}
	if !s.conservative {
		for r := range s.depth {
			i := s.idx[r]
			s.cells.Set(i, s.cells.Get(i)+v)
		}
		return est + v
	}
	target := est + v
	for r := range s.depth {
		if i := s.idx[r]; s.cells.Get(i) < target {
			s.cells.Set(i, target)
		}
	}
	return target
}

// estimate returns the count-min estimate of key.
func (s *sketch) estimate(key uint64) uint64 {
	est := ^uint64(0)
	for r := range s.depth {
		est = min(est, s.cells.Get(s.cell(r, key)))
	}
	return est
}
