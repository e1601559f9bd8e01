package terms

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// reference splits s the way the package comment says, by the simplest
// means: fields of word bytes, lowercased, long ones dropped.
func reference(s []byte) []string {
	var out []string
	for _, f := range bytes.FieldsFunc(s, func(r rune) bool {
		// FieldsFunc decodes runes; every non-ASCII rune (and every invalid
		// byte, decoded as RuneError) is made of bytes >= 0x80.
		return r < utf8.RuneSelf && !isWordByte(byte(r))
	}) {
		if len(f) <= MaxLen {
			low := []byte(string(f)) // a copy
			for i, c := range low {
				if c >= 'A' && c <= 'Z' {
					low[i] = c + 'a' - 'A'
				}
			}
			out = append(out, string(low))
		}
	}
	return out
}

func all(s []byte) []string {
	var out []string
	var buf [MaxLen]byte
	for i := 0; ; {
		term, next, ok := Next(s, i, &buf)
		if !ok {
			return out
		}
		if next <= i {
			panic("Next did not advance")
		}
		out = append(out, string(term))
		i = next
	}
}

func TestNextHandChecked(t *testing.T) {
	long := strings.Repeat("x", MaxLen+1)
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ,;. ", nil},
		{"Hello, World!", []string{"hello", "world"}},
		{"don't stop-me now2", []string{"don", "t", "stop", "me", "now2"}},
		{"Übergrößen café", []string{"Übergrößen", "café"}}, // only ASCII folds
		{"a " + long + " b", []string{"a", "b"}},
		{strings.Repeat("Y", MaxLen), []string{strings.Repeat("y", MaxLen)}},
		{"tab\tnew\nline\r", []string{"tab", "new", "line"}},
	} {
		if got := all([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	s := []byte("The QUICK brown fox, jumps over the LAZY dog")
	var buf [MaxLen]byte
	if n := testing.AllocsPerRun(100, func() {
		for i := 0; ; {
			_, next, ok := Next(s, i, &buf)
			if !ok {
				break
			}
			i = next
		}
	}); n != 0 {
		t.Errorf("%v allocations per text", n)
	}
}

func TestTokenise(t *testing.T) {
	words, ids, docStart := Tokenise([][]byte{[]byte("the cat, The HAT"), nil, []byte("hat cat dog")})
	if !slices.Equal(words, []string{"the", "cat", "hat", "dog"}) ||
		!slices.Equal(ids, []uint32{0, 1, 0, 2, 2, 1, 3}) ||
		!slices.Equal(docStart, []uint32{0, 4, 4, 7}) {
		t.Errorf("words %q ids %v docStart %v", words, ids, docStart)
	}
}

// FuzzNext checks Next against the reference on any input: requests are
// outside input, and a term split differently from the corpus would
// silently miss.
func FuzzNext(f *testing.F) {
	f.Add([]byte("Hello, World! 42 café"))
	f.Add([]byte(strings.Repeat("A", MaxLen) + " " + strings.Repeat("b", MaxLen+1)))
	f.Add([]byte{0xff, 'a', 0x80, ' ', 'Z'})
	f.Fuzz(func(t *testing.T, s []byte) {
		if got, want := all(s), reference(s); !slices.Equal(got, want) {
			t.Fatalf("%q: %q, reference %q", s, got, want)
		}
	})
}

func BenchmarkNext(b *testing.B) {
	s := []byte("Okapi BM25 ranks the documents of an inverted index by the terms of a Query")
	var buf [MaxLen]byte
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		for i := 0; ; {
			_, next, ok := Next(s, i, &buf)
			if !ok {
				break
			}
			i = next
		}
	}
}
