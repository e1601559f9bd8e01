package nids

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Pattern is one literal a [Matcher] searches for.
type Pattern struct {
	// Bytes is the literal; it must not be empty.
	Bytes []byte
	// NoCase makes ASCII letters match in either case, like Snort's
	// nocase modifier. Bytes outside A-Z and a-z always match exactly.
	NoCase bool
}

// Limits on what Compile accepts. A dense DFA costs rows x classes x 4
// bytes; these bounds keep a hostile or mistaken rule set from taking the
// node down while leaving room for rule sets far larger than Snort's.
const (
	// MaxStates bounds the number of DFA states.
	MaxStates = 1 << 21
	// MaxTableEntries bounds the transition table (4 bytes per entry).
	MaxTableEntries = 1 << 27
)

// ErrTooLarge is returned by Compile when the automaton would exceed
// MaxStates or MaxTableEntries.
var ErrTooLarge = errors.New("nids: pattern set too large for a dense DFA")

// The limits Compile enforces; variables so that a test can lower them.
var maxStates, maxTableEntries = MaxStates, MaxTableEntries

// Matcher finds every occurrence of a fixed set of patterns in a text. It is
// an Aho-Corasick automaton compiled into a dense DFA: the goto and failure
// functions are folded into one transition per (state, byte class), so the
// scan does exactly one table load per input byte and never follows a
// failure link.
//
// Layout, chosen for the scan loop:
//   - bytes map to equivalence classes (bytes no pattern distinguishes share
//     a class; a letter and its other case share one when only nocase
//     patterns use it), so a row has one column per class, not 256;
//   - a state is named by the offset of its row in the table (premultiplied),
//     so the next state is table[state+class[b]] with no multiply;
//   - accepting states are numbered after all others, so one comparison
//     with a constant tells whether the scan must report;
//   - each row carries two extra columns past the classes: the state's depth
//     (the length of the longest pattern prefix it stands for) and, for an
//     accepting state, its slot in the output table.
//
// A Matcher is read-only after Compile and safe for concurrent use.
type Matcher struct {
	class    [256]uint8
	nclass   uint32   // columns that are transitions
	width    uint32   // row width: nclass + 2
	table    []uint32 // rows; entries are row offsets of the next state
	accept   uint32   // row offsets >= accept are accepting states
	outStart []uint32 // outputs of slot k are outPat[outStart[k]:outStart[k+1]]
	outPat   []int32  // pattern indices
	patLen   []int32  // length of each pattern
	states   int
}

// Stats describes a compiled matcher.
type Stats struct {
	Patterns    int // patterns compiled
	States      int // DFA states
	Accepting   int // states that report at least one pattern
	Classes     int // byte equivalence classes (table columns)
	TableBytes  int // size of the transition table
	MaxPattern  int // longest pattern in bytes
	OutputSlots int // total (state, pattern) output entries
}

// Stats reports the size of m.
func (m *Matcher) Stats() Stats {
	mx := 0
	for _, l := range m.patLen {
		mx = max(mx, int(l))
	}
	return Stats{
		Patterns:    len(m.patLen),
		States:      m.states,
		Accepting:   len(m.outStart) - 1,
		Classes:     int(m.nclass),
		TableBytes:  4 * len(m.table),
		MaxPattern:  mx,
		OutputSlots: len(m.outPat),
	}
}

// PatternLen returns the length of pattern i.
func (m *Matcher) PatternLen(i int) int { return int(m.patLen[i]) }

// A trie symbol is a byte set: an exact byte b is b; a case-folded letter is
// foldSym | its lower-case form, standing for both cases.
const foldSym = 0x100

type trieEdge struct {
	sym uint16
	to  int32
}

type trieNode struct {
	edges []trieEdge
	out   []int32
	depth int32
}

func isLetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

// Compile builds a matcher for pats. Matches are reported by index into
// pats. It fails on an empty pattern or when the DFA would be too large.
func Compile(pats []Pattern) (*Matcher, error) {
	m := &Matcher{patLen: make([]int32, len(pats))}

	// 1. The trie over symbols. A nocase letter becomes a two-byte symbol,
	// so a nocase pattern is one trie path and not 2^letters of them.
	nodes := []trieNode{{}}
	child := map[uint64]int32{}
	var usedExact, usedFold [256]bool
	for i, p := range pats {
		if len(p.Bytes) == 0 {
			return nil, fmt.Errorf("nids: pattern %d is empty", i)
		}
		if len(p.Bytes) > 1<<16 {
			return nil, fmt.Errorf("nids: pattern %d is %d bytes, longer than 65536", i, len(p.Bytes))
		}
		m.patLen[i] = int32(len(p.Bytes))
		n := int32(0)
		for _, b := range p.Bytes {
			sym := uint16(b)
			if p.NoCase && isLetter(b) {
				sym = foldSym | uint16(b|0x20)
				usedFold[b|0x20] = true
			} else {
				usedExact[b] = true
			}
			k := uint64(n)<<16 | uint64(sym)
			next, ok := child[k]
			if !ok {
				next = int32(len(nodes))
				nodes = append(nodes, trieNode{depth: nodes[n].depth + 1})
				nodes[n].edges = append(nodes[n].edges, trieEdge{sym, next})
				child[k] = next
			}
			n = next
		}
		nodes[n].out = append(nodes[n].out, int32(i))
	}

	// 2. Byte classes. Two bytes are equivalent when every symbol contains
	// both or neither; with exact bytes and folded letter pairs as the only
	// symbols, a byte's signature is (used exactly?, folded pair used?).
	sig := func(b int) int {
		if usedExact[b] {
			return 1 + b // exact use makes the byte a class of its own
		}
		if isLetter(byte(b)) && usedFold[b|0x20] {
			return 1000 + (b | 0x20) // shares a class with its other case
		}
		return 0 // no pattern uses it
	}
	// Class 0 is for bytes no pattern uses, when there are any: the scan
	// from such a byte always lands in the start state.
	sigClass := map[int]uint8{}
	for b := 0; b < 256; b++ {
		if sig(b) == 0 {
			sigClass[0] = 0
			break
		}
	}
	for b := 0; b < 256; b++ {
		s := sig(b)
		c, ok := sigClass[s]
		if !ok {
			c = uint8(len(sigClass))
			sigClass[s] = c
		}
		m.class[b] = c
	}
	nclass := len(sigClass)
	m.nclass = uint32(nclass)
	m.width = m.nclass + 2
	symClasses := func(sym uint16) (uint8, uint8) {
		if sym&foldSym != 0 {
			l := byte(sym)
			return m.class[l], m.class[l&^0x20]
		}
		return m.class[sym], m.class[sym]
	}

	// Children of the root per class, added to every state's transitions.
	rootKids := make([][]int32, nclass)
	for _, e := range nodes[0].edges {
		c1, c2 := symClasses(e.sym)
		rootKids[c1] = append(rootKids[c1], e.to)
		if c2 != c1 {
			rootKids[c2] = append(rootKids[c2], e.to)
		}
	}

	// 3. Subset construction. A DFA state is the set of trie nodes whose
	// strings are suffixes of the input read so far (the root implied). For
	// case-sensitive patterns alone this is exactly the Aho-Corasick state
	// (the deepest node and its failure chain); with nocase patterns mixed
	// in, a text can sit on two trie paths at once and the set records both.
	var (
		sets   [][]int32 // sets[s]: sorted non-root trie nodes of state s
		rows   []int32   // rows[s*nclass+c]: next state, numbered by discovery
		index  = map[string]int32{}
		keyBuf []byte
		bucket = make([][]int32, nclass)
		marked = make([]bool, nclass)
		order  []int
	)
	intern := func(set []int32) (int32, error) {
		keyBuf = keyBuf[:0]
		for _, n := range set {
			keyBuf = binary.LittleEndian.AppendUint32(keyBuf, uint32(n))
		}
		if id, ok := index[string(keyBuf)]; ok {
			return id, nil
		}
		if len(sets) >= maxStates || (len(sets)+1)*(nclass+2) > maxTableEntries {
			return 0, fmt.Errorf("%w: more than %d states of %d classes", ErrTooLarge, len(sets), nclass)
		}
		id := int32(len(sets))
		sets = append(sets, slices.Clone(set))
		index[string(keyBuf)] = id
		return id, nil
	}
	if _, err := intern(nil); err != nil {
		return nil, err
	}
	var scratch []int32
	for s := 0; s < len(sets); s++ {
		order = order[:0]
		touch := func(c uint8, to int32) {
			if !marked[c] {
				marked[c] = true
				order = append(order, int(c))
			}
			bucket[c] = append(bucket[c], to)
		}
		for _, n := range sets[s] {
			for _, e := range nodes[n].edges {
				c1, c2 := symClasses(e.sym)
				touch(c1, e.to)
				if c2 != c1 {
					touch(c2, e.to)
				}
			}
		}
		base := len(rows)
		if s == 0 {
			// The start state: only the root's children.
			rows = append(rows, make([]int32, nclass)...)
			for c := 0; c < nclass; c++ {
				if len(rootKids[c]) == 0 {
					continue
				}
				scratch = append(scratch[:0], rootKids[c]...)
				slices.Sort(scratch)
				id, err := intern(slices.Compact(scratch))
				if err != nil {
					return nil, err
				}
				rows[c] = id
			}
			continue
		}
		// Any other state moves like the start state on classes none of
		// its nodes continue with: the root's children are all that remain.
		rows = append(rows, rows[:nclass]...)
		for _, c := range order {
			scratch = append(append(scratch[:0], bucket[c]...), rootKids[c]...)
			slices.Sort(scratch)
			id, err := intern(slices.Compact(scratch))
			if err != nil {
				return nil, err
			}
			rows[base+c] = id
			bucket[c] = bucket[c][:0]
			marked[c] = false
		}
	}
	m.states = len(sets)

	// 4. Number accepting states last and lay out the table.
	newID := make([]uint32, len(sets))
	accepting := func(s int) bool {
		for _, n := range sets[s] {
			if len(nodes[n].out) > 0 {
				return true
			}
		}
		return false
	}
	next := uint32(0)
	for s := range sets {
		if !accepting(s) {
			newID[s] = next
			next++
		}
	}
	m.accept = next * m.width
	var accOrder []int
	for s := range sets {
		if accepting(s) {
			newID[s] = next
			next++
			accOrder = append(accOrder, s)
		}
	}
	w := int(m.width)
	m.table = make([]uint32, len(sets)*w)
	for s := range sets {
		row := m.table[int(newID[s])*w : int(newID[s]+1)*w]
		for c := 0; c < nclass; c++ {
			row[c] = newID[rows[s*nclass+c]] * m.width
		}
		depth := int32(0)
		for _, n := range sets[s] {
			depth = max(depth, nodes[n].depth)
		}
		row[nclass] = uint32(depth)
	}
	m.outStart = make([]uint32, 1, len(accOrder)+1)
	var outs []int32
	for slot, s := range accOrder {
		outs = outs[:0]
		for _, n := range sets[s] {
			outs = append(outs, nodes[n].out...)
		}
		slices.Sort(outs)
		m.outPat = append(m.outPat, outs...)
		m.outStart = append(m.outStart, uint32(len(m.outPat)))
		m.table[int(newID[s])*w+nclass+1] = uint32(slot)
	}
	return m, nil
}

// streamMin is the shortest text scanned as four interleaved streams; below
// it the stitching at the three seams costs more than the overlap gains.
const streamMin = 64

// Scan calls report(pattern, end) for every occurrence of every pattern in
// text, overlapping ones included: pattern is the index given to Compile and
// the occurrence is text[end-len:end] with len = PatternLen(pattern).
// Occurrences are reported in no particular order. Scan does not allocate;
// report must not retain text.
//
// Texts of at least 64 bytes are cut into four segments scanned in lock
// step, so that the four dependent table loads of a step overlap in the
// CPU instead of waiting for one another. Each stream starts in the start
// state at its segment and so finds every occurrence that begins inside its
// segment and ends anywhere after it; at each seam the previous stream is
// then run on past its segment just until its state depends only on bytes
// of the next segment (its depth no longer reaches back over the seam),
// reporting only occurrences that begin before the seam. On typical traffic
// that takes a byte or two, so no byte is scanned twice in bulk.
func (m *Matcher) Scan(text []byte, report func(pattern, end int)) {
	if len(text) < streamMin {
		m.scan1(text, report)
		return
	}
	q := len(text) / 4
	m.scan4(text, q, report)
}

// scan1 is the plain one-stream loop.
func (m *Matcher) scan1(text []byte, report func(pattern, end int)) {
	tab, cls, acc := m.table, &m.class, m.accept
	s := uint32(0)
	for i, b := range text {
		s = tab[s+uint32(cls[b])]
		if s >= acc {
			m.emit(s, i+1, -1, report)
		}
	}
}

func (m *Matcher) scan4(text []byte, q int, report func(pattern, end int)) {
	tab, cls, acc := m.table, &m.class, m.accept
	t0 := text[:q]
	t1 := text[q : 2*q]
	t2 := text[2*q : 3*q]
	t3 := text[3*q : 4*q]
	var s0, s1, s2, s3 uint32
	for i := range t0 {
		s0 = tab[s0+uint32(cls[t0[i]])]
		s1 = tab[s1+uint32(cls[t1[i]])]
		s2 = tab[s2+uint32(cls[t2[i]])]
		s3 = tab[s3+uint32(cls[t3[i]])]
		if s0 >= acc {
			m.emit(s0, i+1, -1, report)
		}
		if s1 >= acc {
			m.emit(s1, q+i+1, -1, report)
		}
		if s2 >= acc {
			m.emit(s2, 2*q+i+1, -1, report)
		}
		if s3 >= acc {
			m.emit(s3, 3*q+i+1, -1, report)
		}
	}
	// The last stream also takes the remainder of len(text)/4.
	for i := 4 * q; i < len(text); i++ {
		s3 = tab[s3+uint32(cls[text[i]])]
		if s3 >= acc {
			m.emit(s3, i+1, -1, report)
		}
	}
	m.stitch(s0, text, q, report)
	m.stitch(s1, text, 2*q, report)
	m.stitch(s2, text, 3*q, report)
}

// stitch continues a stream that ended in state s just before seam, until
// its state no longer reaches back before the seam, reporting only the
// occurrences that start before the seam (the next stream reports the
// others).
func (m *Matcher) stitch(s uint32, text []byte, seam int, report func(pattern, end int)) {
	tab, cls, acc := m.table, &m.class, m.accept
	for p := seam; p < len(text) && int(tab[s+m.nclass]) > p-seam; p++ {
		s = tab[s+uint32(cls[text[p]])]
		if s >= acc {
			m.emit(s, p+1, seam, report)
		}
	}
}

// emit reports the outputs of accepting state s at end. With seam >= 0 only
// occurrences starting before seam are reported.
func (m *Matcher) emit(s uint32, end, seam int, report func(pattern, end int)) {
	slot := m.table[s+m.nclass+1]
	for _, p := range m.outPat[m.outStart[slot]:m.outStart[slot+1]] {
		if seam < 0 || end-int(m.patLen[p]) < seam {
			report(int(p), end)
		}
	}
}

// Match is one occurrence found by AppendMatches.
type Match struct {
	Pattern int // index into the patterns given to Compile
	End     int // offset just past the occurrence's last byte
}

// AppendMatches appends every occurrence in text to dst, sorted by End and
// then Pattern, and returns the extended slice.
func (m *Matcher) AppendMatches(dst []Match, text []byte) []Match {
	start := len(dst)
	m.Scan(text, func(p, end int) { dst = append(dst, Match{p, end}) })
	slices.SortFunc(dst[start:], func(a, b Match) int {
		if a.End != b.End {
			return a.End - b.End
		}
		return a.Pattern - b.Pattern
	})
	return dst
}

// Count returns the number of occurrences in text.
func (m *Matcher) Count(text []byte) int {
	n := 0
	m.Scan(text, func(int, int) { n++ })
	return n
}
