package ipsec

import (
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

func benchHandle(b *testing.B, mode string, size int) {
	h, err := Descriptor.New(service.Env{Config: map[string]string{"mode": mode}})
	if err != nil {
		b.Fatal(err)
	}
	var gen service.Generator
	if mode == ModeDecap {
		cfg, _ := ParseConfig(nil)
		gen, err = NewDecapGenerator(cfg, 1, size)
		if err != nil {
			b.Fatal(err)
		}
	} else {
		gen = Descriptor.NewGenerator(1, size)
	}
	// The requests are a pool of pre-generated packets, cycled.
	const pool = 4096
	reqs, keys := servicetest.Requests(gen, pool)
	c := &service.Context{Scratch: make([]byte, 0, 64<<10)}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	// Thread CPU time is reported beside wall time: on a shared machine
	// it is the fairer figure to set against the OpenSSL peer, which
	// reports the same (bench/run.sh).
	cpu := servicetest.StartCPU(b)
	i := 0
	for b.Loop() {
		if i == pool {
			i = 0
			if mode == ModeDecap {
				// Replaying the pool needs fresh windows.
				for _, s := range h.(*Handler).sas {
					s.win = replayWindow{}
				}
			}
		}
		c.Reset(0, keys[i], nil)
		if err := h.Handle(c, reqs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.Stop(b, 0)
}

// BenchmarkHandle is the encap path at the paper's 512-byte requests, the
// figure compared with OpenSSL (bench/run.sh).
func BenchmarkHandle(b *testing.B) { benchHandle(b, ModeEncap, packet.DefaultSize) }

func BenchmarkHandleSizes(b *testing.B) {
	for _, mode := range []string{ModeEncap, ModeDecap} {
		for _, size := range []int{64, 512, 1500} {
			b.Run(mode+"/"+itoa(size), func(b *testing.B) { benchHandle(b, mode, size) })
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
