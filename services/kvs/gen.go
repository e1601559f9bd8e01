package kvs

import (
	"math/rand/v2"
	"strconv"

	"github.com/e3-platform/e3/service"
)

// Generator parameters. The mix is memaslap's default 9:1 get:set ratio
// with 1 % of the sets turned into deletes, over 10,000 keys whose
// popularity is Zipfian (s = 1.01, close to YCSB's 0.99, which
// math/rand's Zipf cannot take). The first 10,000 requests set every key
// once, as a cache is warm before it is measured.
const (
	genKeys    = 10_000
	genZipfS   = 1.01
	genGetPct  = 90
	genDelPerM = 10_000 // deletes per million requests
	// DefaultSize is the request size used when a generator is asked for
	// size <= 0.
	DefaultSize = 512
)

type generator struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	size  int
	n     int
	key   []byte
	value []byte
	ev    service.Event
}

// NewGenerator returns a deterministic generator of GET, SET and DELETE
// events padded to size bytes; SET values fill the size (up to the 1 KB
// value limit). Requests are routed by KeyHash of the key.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultSize
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x4b5))
	vlen := min(max(size-service.EventHeaderLen-16, 1), DefaultMaxValue)
	g := &generator{rng: rng, zipf: rand.NewZipf(rng, genZipfS, 1, genKeys-1), size: size, value: make([]byte, vlen)}
	for i := range g.value {
		g.value[i] = 'a' + byte(rng.IntN(26))
	}
	return g
}

// appendKey appends the name of key k: "obj:" and 12 digits, 16 bytes.
func appendKey(dst []byte, k uint64) []byte {
	dst = append(dst, "obj:"...)
	s := strconv.AppendUint(make([]byte, 0, 20), k, 10)
	for i := len(s); i < 12; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// Next appends the next request to dst[:0].
func (g *generator) Next(dst []byte) ([]byte, uint64) {
	var k uint64
	op := service.OpGet
	if g.n < genKeys {
		k, op = uint64(g.n), service.OpSet
	} else {
		k = g.zipf.Uint64()
		switch r := g.rng.IntN(1_000_000); {
		case r < genDelPerM:
			op = service.OpDelete
		case r < (100-genGetPct)*10_000:
			op = service.OpSet
		}
	}
	g.n++
	g.key = appendKey(g.key[:0], k)
	g.ev = service.Event{Op: op, Token: g.key}
	if op == service.OpSet {
		// A cheap change per write, so values differ over time.
		g.value[g.n%len(g.value)] = 'a' + byte(g.n%26)
		g.ev.Text = g.value
		g.ev.Item = uint64(g.rng.Uint32() & 0xff) // client flags
	}
	out, err := service.AppendEvent(dst[:0], &g.ev, g.size)
	if err != nil {
		panic(err) // key and value sizes are bounded above
	}
	return out, KeyHash(g.key)
}
