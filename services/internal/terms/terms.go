package terms

// MaxLen bounds the length of a term. Longer tokens are skipped both when
// a corpus is read and when a request is parsed, so the two always agree;
// 64 bytes is far beyond any word of a natural language and lets a request
// be case-folded into a buffer on the stack.
const MaxLen = 64

// isWordByte reports whether c belongs to a term: ASCII letters and digits,
// and every byte of a multi-byte UTF-8 sequence, so that non-ASCII words
// stay whole. Anything else separates terms.
func isWordByte(c byte) bool {
	return c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z') || (c >= '0' && c <= '9')
}

// Next scans s from i and returns the next term, ASCII-lowercased, and
// the offset after it; ok is false when s holds no more terms. A term that
// needs folding is copied into buf, otherwise the returned slice aliases s.
// Terms longer than MaxLen are skipped. Next never allocates.
func Next(s []byte, i int, buf *[MaxLen]byte) (term []byte, next int, ok bool) {
	for {
		for i < len(s) && !isWordByte(s[i]) {
			i++
		}
		if i >= len(s) {
			return nil, i, false
		}
		start, upper := i, false
		for i < len(s) && isWordByte(s[i]) {
			if s[i] >= 'A' && s[i] <= 'Z' {
				upper = true
			}
			i++
		}
		if i-start > MaxLen {
			continue
		}
		if !upper {
			return s[start:i], i, true
		}
		n := copy(buf[:], s[start:i])
		for j := 0; j < n; j++ {
			if c := buf[j]; c >= 'A' && c <= 'Z' {
				buf[j] = c + ('a' - 'A')
			}
		}
		return buf[:n], i, true
	}
}

// Tokenise splits every text into terms and numbers the distinct terms in
// order of first appearance: words[id] is the term with id, ids holds the
// term ids of all texts one after the other, and text d is
// ids[docStart[d]:docStart[d+1]].
func Tokenise(texts [][]byte) (words []string, ids, docStart []uint32) {
	seen := map[string]uint32{}
	docStart = make([]uint32, 1, len(texts)+1)
	var buf [MaxLen]byte
	for _, text := range texts {
		for i := 0; ; {
			term, next, ok := Next(text, i, &buf)
			if !ok {
				break
			}
			i = next
			id, dup := seen[string(term)]
			if !dup {
				id = uint32(len(words))
				seen[string(term)] = id
				words = append(words, string(term))
			}
			ids = append(ids, id)
		}
		docStart = append(docStart, uint32(len(ids)))
	}
	return words, ids, docStart
}
