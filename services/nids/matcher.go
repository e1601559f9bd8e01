package nids

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"
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
//   - bytes map to equivalence classes: bytes no pattern uses share one
//     class, and an upper-case letter always shares the class of its lower
//     case. The automaton is therefore built over case-folded patterns (as
//     Snort's own Aho-Corasick does), which keeps it as small as a
//     case-insensitive one; a case-sensitive pattern that contains letters
//     is confirmed with one comparison when the automaton reports it;
//   - entries are uint16 when the automaton has at most 65536 states, which
//     halves the table and the cache lines the scan touches; a state is then
//     its number and its row 256 entries, so the next state is
//     table[state<<8 | class[b]] (a constant shift; columns past the
//     classes are padding that is never loaded, so it costs memory but no
//     cache). Larger automata use uint32 entries holding the offset of the
//     next state's row (premultiplied by the row width), so the next state
//     is table[state + class[b]];
//   - accepting states are numbered after all others, so one comparison
//     with a constant tells whether the scan must report;
//   - two columns after the classes hold the state's depth (the length of
//     the longest pattern prefix it stands for, used at the seams of the
//     interleaved scan) and, for an accepting state, its output slot.
//
// A Matcher is read-only after Compile and safe for concurrent use.
type Matcher struct {
	class    [256]uint8
	nclass   int
	t16      []uint16 // the table when states <= 65536
	t32      []uint32 // the table otherwise
	accept   uint32   // table values >= accept are accepting states
	outStart []uint32 // outputs of slot k are outPat[outStart[k]:outStart[k+1]]
	outPat   []int32  // pattern indices
	patLen   []int32  // length of each pattern
	exact    []bool   // the pattern must be confirmed case-sensitively
	patOff   []int32  // pattern i is arena[patOff[i]:patOff[i]+patLen[i]]
	arena    []byte
	states   int
}

// Stats describes a compiled matcher.
type Stats struct {
	Patterns    int // patterns compiled
	States      int // DFA states
	Accepting   int // states that report at least one pattern
	Classes     int // byte equivalence classes (table columns)
	EntryBytes  int // size of one table entry: 2 or 4
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
	st := Stats{
		Patterns:    len(m.patLen),
		States:      m.states,
		Accepting:   len(m.outStart) - 1,
		Classes:     m.nclass,
		MaxPattern:  mx,
		OutputSlots: len(m.outPat),
	}
	if m.t16 != nil {
		st.EntryBytes, st.TableBytes = 2, 2*len(m.t16)
	} else {
		st.EntryBytes, st.TableBytes = 4, 4*len(m.t32)
	}
	return st
}

// PatternLen returns the length of pattern i.
func (m *Matcher) PatternLen(i int) int { return int(m.patLen[i]) }

func isLetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

func fold(b byte) byte {
	if isLetter(b) {
		return b | 0x20
	}
	return b
}

// MaxPatternLen is the longest pattern Compile accepts; depths are stored
// in table entries, which may be 16 bits wide.
const MaxPatternLen = 65535

// Compile builds a matcher for pats. Matches are reported by index into
// pats. It fails on an empty or over-long pattern or when the DFA would be
// too large.
func Compile(pats []Pattern) (*Matcher, error) {
	m := &Matcher{
		patLen: make([]int32, len(pats)),
		exact:  make([]bool, len(pats)),
		patOff: make([]int32, len(pats)),
	}

	// 1. Byte classes over folded bytes: each folded byte some pattern
	// uses is a class; all other bytes share class 0 when there are any.
	var used [256]bool
	total := 0
	for i, p := range pats {
		if len(p.Bytes) == 0 {
			return nil, fmt.Errorf("nids: pattern %d is empty", i)
		}
		if len(p.Bytes) > MaxPatternLen {
			return nil, fmt.Errorf("nids: pattern %d is %d bytes, longer than %d", i, len(p.Bytes), MaxPatternLen)
		}
		if total += len(p.Bytes); total > maxTableEntries {
			return nil, fmt.Errorf("%w: patterns total more than %d bytes", ErrTooLarge, maxTableEntries)
		}
		for _, b := range p.Bytes {
			used[fold(b)] = true
		}
	}
	nclass := 0
	var classOf [256]int
	for b := 0; b < 256; b++ {
		if !used[fold(byte(b))] {
			nclass = 1 // class 0: bytes no pattern uses
			break
		}
	}
	for b := 0; b < 256; b++ {
		if used[b] {
			classOf[b] = nclass
			nclass++
		}
	}
	for b := 0; b < 256; b++ {
		m.class[b] = uint8(classOf[fold(byte(b))])
	}
	m.nclass = nclass
	// Rows: 256 entries for 16-bit tables (nclass+2 <= 232), nclass+2
	// for 32-bit ones. Size limits are checked against the larger.
	width := max(256, nclass+2)

	// 2. The trie of folded patterns.
	type node struct {
		kids  []int32 // children, in order of creation
		out   []int32
		depth int32
	}
	nodes := []node{{}}
	child := map[uint64]int32{}
	for i, p := range pats {
		m.patLen[i] = int32(len(p.Bytes))
		m.patOff[i] = int32(len(m.arena))
		m.arena = append(m.arena, p.Bytes...)
		n := int32(0)
		for _, b := range p.Bytes {
			if !p.NoCase && isLetter(b) {
				m.exact[i] = true
			}
			k := uint64(n)<<8 | uint64(m.class[b])
			next, ok := child[k]
			if !ok {
				if len(nodes) >= maxStates {
					return nil, fmt.Errorf("%w: more than %d states", ErrTooLarge, maxStates)
				}
				next = int32(len(nodes))
				nodes = append(nodes, node{depth: nodes[n].depth + 1})
				nodes[n].kids = append(nodes[n].kids, next)
				child[k] = next
			}
			n = next
		}
		nodes[n].out = append(nodes[n].out, int32(i))
	}
	if len(nodes)*width > maxTableEntries {
		return nil, fmt.Errorf("%w: %d states of %d entries", ErrTooLarge, len(nodes), width)
	}
	m.states = len(nodes)

	// 3. Breadth-first: failure links, inherited outputs and the full
	// transition rows (a missing goto takes the failure state's move,
	// whose row is complete because it is shallower).
	rows := make([]int32, len(nodes)*nclass) // by trie node; final numbering later
	fail := make([]int32, len(nodes))
	order := make([]int32, 0, len(nodes))
	order = append(order, 0)
	cls := make([]uint8, len(nodes)) // class of the edge into each node
	for k, v := range child {
		cls[v] = uint8(k)
	}
	for qi := 0; qi < len(order); qi++ {
		s := order[qi]
		row := rows[int(s)*nclass : int(s+1)*nclass]
		if s != 0 {
			copy(row, rows[int(fail[s])*nclass:int(fail[s]+1)*nclass])
		}
		for _, kid := range nodes[s].kids {
			c := cls[kid]
			if s != 0 {
				fail[kid] = rows[int(fail[s])*nclass+int(c)]
			}
			row[c] = kid
			order = append(order, kid)
		}
		if s != 0 && len(nodes[fail[s]].out) > 0 {
			nodes[s].out = append(nodes[s].out, nodes[fail[s]].out...)
		}
	}

	// 4. Number accepting states last, keeping breadth-first order within
	// each group so that the shallow states the scan visits most share
	// cache lines and pages.
	newID := make([]uint32, len(nodes))
	var next uint32
	for _, s := range order {
		if len(nodes[s].out) == 0 {
			newID[s] = next
			next++
		}
	}
	m.accept = next
	var accOrder []int32
	for _, s := range order {
		if len(nodes[s].out) > 0 {
			newID[s] = next
			next++
			accOrder = append(accOrder, s)
		}
	}
	slot := make([]uint32, len(nodes))
	m.outStart = make([]uint32, 1, len(accOrder)+1)
	for k, s := range accOrder {
		outs := nodes[s].out
		slices.Sort(outs)
		m.outPat = append(m.outPat, outs...)
		m.outStart = append(m.outStart, uint32(len(m.outPat)))
		slot[s] = uint32(k)
	}
	if len(nodes) <= 1<<16 && !force32 {
		m.t16 = make([]uint16, len(nodes)<<8)
		for s := range nodes {
			row := m.t16[int(newID[s])<<8:][:nclass+2]
			for c := range nclass {
				row[c] = uint16(newID[rows[s*nclass+c]])
			}
			row[nclass] = uint16(nodes[s].depth)
			row[nclass+1] = uint16(slot[s])
		}
	} else {
		w := uint32(nclass + 2)
		m.t32 = make([]uint32, len(nodes)*int(w))
		for s := range nodes {
			row := m.t32[newID[s]*w:][:w]
			for c := range nclass {
				row[c] = newID[rows[s*nclass+c]] * w
			}
			row[nclass] = uint32(nodes[s].depth)
			row[nclass+1] = slot[s]
		}
		m.accept *= w
	}
	if err := m.tableOK(); err != nil {
		return nil, err
	}
	return m, nil
}

// tableOK checks the invariant the unchecked loads of run4x16 and run4x32
// rely on: every class is below nclass and every transition names a
// state's row, so table[row + class] is always inside the table. Compile
// establishes it by construction; checking it once per compile costs a
// pass over the table and turns a bug into an error instead of a wild read.
func (m *Matcher) tableOK() error {
	for b, c := range m.class {
		if int(c) >= m.nclass {
			return fmt.Errorf("nids: internal error: byte %d has class %d of %d", b, c, m.nclass)
		}
	}
	if m.nclass+2 > 256 && m.t16 != nil {
		return fmt.Errorf("nids: internal error: %d classes do not fit a 256-entry row", m.nclass)
	}
	for s := 0; s < m.states; s++ {
		for c := 0; c < m.nclass; c++ {
			if m.t16 != nil {
				if v := m.t16[s<<8+c]; int(v) >= m.states {
					return fmt.Errorf("nids: internal error: state %d class %d moves to %d of %d states", s, c, v, m.states)
				}
				continue
			}
			w := m.nclass + 2
			if v := int(m.t32[s*w+c]); v%w != 0 || v/w >= m.states {
				return fmt.Errorf("nids: internal error: state %d class %d moves to offset %d (width %d, %d states)", s, c, v, w, m.states)
			}
		}
	}
	return nil
}

// force32 makes Compile build 32-bit tables; tests and benchmarks set it
// to exercise and measure that path on small pattern sets.
var force32 bool

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
	var s0, s1, s2 uint32
	if m.t16 != nil {
		s0, s1, s2 = m.scan4x16(text, q, report)
	} else {
		s0, s1, s2 = m.scan4x32(text, q, report)
	}
	m.stitch(s0, text, q, report)
	m.stitch(s1, text, 2*q, report)
	m.stitch(s2, text, 3*q, report)
}

// The two table layouts. 16-bit: a state is its number, a row is 256
// entries (room for up to 254 classes and the two extra columns), so the
// row offset is a constant shift. 32-bit: a state is the offset of its row
// (premultiplied by the row width), so no shift or multiply is needed.
// Both keep the loop to one dependent table load per byte.

func (m *Matcher) scan1(text []byte, report func(pattern, end int)) {
	cls := &m.class
	if tab := m.t16; tab != nil {
		acc := uint16(m.accept)
		var s uint16
		for i, b := range text {
			s = tab[int(s)<<8|int(cls[b])]
			if s >= acc {
				m.emit(uint32(s), text, i+1, -1, report)
			}
		}
		return
	}
	tab, acc := m.t32, m.accept
	var s uint32
	for i, b := range text {
		s = tab[int(s)+int(cls[b])]
		if s >= acc {
			m.emit(s, text, i+1, -1, report)
		}
	}
}

// scan4x16 runs the four streams over text[:4q] and the last one on to the
// end; it returns the final states of the first three for stitching. The
// stepping is in a leaf function (run4x16) because Go's calling convention
// saves no registers across a call: with the report call inside the loop,
// the four states would live on the stack and every step would wait for a
// store and a reload.
func (m *Matcher) scan4x16(text []byte, q int, report func(pattern, end int)) (uint32, uint32, uint32) {
	tab, cls, acc := m.t16, &m.class, uint16(m.accept)
	var st [4]uint16
	for i := 0; i < q; {
		i = run4x16(tab, cls, acc, text, q, i, &st)
		if i > 0 && (st[0] >= acc || st[1] >= acc || st[2] >= acc || st[3] >= acc) {
			m.emit4(uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3]), text, q, i, report)
		}
	}
	s3 := st[3]
	for i := 4 * q; i < len(text); i++ {
		s3 = tab[int(s3)<<8|int(cls[text[i]])]
		if s3 >= acc {
			m.emit(uint32(s3), text, i+1, -1, report)
		}
	}
	return uint32(st[0]), uint32(st[1]), uint32(st[2])
}

// run4x16 steps the four streams from offset i of each segment until one of
// them enters an accepting state or the segments end, and returns the
// offset after the last step. It reads the text and the table without
// bounds checks: the checks cost a compare per load and, worse, registers
// for the slice lengths, and without those registers to spare the compiler
// keeps the stream states on the stack, which more than halved the
// throughput when measured. Every load is in range: text offsets are
// (k+1)q + j for stream k with j in [i-q, 0) and len(text) >= 4q (asserted
// on entry), and table offsets are a state's row plus a class, inside the
// table by the invariant tableOK checks when the matcher is compiled.
func run4x16(tab []uint16, cls *[256]uint8, acc uint16, text []byte, q, i int, st *[4]uint16) int {
	_ = text[4*q-1]
	tp := unsafe.Pointer(unsafe.SliceData(tab))
	// Pointers to the last byte of each segment and a negative index
	// counting up to zero: no register for the bound.
	p0 := unsafe.Pointer(&text[q-1])
	p1, p2, p3 := unsafe.Add(p0, q), unsafe.Add(p0, 2*q), unsafe.Add(p0, 3*q)
	s0, s1, s2, s3 := st[0], st[1], st[2], st[3]
	_ = *cls // one nil check here instead of one per step
	j := i - q
	for ; j < 0; j++ {
		s0 = *(*uint16)(unsafe.Add(tp, (int(s0)<<8|int(cls[*(*byte)(unsafe.Add(p0, j+1))]))*2))
		s1 = *(*uint16)(unsafe.Add(tp, (int(s1)<<8|int(cls[*(*byte)(unsafe.Add(p1, j+1))]))*2))
		s2 = *(*uint16)(unsafe.Add(tp, (int(s2)<<8|int(cls[*(*byte)(unsafe.Add(p2, j+1))]))*2))
		s3 = *(*uint16)(unsafe.Add(tp, (int(s3)<<8|int(cls[*(*byte)(unsafe.Add(p3, j+1))]))*2))
		if s0 >= acc || s1 >= acc || s2 >= acc || s3 >= acc {
			j++
			break
		}
	}
	st[0], st[1], st[2], st[3] = s0, s1, s2, s3
	return q + j
}

// scan4x32 and run4x32 are scan4x16 and run4x16 for 32-bit tables.
func (m *Matcher) scan4x32(text []byte, q int, report func(pattern, end int)) (uint32, uint32, uint32) {
	tab, cls, acc := m.t32, &m.class, m.accept
	var st [4]uint32
	for i := 0; i < q; {
		i = run4x32(tab, cls, acc, text, q, i, &st)
		if i > 0 && (st[0] >= acc || st[1] >= acc || st[2] >= acc || st[3] >= acc) {
			m.emit4(st[0], st[1], st[2], st[3], text, q, i, report)
		}
	}
	s3 := st[3]
	for i := 4 * q; i < len(text); i++ {
		s3 = tab[int(s3)+int(cls[text[i]])]
		if s3 >= acc {
			m.emit(s3, text, i+1, -1, report)
		}
	}
	return st[0], st[1], st[2]
}

func run4x32(tab []uint32, cls *[256]uint8, acc uint32, text []byte, q, i int, st *[4]uint32) int {
	_ = text[4*q-1]
	tp := unsafe.Pointer(unsafe.SliceData(tab))
	// Pointers to the last byte of each segment and a negative index
	// counting up to zero: no register for the bound.
	p0 := unsafe.Pointer(&text[q-1])
	p1, p2, p3 := unsafe.Add(p0, q), unsafe.Add(p0, 2*q), unsafe.Add(p0, 3*q)
	s0, s1, s2, s3 := st[0], st[1], st[2], st[3]
	_ = *cls // one nil check here instead of one per step
	j := i - q
	for ; j < 0; j++ {
		s0 = *(*uint32)(unsafe.Add(tp, (int(s0)+int(cls[*(*byte)(unsafe.Add(p0, j+1))]))*4))
		s1 = *(*uint32)(unsafe.Add(tp, (int(s1)+int(cls[*(*byte)(unsafe.Add(p1, j+1))]))*4))
		s2 = *(*uint32)(unsafe.Add(tp, (int(s2)+int(cls[*(*byte)(unsafe.Add(p2, j+1))]))*4))
		s3 = *(*uint32)(unsafe.Add(tp, (int(s3)+int(cls[*(*byte)(unsafe.Add(p3, j+1))]))*4))
		if s0 >= acc || s1 >= acc || s2 >= acc || s3 >= acc {
			j++
			break
		}
	}
	st[0], st[1], st[2], st[3] = s0, s1, s2, s3
	return q + j
}

// emit4 reports the accepting states among the four streams after the
// step that ended at offset end within each segment.
func (m *Matcher) emit4(s0, s1, s2, s3 uint32, text []byte, q, end int, report func(pattern, end int)) {
	if s0 >= m.accept {
		m.emit(s0, text, end, -1, report)
	}
	if s1 >= m.accept {
		m.emit(s1, text, q+end, -1, report)
	}
	if s2 >= m.accept {
		m.emit(s2, text, 2*q+end, -1, report)
	}
	if s3 >= m.accept {
		m.emit(s3, text, 3*q+end, -1, report)
	}
}

// row returns the offset of the row of state s (as stored in the table).
func (m *Matcher) row(s uint32) int {
	if m.t16 != nil {
		return int(s) << 8
	}
	return int(s)
}

// at returns table entry i.
func (m *Matcher) at(i int) uint32 {
	if m.t16 != nil {
		return uint32(m.t16[i])
	}
	return m.t32[i]
}

// stitch continues a stream that ended in state s just before seam, until
// its state no longer reaches back before the seam, reporting only the
// occurrences that start before the seam (the next stream reports the
// others).
func (m *Matcher) stitch(s uint32, text []byte, seam int, report func(pattern, end int)) {
	for p := seam; p < len(text) && int(m.at(m.row(s)+m.nclass)) > p-seam; p++ {
		s = m.at(m.row(s) + int(m.class[text[p]]))
		if s >= m.accept {
			m.emit(s, text, p+1, seam, report)
		}
	}
}

// emit reports the outputs of accepting state s at end. With seam >= 0 only
// occurrences starting before seam are reported. Case-sensitive patterns
// are confirmed against the text, since the automaton matched them folded.
func (m *Matcher) emit(s uint32, text []byte, end, seam int, report func(pattern, end int)) {
	slot := m.at(m.row(s) + m.nclass + 1)
	for _, p := range m.outPat[m.outStart[slot]:m.outStart[slot+1]] {
		l := int(m.patLen[p])
		if seam >= 0 && end-l >= seam {
			continue
		}
		if m.exact[p] {
			off := int(m.patOff[p])
			if string(text[end-l:end]) != string(m.arena[off:off+l]) {
				continue
			}
		}
		report(int(p), end)
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
