package services_test

import (
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/services/internal/servicetest"
	"github.com/e3-platform/e3/services/ipsec"
)

// Fingerprints pin what every shipped service does: the SHA-256 of the
// first fpRequests requests its generator draws at seed 1 and size 512
// (bytes and routing keys), and of what a default instance answers to
// them (error text, reply, emitted keys and payloads). Helpers shared
// between services (generators, samplers, tokenisers, codecs) may be
// rewritten freely as long as these stay the same; a change that means
// to alter a service's requests or replies updates its line here and says
// so in its commit.
//
// ipsec draws its CBC IVs from crypto/rand, so its ciphertext differs on
// every run: its reply fingerprint covers the outer header, SPI and
// sequence number, the length, and the inner packet a decap instance
// recovers from the reply.
var fingerprints = map[string]struct{ requests, replies string }{
	"apigw": {
		"6b9e9c5737e9267a74993c48622802dc72aa530906088ca3078bef7b87036046",
		"ca5d4a57e4844617cf8227ee73af2b354592c1aa0b1032bd9f32e602eb844e5c",
	},
	"bayes": {
		"e8ee3a09553e29d0014b732e23f291dd8127cac942f580162d3a33651f3051b7",
		"68243078f11c2be4bb9f642e6587e791253bde5243c28c98216d10b29b34e5d5",
	},
	"bm25": {
		"cf56007ec5a0ab3daccdbbe6ca2c6d6a712a2fb9cc97df58c57c6a33b9274482",
		"53562fb5e94a539ac9a2f3ed20dcea5d8ac7bbae850389a9193729c7371b7b38",
	},
	"count": {
		"6b7beeee332bdaca1940fd9295124c0fc2656e99eb06b72db70a5acbb8a30bed",
		"c66fc890b03b7ac2b1a85ae3a3c2225bf2f2906b3e6d9729cc84dd8de7370d59",
	},
	"ddos": {
		"0b755a9c111ef3e6ac336f60661c1d6f56b47df6b6623895fb65eae4b8128111",
		"6f1594da47a3e5b26aca6d1cd91d34a8ca993bbf140771e43b1b912af354a3ca",
	},
	"ema": {
		"e9f1b62acd7125dd27d35d48804071b061cb8670325301ff318a27350a878146",
		"39449a73d6566f2fceb78a5b48e9f30fb57a6c32a4064dfc99378ed04b3dc09b",
	},
	"flowmon": {
		"cd5dc84a870e87f7c2db8b826b50cef6770c27e860749421ec45c9d732208817",
		"9d5ce394179f4ab67282d54d533660ded4075d028b9fb140fb44978e2547ec0f",
	},
	"ipsec": {
		"0b755a9c111ef3e6ac336f60661c1d6f56b47df6b6623895fb65eae4b8128111",
		"dfc4435a2410df7cc36c130516d3342717e6e8f6d33cd51fcce86bb34ce8b5fc",
	},
	"knn": {
		"b46d64f55bd2b15f0843c3240cb63a1d155fcaf89c103f8d213904054f7f1b34",
		"40e49a2ac1c868df980f066d6a5ea2f06884b33bb9e10a3b852c9a55300cb790",
	},
	"kvs": {
		"d95971c6b4a531ae5806a01db4dced50cb7e44e376ba76a6805b2177875109ee",
		"a75a31ba5c8815001c4a133c6ecaf020c6c925f5fe96fb8b88fef9b35289313e",
	},
	"natv4": {
		"0b755a9c111ef3e6ac336f60661c1d6f56b47df6b6623895fb65eae4b8128111",
		"e50dc0812df6abb6266e4c23917e6535c6e11ece4e3b6f3464333e54f7789e71",
	},
	"nids": {
		"a705814b97f9837b73c6a8ef19de1202ad0f748d219f24ff10931cc5a990fd10",
		"1a0abba7c229bd3b1dbac4d9c8b4aa3309b5884857e316aa860dd4213939b218",
	},
	"recommend": {
		"87513b8038b1014946dc707c7918514902e28f60418b0fd3a0159e21d9ae23f2",
		"5a89766332c2c5abebcddc33269576f5dc4b9c050aeee9953d3a673aa781892b",
	},
	"spike": {
		"74dfca438eba77a5d3e46c08cbea15ddb40d84af143714bd4c55cba794145df0",
		"2383fbb6d9a85f20b2e61783ace143d0d7d3eb53b97aeeb4e7c11d840023e076",
	},
	"sql": {
		"75dff76b0d0751c7e5dc9b4f9e8be3e938f34c34b7c56bda67a2f10fb1f0ac65",
		"9c4e5ccd2b31686d8197fd05ea153cec6686a1cef800f7ce068fcb1f0353da52",
	},
	"topk": {
		"15844abf5119686d267895b8b9a393df59e9dda8952609ccf0eaf7ee32378d7d",
		"4bc59264b23211eab5e64b3f75518091672b0db84009216485e5e8e1d96671ab",
	},
}

const (
	fpSeed     = 1
	fpSize     = 512
	fpRequests = 2000
)

func TestFingerprints(t *testing.T) {
	ds := services.Descriptors()
	if len(ds) != len(fingerprints) {
		t.Errorf("%d services, %d fingerprints", len(ds), len(fingerprints))
	}
	for _, d := range ds {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			reqs, replies := fingerprint(t, d)
			want, ok := fingerprints[d.Name]
			if !ok {
				t.Fatalf("no fingerprint for %s", d.Name)
			}
			if reqs != want.requests || replies != want.replies {
				t.Errorf("requests %s replies %s, want %s %s", reqs, replies, want.requests, want.replies)
			}
		})
	}
}

// fingerprint returns the hex SHA-256 of d's first fpRequests generated
// requests and of a fresh instance's answers to them. Requests are handled
// one millisecond apart in Context.Now.
func fingerprint(t *testing.T, d service.Descriptor) (requests, replies string) {
	t.Helper()
	h, err := d.New(service.Env{Instance: "fp/" + d.Name + ".0", Seed: fpSeed, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	if cl, ok := h.(service.Closer); ok {
		defer cl.Close()
	}
	var decap service.Handler
	if d.Name == ipsec.Descriptor.Name {
		decap, err = d.New(service.Env{Config: map[string]string{"mode": ipsec.ModeDecap}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rq, rp := servicetest.NewDigest(), servicetest.NewDigest()
	g := d.NewGenerator(fpSeed, fpSize)
	var buf []byte
	var c, dc service.Context
	var em service.Emitter = &digestEmitter{rp}
	if decap != nil {
		em = nil // ipsec emits its reply, which is checked below
	}
	for i := range fpRequests {
		var key uint64
		buf, key = g.Next(buf)
		rq.Bytes(buf)
		rq.Uint(key)

		c.Reset(int64(i)*1_000_000, key, em)
		if err := h.Handle(&c, buf); err != nil {
			rp.Text(err.Error())
			continue
		}
		resp := c.Response()
		if decap == nil {
			rp.Bytes(resp)
			rp.Uint(uint64(c.Emitted()))
			continue
		}
		// ipsec: outer IPv4 header, SPI and sequence number, length, and
		// the inner packet back through a decap instance.
		rp.Bytes(resp[:28])
		rp.Uint(uint64(len(resp)))
		dc.Reset(0, key, nil)
		if err := decap.Handle(&dc, resp); err != nil {
			t.Fatalf("request %d: decap: %v", i, err)
		}
		rp.Bytes(dc.Response())
	}
	return rq.Hex(), rp.Hex()
}

// digestEmitter adds every emitted message to a digest.
type digestEmitter struct{ d *servicetest.Digest }

func (e digestEmitter) Emit(key uint64, payload []byte) {
	e.d.Uint(key)
	e.d.Bytes(payload)
}
