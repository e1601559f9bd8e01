package topk

import "math/bits"

// Scored is an item with its score.
type Scored struct {
	Item  uint64
	Score float64
}

// better is the ranking order: higher score first, and among equal scores
// the lower item id, so a ranking is total and deterministic.
func better(a, b Scored) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Item < b.Item)
}

// TopK reorders s so that s[:k] holds its k best items, best first, and
// returns s[:k] (all of s, sorted, when k >= len(s)). It first selects with
// quickselect, which partitions around a pivot like quicksort but follows
// only the side holding the k-th position (linear on average), then sorts
// the k with quicksort. Pivots are medians of three; a recursion budget of
// twice log2(n) turns a run of bad pivots, which adversarial scores could
// force, into heapsort, so the worst case stays O(n log n).
func TopK(s []Scored, k int) []Scored {
	if k <= 0 || len(s) == 0 {
		return s[:0]
	}
	k = min(k, len(s))
	budget := 2 * bits.Len(uint(len(s)))
	lo, hi := 0, len(s) // the k-th position lies in s[lo:hi]
	if k == len(s) {
		lo = hi // nothing to select: sort everything
	}
	for hi-lo > 12 {
		if budget == 0 {
			heapSort(s[lo:hi])
			lo = hi
			break
		}
		budget--
		p := partition(s, lo, hi)
		switch {
		case p == k || p == k-1:
			lo = hi // s[:p] are better than s[p], the rest worse: done
		case p < k:
			lo = p + 1
		default:
			hi = p
		}
	}
	if lo < hi {
		insertionSort(s[lo:hi])
	}
	top := s[:k]
	quickSort(top, 2*bits.Len(uint(k)))
	return top
}

// partition picks the median of s[lo], s[mid] and s[hi-1] as pivot and
// rearranges s[lo:hi] so that the items better than the pivot come first,
// then the pivot, then the rest; it returns the pivot's index.
func partition(s []Scored, lo, hi int) int {
	mid := lo + (hi-lo)/2
	// Order the three samples, leaving the median at mid.
	if better(s[mid], s[lo]) {
		s[mid], s[lo] = s[lo], s[mid]
	}
	if better(s[hi-1], s[mid]) {
		s[hi-1], s[mid] = s[mid], s[hi-1]
		if better(s[mid], s[lo]) {
			s[mid], s[lo] = s[lo], s[mid]
		}
	}
	// Lomuto partition with the pivot parked at the end.
	s[mid], s[hi-1] = s[hi-1], s[mid]
	pivot := s[hi-1]
	i := lo
	for j := lo; j < hi-1; j++ {
		if better(s[j], pivot) {
			s[i], s[j] = s[j], s[i]
			i++
		}
	}
	s[i], s[hi-1] = s[hi-1], s[i]
	return i
}

// quickSort sorts s best first; budget bounds the recursion depth before
// heapsort takes over.
func quickSort(s []Scored, budget int) {
	for len(s) > 12 {
		if budget == 0 {
			heapSort(s)
			return
		}
		budget--
		p := partition(s, 0, len(s))
		// Recurse into the smaller side, loop on the larger: O(log n) stack.
		if p < len(s)-p {
			quickSort(s[:p], budget)
			s = s[p+1:]
		} else {
			quickSort(s[p+1:], budget)
			s = s[:p]
		}
	}
	insertionSort(s)
}

func insertionSort(s []Scored) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && better(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// heapSort sorts s best first with a heap whose root is the worst item.
func heapSort(s []Scored) {
	for i := len(s)/2 - 1; i >= 0; i-- {
		siftDown(s, i)
	}
	for n := len(s) - 1; n > 0; n-- {
		s[0], s[n] = s[n], s[0]
		siftDown(s[:n], 0)
	}
}

func siftDown(h []Scored, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && better(h[l], h[r]) {
			m = r
		}
		if !better(h[i], h[m]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
