package service

import (
	"encoding/binary"
	"math/rand/v2"
)

// Echo is a stateless service that answers every request with the request
// itself and passes it on unchanged. Tests and transport benchmarks use it
// where the work of a real service would hide what is being measured.
var Echo = Descriptor{
	Name:       "echo",
	Summary:    "replies with the request and forwards it unchanged (tests)",
	Family:     FamilyEvent,
	Migratable: true,
	MemoryMB:   16,
	New: func(Env) (Handler, error) {
		return HandlerFunc(func(c *Context, req []byte) error {
			c.Respond(req)
			c.Emit(c.Key, req)
			return nil
		}), nil
	},
	NewGenerator: func(seed int64, size int) Generator {
		return &echoGen{rng: rand.New(rand.NewPCG(uint64(seed), 0xe3)), size: max(size, 8)}
	},
}

type echoGen struct {
	rng  *rand.Rand
	size int
}

func (g *echoGen) Next(dst []byte) ([]byte, uint64) {
	k := g.rng.Uint64()
	dst = dst[:0]
	dst = binary.LittleEndian.AppendUint64(dst, k)
	for len(dst) < g.size {
		dst = append(dst, byte(len(dst)))
	}
	return dst, k
}
