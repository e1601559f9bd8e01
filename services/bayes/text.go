package bayes

// maxTermLen bounds the length of a term. Longer tokens are skipped both
// when the model is trained and when a message is classified, so the two always
// agree; 64 bytes is far beyond any word of a natural language and lets a
// query be case-folded into a buffer on the stack.
const maxTermLen = 64

// isWordByte reports whether c belongs to a term: ASCII letters and digits,
// and every byte of a multi-byte UTF-8 sequence, so that non-ASCII words
// stay whole. Anything else separates terms.
func isWordByte(c byte) bool {
	return c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z') || (c >= '0' && c <= '9')
}

// nextTerm scans s from i and returns the next term, ASCII-lowercased, and
// the offset after it; ok is false when s holds no more terms. A term that
// needs folding is copied into buf, otherwise the returned slice aliases s.
// Terms longer than maxTermLen are skipped. nextTerm never allocates.
func nextTerm(s []byte, i int, buf *[maxTermLen]byte) (term []byte, next int, ok bool) {
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
		if i-start > maxTermLen {
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
