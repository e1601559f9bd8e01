package nids

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// foldASCII lower-cases ASCII letters only, as Snort's nocase does.
func foldASCII(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// naiveMatches is the reference: every occurrence of every pattern found
// with bytes.Index, restarting one byte after each hit so overlapping
// occurrences count; nocase patterns are compared on ASCII-folded copies.
func naiveMatches(pats []Pattern, text []byte) []Match {
	var out []Match
	folded := foldASCII(text)
	for i, p := range pats {
		hay, needle := text, p.Bytes
		if p.NoCase {
			hay, needle = folded, foldASCII(p.Bytes)
		}
		for from := 0; from <= len(hay); {
			j := bytes.Index(hay[from:], needle)
			if j < 0 {
				break
			}
			out = append(out, Match{Pattern: i, End: from + j + len(needle)})
			from += j + 1
		}
	}
	slices.SortFunc(out, func(a, b Match) int {
		if a.End != b.End {
			return a.End - b.End
		}
		return a.Pattern - b.Pattern
	})
	return out
}

func mustCompile(t testing.TB, pats []Pattern) *Matcher {
	t.Helper()
	m, err := Compile(pats)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

func lit(ss ...string) []Pattern {
	var ps []Pattern
	for _, s := range ss {
		ps = append(ps, Pattern{Bytes: []byte(s)})
	}
	return ps
}

func TestMatcherHandChecked(t *testing.T) {
	seam := strings.Repeat(".", 47) + "attack" + strings.Repeat(".", 47) // 100 bytes: q=25, 'attack' at 47..52 crosses the seam at 50
	tests := []struct {
		name string
		pats []Pattern
		text string
		want []Match
	}{
		{"textbook he she his hers", lit("he", "she", "his", "hers"), "ushers",
			[]Match{{1, 4}, {0, 4}, {3, 6}}},
		{"overlapping", lit("aa"), "aaaa", []Match{{0, 2}, {0, 3}, {0, 4}}},
		{"nocase", []Pattern{{Bytes: []byte("ABC"), NoCase: true}}, "xaBcabC",
			[]Match{{0, 4}, {0, 7}}},
		{"nocase leaves non-letters exact", []Pattern{{Bytes: []byte("a[1"), NoCase: true}}, "A[1 a{1 A[!",
			[]Match{{0, 3}}},
		{"exact and nocase on one text", []Pattern{{Bytes: []byte("aB")}, {Bytes: []byte("ab"), NoCase: true}}, "aBab",
			[]Match{{0, 2}, {1, 2}, {1, 4}}},
		{"duplicates both reported", lit("GET", "GET"), "GET /", []Match{{0, 3}, {1, 3}}},
		{"binary", []Pattern{{Bytes: []byte{0x90, 0x90}}, {Bytes: []byte{0xcd, 0x80}, NoCase: true}}, "\x90\x90\x90\xcd\x80",
			[]Match{{0, 2}, {0, 3}, {1, 5}}},
		{"no match", lit("needle"), "haystack", nil},
		{"empty text", lit("x"), "", nil},
		{"pattern across a seam", lit("attack"), seam, []Match{{0, 53}}},
		{"pattern is the whole text", lit(seam), seam, []Match{{0, 100}}},
		{"suffix inside a longer pattern", lit("abcd", "bc"), "xabcdx", []Match{{1, 4}, {0, 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, tc.pats)
			got := m.AppendMatches(nil, []byte(tc.text))
			want := tc.want
			slices.SortFunc(want, func(a, b Match) int {
				if a.End != b.End {
					return a.End - b.End
				}
				return a.Pattern - b.Pattern
			})
			if !slices.Equal(got, want) {
				t.Errorf("matches = %v, want %v", got, want)
			}
			if n := m.Count([]byte(tc.text)); n != len(want) {
				t.Errorf("Count = %d, want %d", n, len(want))
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile([]Pattern{{Bytes: []byte("ok")}, {}})
	if err == nil || !strings.Contains(err.Error(), "pattern 1 is empty") {
		t.Errorf("empty pattern: err = %v, want one naming pattern 1", err)
	}
	m := mustCompile(t, nil)
	if n := m.Count([]byte(strings.Repeat("x", 100))); n != 0 {
		t.Errorf("no patterns: %d matches", n)
	}
}

func TestCompileTooLarge(t *testing.T) {
	defer func(s, e int) { maxStates, maxTableEntries = s, e }(maxStates, maxTableEntries)
	// 300 distinct two-byte patterns need more than 300 states.
	var pats []Pattern
	for i := 0; i < 300; i++ {
		pats = append(pats, Pattern{Bytes: []byte{byte(i), byte(i >> 8)}})
	}
	maxStates, maxTableEntries = 300, MaxTableEntries
	if _, err := Compile(pats); !errors.Is(err, ErrTooLarge) {
		t.Errorf("state limit: err = %v, want ErrTooLarge", err)
	}
	maxStates, maxTableEntries = MaxStates, 100*258
	if _, err := Compile(pats); !errors.Is(err, ErrTooLarge) {
		t.Errorf("table limit: err = %v, want ErrTooLarge", err)
	}
	maxStates, maxTableEntries = MaxStates, MaxTableEntries
	if _, err := Compile(pats); err != nil {
		t.Errorf("within limits: %v", err)
	}
}

func TestByteClasses(t *testing.T) {
	tests := []struct {
		name string
		pats []Pattern
		want int
	}{
		// unused bytes, {a,A}, {b,B}
		{"letters fold", []Pattern{{Bytes: []byte("ab"), NoCase: true}}, 3},
		// case-sensitive letters fold too; they are confirmed on a match
		{"exact letters fold", []Pattern{{Bytes: []byte("ab"), NoCase: true}, {Bytes: []byte("A")}, {Bytes: []byte("a")}}, 3},
		// unused, 0x00, 0xff
		{"binary", []Pattern{{Bytes: []byte{0, 0xff, 0}}}, 3},
		// every byte used: 256 values less 26 folded letters, no unused class
		{"every byte", []Pattern{{Bytes: func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}()}}, 230},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, tc.pats)
			if got := m.Stats().Classes; got != tc.want {
				t.Errorf("classes = %d, want %d", got, tc.want)
			}
		})
	}
}

// withWidths runs f once with 16-bit tables (the default for small sets)
// and once with 32-bit tables forced.
func withWidths(t *testing.T, f func(t *testing.T)) {
	t.Run("uint16", f)
	t.Run("uint32", func(t *testing.T) {
		force32 = true
		defer func() { force32 = false }()
		f(t)
	})
}

// TestMatcherProperty compares the matcher with naiveMatches on random
// pattern sets and texts. Small alphabets make overlaps, shared prefixes,
// nocase/exact collisions and occurrences across the scan's seams common.
func TestMatcherProperty(t *testing.T) {
	alphabets := map[string][]byte{
		"tiny":   []byte("aAbB"),
		"mixed":  []byte("abcABC\x00\xff-"),
		"binary": nil, // all 256 bytes
	}
	for name, alpha := range alphabets {
		t.Run(name, func(t *testing.T) {
			withWidths(t, func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					var sym *rapid.Generator[byte]
					if alpha == nil {
						sym = rapid.Byte()
					} else {
						sym = rapid.SampledFrom(alpha)
					}
					pats := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Pattern {
						return Pattern{
							Bytes:  rapid.SliceOfN(sym, 1, 8).Draw(t, "bytes"),
							NoCase: rapid.Bool().Draw(t, "nocase"),
						}
					}), 1, 24).Draw(t, "patterns")
					// Sizes around the four-stream threshold and well above it;
					// rapid alone would mostly draw short texts.
					n := rapid.SampledFrom([]int{0, 1, 7, 63, 64, 65, 67, 128, 200, 401}).Draw(t, "len")
					text := rapid.SliceOfN(sym, n, n).Draw(t, "text")
					m, err := Compile(pats)
					if err != nil {
						t.Fatalf("Compile: %v", err)
					}
					got := m.AppendMatches(nil, text)
					want := naiveMatches(pats, text)
					if !slices.Equal(got, want) {
						t.Fatalf("matches differ\n got  %v\n want %v", got, want)
					}
				})
			})
		})
	}
}

func TestMatcherLongPatterns(t *testing.T) {
	// Patterns longer than a quarter of the text, so stitching has to run
	// across a whole segment and beyond.
	withWidths(t, func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			sym := rapid.SampledFrom([]byte("xyX"))
			pats := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Pattern {
				return Pattern{Bytes: rapid.SliceOfN(sym, 20, 90).Draw(t, "bytes"), NoCase: rapid.Bool().Draw(t, "nocase")}
			}), 1, 6).Draw(t, "patterns")
			// Build the text from pieces of the patterns so long matches occur.
			var text []byte
			for len(text) < 200 {
				if rapid.Bool().Draw(t, "piece") {
					p := pats[rapid.IntRange(0, len(pats)-1).Draw(t, "which")]
					text = append(text, p.Bytes...)
				} else {
					text = append(text, rapid.SliceOfN(sym, 1, 10).Draw(t, "noise")...)
				}
			}
			m, err := Compile(pats)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got, want := m.AppendMatches(nil, text), naiveMatches(pats, text); !slices.Equal(got, want) {
				t.Fatalf("matches differ\n got  %v\n want %v", got, want)
			}
		})
	})
}

func TestTableOKCatchesCorruption(t *testing.T) {
	withWidths(t, func(t *testing.T) {
		m := mustCompile(t, lit("abc", "bcd", "xyz"))
		if err := m.tableOK(); err != nil {
			t.Fatalf("fresh table: %v", err)
		}
		if m.t16 != nil {
			m.t16[1] = uint16(m.states)
		} else {
			m.t32[1] = uint32(m.states * (m.nclass + 2))
		}
		if err := m.tableOK(); err == nil {
			t.Error("a transition past the last state was not reported")
		}
	})
}
