package knn

import (
	"fmt"
	"math/rand/v2"
)

// Dataset is a labelled set of points in float32, stored row-major in one
// slice so a query streams through memory.
type Dataset struct {
	dims   int
	coords []float32 // point i is coords[i*dims : (i+1)*dims]
	labels []uint16
	nlabel int
}

// NewDataset returns a dataset of the given points (each of dims
// coordinates) and labels; it copies nothing, so the caller must not change
// them afterwards.
func NewDataset(dims int, coords []float32, labels []uint16) (*Dataset, error) {
	if dims < 1 || dims > MaxDims {
		return nil, fmt.Errorf("knn: %d dimensions, want 1 to %d", dims, MaxDims)
	}
	if len(coords) != dims*len(labels) || len(labels) == 0 {
		return nil, fmt.Errorf("knn: %d coordinates for %d points of %d dimensions", len(coords), len(labels), dims)
	}
	n := 0
	for i, l := range labels {
		if int(l) >= MaxLabels {
			return nil, fmt.Errorf("knn: point %d has label %d, want below %d", i, l, MaxLabels)
		}
		n = max(n, int(l)+1)
	}
	return &Dataset{dims: dims, coords: coords, labels: labels, nlabel: n}, nil
}

// Len returns the number of points.
func (d *Dataset) Len() int { return len(d.labels) }

// Dims returns the number of coordinates per point.
func (d *Dataset) Dims() int { return d.dims }

// Point returns the coordinates of point i.
func (d *Dataset) Point(i int) []float32 { return d.coords[i*d.dims : (i+1)*d.dims] }

// Label returns the label of point i.
func (d *Dataset) Label(i int) uint16 { return d.labels[i] }

// mixture is the Gaussian mixture the generated dataset and the generated
// queries are drawn from.
type mixture struct {
	dims    int
	centers [][]float32
	labels  int
	sigma   float64
}

// newMixture draws clusters centres uniformly in [-1, 1]^dims. Cluster c
// carries label c mod labels, so with more clusters than labels a class is
// made of several separate blobs, as real classes often are.
func newMixture(seed uint64, dims, clusters, labels int, sigma float64) *mixture {
	rng := rand.New(rand.NewPCG(seed, 0xce47e5))
	m := &mixture{dims: dims, labels: labels, sigma: sigma}
	for range clusters {
		c := make([]float32, dims)
		for j := range c {
			c[j] = float32(2*rng.Float64() - 1)
		}
		m.centers = append(m.centers, c)
	}
	return m
}

// draw appends one point of a cluster chosen uniformly to dst and returns
// it with the cluster's label.
func (m *mixture) draw(rng *rand.Rand, dst []float32) ([]float32, uint16) {
	c := rng.IntN(len(m.centers))
	for _, x := range m.centers[c] {
		dst = append(dst, x+float32(m.sigma*rng.NormFloat64()))
	}
	return dst, uint16(c % m.labels)
}

// generate draws a dataset of n points from m.
func (m *mixture) generate(seed uint64, n int) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 0xda7a))
	coords := make([]float32, 0, n*m.dims)
	labels := make([]uint16, n)
	for i := range labels {
		coords, labels[i] = m.draw(rng, coords)
	}
	d, _ := NewDataset(m.dims, coords, labels) // sizes checked by the caller
	return d
}
