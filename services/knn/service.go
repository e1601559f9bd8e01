package knn

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/envcfg"
)

// Defaults of the configuration keys (see the package documentation).
const (
	DefaultPoints   = 4096
	DefaultDims     = 16
	DefaultClusters = 8
	DefaultLabels   = 4
	DefaultK        = 5
	DefaultSigma    = 0.6
	DefaultSeed     = 0xe3c1a55
)

type config struct {
	points, dims, clusters, labels, k int
	sigma                             float64
	seed                              uint64
}

func parseConfig(env service.Env) (config, error) {
	var c config
	r := envcfg.NewReader(env)
	c.points = r.Int("points", DefaultPoints, 1, 10_000_000)
	c.dims = r.Int("dims", DefaultDims, 1, MaxDims)
	c.clusters = r.Int("clusters", DefaultClusters, 1, 1_000_000)
	c.labels = r.Int("labels", DefaultLabels, 1, MaxLabels)
	c.k = r.Int("k", DefaultK, 1, MaxK)
	seed := r.Int("seed", DefaultSeed, math.MinInt, math.MaxInt)
	c.sigma = r.Float("sigma", DefaultSigma, 0, 100)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("knn: %w", err)
	}
	c.seed = uint64(seed)
	if c.k > c.points {
		return c, fmt.Errorf("knn: config k %d is more than points %d", c.k, c.points)
	}
	if c.points*c.dims > 256<<20 {
		return c, fmt.Errorf("knn: config points %d x dims %d is over 256 Mi coordinates", c.points, c.dims)
	}
	return c, nil
}

// Handler classifies the feature vector of each event against a read-only
// dataset; it is safe for concurrent use and allocates nothing per request.
type Handler struct {
	d *Dataset
	k int
}

// New builds a knn instance from env.Config (see the package documentation
// for the keys). The dataset is drawn from the configured seed, not the
// instance's, so that every replica and shard classifies alike.
func New(env service.Env) (service.Handler, error) {
	c, err := parseConfig(env)
	if err != nil {
		return nil, err
	}
	m := newMixture(c.seed, c.dims, c.clusters, c.labels, c.sigma)
	return NewHandler(m.generate(c.seed, c.points), c.k)
}

// NewHandler returns a handler voting among the k nearest points of d.
func NewHandler(d *Dataset, k int) (*Handler, error) {
	if k < 1 || k > MaxK || k > d.Len() {
		return nil, fmt.Errorf("knn: k = %d, want 1 to %d and at most the %d points", k, MaxK, d.Len())
	}
	return &Handler{d: d, k: k}, nil
}

// Dataset returns the handler's dataset.
func (h *Handler) Dataset() *Dataset { return h.d }

// ReplyLen is the length of a reply.
const ReplyLen = 12

// Handle classifies one event and passes it on unchanged.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("knn: %w", err)
	}
	dims := h.d.dims
	if n := ev.NumFeatures(); n != dims {
		return fmt.Errorf("knn: %w: %d features, want %d", service.ErrMalformed, n, dims)
	}
	var buf [MaxDims]float32
	q := buf[:dims]
	for i := range q {
		bits := binary.LittleEndian.Uint32(ev.Features[4*i:])
		if bits&0x7f800000 == 0x7f800000 {
			return fmt.Errorf("knn: %w: feature %d is %v", service.ErrMalformed, i, math.Float32frombits(bits))
		}
		q[i] = math.Float32frombits(bits)
	}
	r := h.d.classify(q, h.k)
	var b [ReplyLen]byte
	binary.LittleEndian.PutUint16(b[0:], r.Label)
	binary.LittleEndian.PutUint16(b[2:], r.Votes)
	binary.LittleEndian.PutUint32(b[4:], math.Float32bits(r.KthDist))
	binary.LittleEndian.PutUint32(b[8:], r.Nearest)
	c.Respond(b[:])
	c.Emit(c.Key, req)
	return nil
}

// ParseReply decodes a knn reply.
func ParseReply(b []byte) (Result, error) {
	if len(b) != ReplyLen {
		return Result{}, fmt.Errorf("knn: reply is %d bytes, want %d", len(b), ReplyLen)
	}
	return Result{
		Label:   binary.LittleEndian.Uint16(b[0:]),
		Votes:   binary.LittleEndian.Uint16(b[2:]),
		KthDist: math.Float32frombits(binary.LittleEndian.Uint32(b[4:])),
		Nearest: binary.LittleEndian.Uint32(b[8:]),
	}, nil
}
