package gen

import (
	"math/rand/v2"
	"slices"
)

// consonants and vowels build the pseudo-words of a vocabulary.
const (
	consonants = "bcdfghjklmnprstvwz"
	vowels     = "aeiou"
)

// Vocabulary returns n distinct lowercase pseudo-words drawn from rng,
// shortest first, so that a vocabulary ranked by Zipf frequency has short
// frequent words as natural language does. Words have one to four
// syllables, each a consonant and a vowel, optionally closed by a
// consonant; they are pronounceable, so corpora and queries read like text,
// and made of ASCII letters only, so every tokeniser keeps them whole.
func Vocabulary(rng *rand.Rand, n int) []string {
	seen := make(map[string]struct{}, n)
	words := make([]string, 0, n)
	var b []byte
	for len(words) < n {
		b = b[:0]
		// Syllable counts grow with the vocabulary so short words run out
		// gracefully: 1-2 syllables give about 8,000 (C)V(C) shapes.
		syl := 1 + rng.IntN(2+len(words)/4000)
		if syl > 4 {
			syl = 2 + rng.IntN(3)
		}
		for range syl {
			b = append(b, consonants[rng.IntN(len(consonants))], vowels[rng.IntN(len(vowels))])
			if rng.IntN(4) == 0 {
				b = append(b, consonants[rng.IntN(len(consonants))])
			}
		}
		if _, dup := seen[string(b)]; dup {
			continue
		}
		w := string(b)
		seen[w] = struct{}{}
		words = append(words, w)
	}
	// Stable sort by length keeps the draw order among equal lengths, so the
	// result depends only on the seed.
	slices.SortStableFunc(words, func(a, b string) int { return len(a) - len(b) })
	return words
}
