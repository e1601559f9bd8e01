package knn

import "math"

// Limits that let a query keep its working memory on the stack.
const (
	MaxK      = 64
	MaxLabels = 256
	MaxDims   = 1024
)

// neighbour is a candidate: its squared distance and its index.
type neighbour struct {
	dist float32
	idx  uint32
}

// farther orders neighbours by distance, then index, so that among points
// at equal distance the one listed first is the nearer.
func farther(a, b neighbour) bool {
	return a.dist > b.dist || (a.dist == b.dist && a.idx > b.idx)
}

// Result is a classification.
type Result struct {
	Label uint16 // majority label of the k nearest points
	Votes uint16 // how many of them carry it
	// KthDist is the Euclidean distance to the k-th nearest point: the
	// radius of the neighbourhood that voted.
	KthDist float32
	Nearest uint32 // index of the nearest point
}

// sqDist16 is the squared Euclidean distance of two 16-dimensional points,
// fully unrolled into four independent sums so the additions pipeline.
func sqDist16(p, q []float32) float32 {
	p, q = p[:16], q[:16]
	d0, d1, d2, d3 := p[0]-q[0], p[1]-q[1], p[2]-q[2], p[3]-q[3]
	s0, s1, s2, s3 := d0*d0, d1*d1, d2*d2, d3*d3
	d0, d1, d2, d3 = p[4]-q[4], p[5]-q[5], p[6]-q[6], p[7]-q[7]
	s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	d0, d1, d2, d3 = p[8]-q[8], p[9]-q[9], p[10]-q[10], p[11]-q[11]
	s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	d0, d1, d2, d3 = p[12]-q[12], p[13]-q[13], p[14]-q[14], p[15]-q[15]
	s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	return (s0 + s1) + (s2 + s3)
}

// sqDist is the squared Euclidean distance for any dimension, unrolled by
// four with the same summation order as sqDist16.
func sqDist(p, q []float32) float32 {
	q = q[:len(p)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(p); i += 4 {
		d0, d1, d2, d3 := p[i]-q[i], p[i+1]-q[i+1], p[i+2]-q[i+2], p[i+3]-q[i+3]
		s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
	}
	for ; i < len(p); i++ {
		d := p[i] - q[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// nearest fills heap with the k nearest points to q (a max-heap, farthest
// at the root) and returns it sorted nearest first. It is a brute-force
// scan: every point is compared, which at a few thousand points in 16
// dimensions is what a tree index degrades to anyway.
func (d *Dataset) nearest(q []float32, k int, heap []neighbour) []neighbour {
	heap = heap[:0]
	n, dims := d.Len(), d.dims
	k = min(k, n)
	// Fill the heap with the first k points, then only a strictly nearer
	// point enters: scanning in index order, a point at the same distance
	// as the root has the higher index and so loses.
	for i := range k {
		heap = append(heap, neighbour{d.dist(d.coords[i*dims:(i+1)*dims], q), uint32(i)})
		for j := i; j > 0; {
			p := (j - 1) / 2
			if !farther(heap[j], heap[p]) {
				break
			}
			heap[j], heap[p] = heap[p], heap[j]
			j = p
		}
	}
	worst := heap[0].dist
	if dims == 16 {
		q = q[:16]
		for i := k; i < n; i++ {
			// sqDist16 written out: too big for the compiler to inline,
			// and the call costs about an eighth of the scan. Checking
			// a partial sum after eight coordinates against the k-th
			// distance (partial-distance elimination) was measured
			// slower: the branch mispredicts more than it saves.
			p := d.coords[i*16 : i*16+16]
			d0, d1, d2, d3 := p[0]-q[0], p[1]-q[1], p[2]-q[2], p[3]-q[3]
			s0, s1, s2, s3 := d0*d0, d1*d1, d2*d2, d3*d3
			d0, d1, d2, d3 = p[4]-q[4], p[5]-q[5], p[6]-q[6], p[7]-q[7]
			s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
			d0, d1, d2, d3 = p[8]-q[8], p[9]-q[9], p[10]-q[10], p[11]-q[11]
			s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
			d0, d1, d2, d3 = p[12]-q[12], p[13]-q[13], p[14]-q[14], p[15]-q[15]
			s0, s1, s2, s3 = s0+d0*d0, s1+d1*d1, s2+d2*d2, s3+d3*d3
			if s := (s0 + s1) + (s2 + s3); s < worst {
				heap[0] = neighbour{s, uint32(i)}
				siftDown(heap)
				worst = heap[0].dist
			}
		}
	} else {
		for i := k; i < n; i++ {
			if s := sqDist(d.coords[i*dims:(i+1)*dims], q); s < worst {
				heap[0] = neighbour{s, uint32(i)}
				siftDown(heap)
				worst = heap[0].dist
			}
		}
	}
	// Heap sort leaves the nearest first.
	for m := len(heap) - 1; m > 0; m-- {
		heap[0], heap[m] = heap[m], heap[0]
		siftDown(heap[:m])
	}
	return heap
}

// dist picks the distance function for the dataset's dimension.
func (d *Dataset) dist(p, q []float32) float32 {
	if d.dims == 16 {
		return sqDist16(p, q)
	}
	return sqDist(p, q)
}

// siftDown restores the max-heap below the root.
func siftDown(h []neighbour) {
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && farther(h[r], h[l]) {
			m = r
		}
		if !farther(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// classify returns the majority label among the k nearest points of q. A
// tie in votes goes to the tied label whose nearest member is nearest.
func (d *Dataset) classify(q []float32, k int) Result {
	var buf [MaxK]neighbour
	nb := d.nearest(q, k, buf[:0])
	var votes [MaxLabels]uint8
	top := uint8(0)
	for _, x := range nb {
		l := d.labels[x.idx]
		votes[l]++
		top = max(top, votes[l])
	}
	r := Result{KthDist: float32(math.Sqrt(float64(nb[len(nb)-1].dist))), Nearest: nb[0].idx, Votes: uint16(top)}
	for _, x := range nb { // nearest first: the first label with top votes wins
		if l := d.labels[x.idx]; votes[l] == top {
			r.Label = l
			break
		}
	}
	return r
}
