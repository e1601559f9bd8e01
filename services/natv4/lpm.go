package natv4

import (
	"fmt"
	"slices"
)

// Route is one entry of the routing table: a prefix and its next hop.
type Route struct {
	Addr    uint32 // prefix address, host order; bits beyond Len are ignored
	Len     int    // prefix length, 0..32
	NextHop uint16 // index into the next-hop table, 1..MaxNextHop; 0 means none
}

// MaxNextHop is the largest next-hop index a DIR-24-8 entry can hold: 15
// bits, the 16th flags a pointer into TBLlong.
const MaxNextHop = 1<<15 - 1

// maxLongBlocks is how many 256-entry TBLlong blocks 15-bit pointers reach.
const maxLongBlocks = 1 << 15

const longFlag = 1 << 15

// Table is a DIR-24-8-BASIC longest-prefix-match table (Gupta, Kelly and
// McKeown, INFOCOM 1998). TBL24 has one 16-bit entry per /24: either the
// next hop of the longest prefix of length <= 24 covering it, or (top bit
// set) the number of a 256-entry TBLlong block holding one next hop per
// address of that /24, used when some prefix longer than /24 falls inside
// it. A lookup is one memory access, two for addresses under a long
// prefix. TBL24 takes 32 MiB; the table is read-only once built and safe
// for concurrent lookups.
type Table struct {
	tbl24   []uint16
	tblLong []uint16
	routes  int
}

// NewTable builds a table from routes. A prefix listed twice keeps its
// last next hop.
func NewTable(routes []Route) (*Table, error) {
	t := &Table{tbl24: make([]uint16, 1<<24)}
	if err := t.Rebuild(routes); err != nil {
		return nil, err
	}
	return t, nil
}

// Rebuild replaces the table's contents with routes, reusing its memory.
// It must not run concurrently with lookups.
func (t *Table) Rebuild(routes []Route) error {
	for i, r := range routes {
		if r.Len < 0 || r.Len > 32 {
			return fmt.Errorf("natv4: route %d: prefix length %d outside 0..32", i, r.Len)
		}
		if r.NextHop == 0 || r.NextHop > MaxNextHop {
			return fmt.Errorf("natv4: route %d (%s/%d): next hop %d outside 1..%d", i, addrString(r.Addr), r.Len, r.NextHop, MaxNextHop)
		}
	}
	// Insert in order of increasing length, so a longer prefix always
	// overwrites the shorter ones it refines, and a prefix of length <= 24
	// never meets a TBLlong block (those come from longer prefixes, which
	// are inserted later). The sort is stable: duplicates keep the last.
	rs := slices.Clone(routes)
	slices.SortStableFunc(rs, func(a, b Route) int { return a.Len - b.Len })
	clear(t.tbl24)
	t.tblLong = t.tblLong[:0]
	for _, r := range rs {
		addr := r.Addr & mask(r.Len)
		if r.Len <= 24 {
			lo := addr >> 8
			n := uint32(1) << (24 - r.Len)
			fill(t.tbl24[lo:lo+n], r.NextHop)
			continue
		}
		i := addr >> 8
		e := t.tbl24[i]
		var blk uint32
		if e&longFlag == 0 {
			if len(t.tblLong)/256 >= maxLongBlocks {
				return fmt.Errorf("natv4: more than %d /24s hold prefixes longer than /24", maxLongBlocks)
			}
			blk = uint32(len(t.tblLong) / 256)
			t.tblLong = append(t.tblLong, make([]uint16, 256)...)
			fill(t.tblLong[blk*256:blk*256+256], e) // inherit the covering route
			t.tbl24[i] = longFlag | uint16(blk)
		} else {
			blk = uint32(e &^ longFlag)
		}
		lo := blk*256 + addr&0xff
		fill(t.tblLong[lo:lo+uint32(1)<<(32-r.Len)], r.NextHop)
	}
	t.routes = len(routes)
	return nil
}

func fill(s []uint16, v uint16) {
	for i := range s {
		s[i] = v
	}
}

func mask(l int) uint32 {
	if l == 0 {
		return 0
	}
	return ^uint32(0) << (32 - l)
}

// Lookup returns the next hop of the longest prefix covering addr, or 0
// when no route covers it.
func (t *Table) Lookup(addr uint32) uint16 {
	e := t.tbl24[addr>>8]
	if e&longFlag == 0 {
		return e
	}
	return t.tblLong[uint32(e&^longFlag)<<8|addr&0xff]
}

// Routes returns the number of routes the table was built from.
func (t *Table) Routes() int { return t.routes }

// LongBlocks returns the number of TBLlong blocks in use.
func (t *Table) LongBlocks() int { return len(t.tblLong) / 256 }

func addrString(a uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", byte(a>>24), byte(a>>16), byte(a>>8), byte(a))
}
