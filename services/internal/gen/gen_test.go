package gen

import (
	"math"
	"strings"
	"testing"
)

// aliasProbs reconstructs the exact distribution a table samples: column i
// is chosen with probability 1/n and keeps i with probability prob[i].
func aliasProbs(t *Alias) []float64 {
	n := float64(t.Len())
	p := make([]float64, t.Len())
	for i := range t.prob {
		p[i] += t.prob[i] / n
		p[t.alias[i]] += (1 - t.prob[i]) / n
	}
	return p
}

func TestAliasExact(t *testing.T) {
	for name, w := range map[string][]float64{
		"one":      {3},
		"uniform":  {1, 1, 1, 1, 1},
		"zeros":    {0, 2, 0, 1, 0, 1},
		"skewed":   {1000, 1, 1, 1},
		"zipf":     ZipfWeights(1000, 1.1),
		"classes":  {2, 1},
		"rounding": {0.1, 0.2, 0.3, 0.4, 1e-12, 7},
	} {
		a := NewAlias(w)
		var sum float64
		for _, x := range w {
			sum += x
		}
		for i, p := range aliasProbs(a) {
			if want := w[i] / sum; math.Abs(p-want) > 1e-12 {
				t.Errorf("%s: outcome %d has probability %v, want %v", name, i, p, want)
			}
		}
		for i := range a.prob {
			if !(a.prob[i] >= 0 && a.prob[i] <= 1) || int(a.alias[i]) >= a.Len() {
				t.Errorf("%s: column %d: prob %v alias %d", name, i, a.prob[i], a.alias[i])
			}
		}
	}
}

func TestAliasSample(t *testing.T) {
	const seed, draws = 7, 200_000
	t.Logf("seed %d", seed)
	w := []float64{5, 0, 3, 1, 1}
	a := NewAlias(w)
	rng := NewRand(seed, 1)
	counts := make([]int, len(w))
	for range draws {
		counts[a.Sample(rng)]++
	}
	for i, n := range counts {
		want := w[i] / 10 * draws
		// Five standard deviations of a binomial count.
		if tol := 5 * math.Sqrt(want*(1-w[i]/10)); math.Abs(float64(n)-want) > tol+0.5 {
			t.Errorf("outcome %d drawn %d times, want %.0f ± %.0f", i, n, want, tol)
		}
	}
}

func TestZipfWeights(t *testing.T) {
	w := ZipfWeights(4, 1)
	for r, want := range []float64{1, 1.0 / 2, 1.0 / 3, 1.0 / 4} {
		if math.Abs(w[r]-want) > 1e-15 {
			t.Errorf("rank %d: %v, want %v", r, w[r], want)
		}
	}
	if w := ZipfWeights(3, 2); w[2] != 1.0/9 {
		t.Errorf("s=2 rank 2: %v", w[2])
	}
}

func TestLogNormalLen(t *testing.T) {
	rng := NewRand(3, 3)
	const n, median = 20_000, 100
	below := 0
	for range n {
		l := LogNormalLen(rng, median, 8)
		if l < 8 || l > 16*median {
			t.Fatalf("length %d outside [8, %d]", l, 16*median)
		}
		if l < median {
			below++
		}
	}
	// Half the draws fall below the median (ties at the median count above).
	if f := float64(below) / n; f < 0.47 || f > 0.51 {
		t.Errorf("%.3f of lengths below the median", f)
	}
	if l := LogNormalLen(rng, 1, 4); l != 4 {
		t.Errorf("median 1, least 4: %d", l)
	}
}

func TestVocabulary(t *testing.T) {
	const n = 20_000
	words := Vocabulary(NewRand(1, 2), n)
	if len(words) != n {
		t.Fatalf("%d words, want %d", len(words), n)
	}
	seen := map[string]bool{}
	for i, w := range words {
		if seen[w] {
			t.Fatalf("word %q twice", w)
		}
		seen[w] = true
		if i > 0 && len(w) < len(words[i-1]) {
			t.Fatalf("word %d %q is shorter than word %d %q", i, w, i-1, words[i-1])
		}
		if w == "" || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" || !strings.ContainsAny(w[:2], vowels) {
			t.Fatalf("word %q is not a lowercase pseudo-word", w)
		}
		if len(w) > 12 {
			t.Fatalf("word %q has more than four syllables", w)
		}
	}
	again := Vocabulary(NewRand(1, 2), n)
	other := Vocabulary(NewRand(2, 2), n)
	same, differ := true, false
	for i := range words {
		same = same && again[i] == words[i]
		differ = differ || other[i] != words[i]
	}
	if !same || !differ {
		t.Errorf("same seed gives the same words: %v; another seed differs: %v", same, differ)
	}
}

func BenchmarkAliasSample(b *testing.B) {
	a := NewAlias(ZipfWeights(20_000, 1))
	rng := NewRand(1, 1)
	var sink uint32
	for b.Loop() {
		sink += a.Sample(rng)
	}
	_ = sink
}
