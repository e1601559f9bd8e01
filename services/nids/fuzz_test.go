package nids

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

var (
	fuzzOnce    sync.Once
	fuzzHandler *Handler
)

// FuzzHandle feeds arbitrary bytes to the service with the default rule
// set: it must never panic, and a request it accepts must get a reply that
// decodes and agrees with what was emitted.
func FuzzHandle(f *testing.F) {
	for _, p := range BenchPacketSet(16, 512, 3) {
		f.Add(p)
	}
	for _, p := range BenchPacketSet(4, 64, 4) {
		f.Add(p)
	}
	rules := GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	f.Add(mkPacket(f, packet.ProtoTCP, rules[0].DstPort, "xx"+string(rules[0].Content)))
	f.Add(mkPacket(f, packet.ProtoICMP, 0, "ping"))
	f.Add(fragment(f, mkPacket(f, packet.ProtoUDP, 53, "fragment data"), 0, true))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fuzzOnce.Do(func() {
			var err error
			if fuzzHandler, err = NewHandler(Config{Rules: rules}); err != nil {
				panic(err)
			}
		})
		var c service.Context
		var rec countEmitter
		c.Reset(0, 0, &rec)
		if _, ok := servicetest.Reply(t, fuzzHandler, &c, pkt); !ok {
			return
		}
		r, err := DecodeReply(c.Response())
		if err != nil {
			t.Fatalf("reply %x: %v", c.Response(), err)
		}
		if (r.Verdict == VerdictDrop) != (rec.n == 0) || (r.Verdict == VerdictPass) != (len(r.SIDs) == 0) {
			t.Fatalf("verdict %d with %d sids and %d packets emitted", r.Verdict, len(r.SIDs), rec.n)
		}
	})
}

// FuzzParseRules: no panic on any text, and what parses survives a round
// trip through FormatRules.
func FuzzParseRules(f *testing.F) {
	f.Add(testRules)
	var buf bytes.Buffer
	_ = FormatRules(&buf, GenerateRules(5, 20))
	f.Add(buf.String())
	f.Add(`alert tcp any any -> any 80 (content:"|00 0|"; sid:1;)`)
	f.Add(`alert tcp any any -> any 80 (msg:"\"; content:"a\\"; sid:1;)`)
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseRules(strings.NewReader(text))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := FormatRules(&out, rules); err != nil {
			t.Fatal(err)
		}
		back, err := ParseRules(&out)
		if err != nil {
			t.Fatalf("formatted rules do not parse: %v\n%s", err, out.String())
		}
		for i := range rules {
			rules[i].Msg = printableMsg(rules[i].Msg)
		}
		if !rulesEqual(rules, back) {
			t.Fatalf("round trip changed the rules\n%+v\n%+v", rules, back)
		}
	})
}

// printableMsg is what AppendRule makes of a msg: bytes outside printable
// ASCII become '?'.
func printableMsg(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 2, 3, 4})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReply(b)
		if err == nil && len(b) != ReplyHeaderLen+4*len(r.SIDs) {
			t.Fatalf("accepted %d bytes for %d sids", len(b), len(r.SIDs))
		}
	})
}

// FuzzMatcher compares the matcher with the bytes.Index reference on
// patterns and texts the fuzzer invents: the input is split at 0xfe bytes,
// the first piece is the text, the others patterns (a leading 0xfd makes a
// pattern nocase).
func FuzzMatcher(f *testing.F) {
	f.Add([]byte("ushers and his hers\xfehe\xfeshe\xfe\xfdHIS\xfehers"))
	f.Add(bytes.Repeat([]byte("abAB"), 40))
	f.Fuzz(func(t *testing.T, in []byte) {
		parts := bytes.Split(in, []byte{0xfe})
		text := parts[0]
		var pats []Pattern
		for _, p := range parts[1:] {
			nocase := len(p) > 0 && p[0] == 0xfd
			if nocase {
				p = p[1:]
			}
			if len(p) == 0 || len(pats) == 32 {
				continue
			}
			pats = append(pats, Pattern{Bytes: p, NoCase: nocase})
		}
		m, err := Compile(pats)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.AppendMatches(nil, text), naiveMatches(pats, text); !slices.Equal(got, want) {
			t.Fatalf("matches differ\n got  %v\n want %v", got, want)
		}
	})
}
