package topk

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/e3-platform/e3/collections"
)

// The state lives entirely in reliable collections, so a snapshot of them
// is the whole instance:
//
//	window  Array[item id]            the last W observed items, a ring
//	count   Array[uint64] (1 element) items observed so far; the next goes
//	                                  to window[count mod W]
//	latest  Map[item id]{seq, slot}   per item in the window: the sequence
//	                                  number of its last occurrence and its
//	                                  place in ranked
//	ranked  Array[{item, score}]      the distinct items of the window with
//	                                  their latest scores, densely packed
//
// An item leaves the window when the occurrence being overwritten is its
// last one (latest.seq = the overwritten sequence number); it is then
// removed from ranked by moving the last element into its place. Every
// observation costs O(1) collection operations, and a query copies ranked,
// one contiguous array, instead of walking a hash map.

// slotInfo is what latest holds per item.
type slotInfo struct {
	seq  uint64 // sequence number of the item's last occurrence
	slot uint32 // index in ranked
}

type state struct {
	w      int
	window *collections.Array[uint64]
	count  *collections.Array[uint64]
	latest *collections.Map[uint64, slotInfo]
	ranked *collections.Array[Scored]
}

func newState(s collections.Store, w int) (*state, error) {
	st := &state{w: w}
	var err error
	attach := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	attach(func() (e error) { st.window, e = collections.NewArray(s, "window", 0, collections.Uint64); return })
	attach(func() (e error) { st.count, e = collections.NewArray(s, "count", 0, collections.Uint64); return })
	attach(func() (e error) {
		st.latest, e = collections.NewMap(s, "latest", collections.Uint64, slotCodec{})
		return
	})
	attach(func() (e error) { st.ranked, e = collections.NewArray(s, "ranked", 0, scoredCodec{}); return })
	if err != nil {
		return nil, fmt.Errorf("topk: %w", err)
	}
	return st, nil
}

// observed returns how many items have been observed.
func (st *state) observed() uint64 {
	if st.count.Len() == 0 {
		return 0
	}
	return st.count.Get(0)
}

// observe adds item with score to the window, evicting the oldest
// observation once the window is full.
func (st *state) observe(item uint64, score float64) {
	seq, w := st.observed(), uint64(st.w)
	p := int(seq % w)
	if seq >= w {
		old := st.window.Get(p)
		if e, ok := st.latest.Get(old); ok && e.seq == seq-w {
			st.remove(old, e)
		}
		st.window.Set(p, item)
	} else {
		st.window.Append(item)
	}
	if e, ok := st.latest.Get(item); ok {
		st.ranked.Set(int(e.slot), Scored{item, score})
		st.latest.Set(item, slotInfo{seq, e.slot})
	} else {
		slot := uint32(st.ranked.Len())
		st.ranked.Append(Scored{item, score})
		st.latest.Set(item, slotInfo{seq, slot})
	}
	if st.count.Len() == 0 {
		st.count.Append(seq + 1)
	} else {
		st.count.Set(0, seq+1)
	}
}

// remove drops item, whose entry is e, from ranked and latest.
func (st *state) remove(item uint64, e slotInfo) {
	last := st.ranked.Len() - 1
	if int(e.slot) != last {
		moved := st.ranked.Get(last)
		st.ranked.Set(int(e.slot), moved)
		me, _ := st.latest.Get(moved.Item)
		me.slot = e.slot
		st.latest.Set(moved.Item, me)
	}
	st.ranked.Truncate(last)
	st.latest.Delete(item)
}

type slotCodec struct{}

func (slotCodec) Append(dst []byte, v slotInfo) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, v.seq)
	return binary.LittleEndian.AppendUint32(dst, v.slot)
}
func (slotCodec) Decode(b []byte) (slotInfo, error) {
	if len(b) != 12 {
		return slotInfo{}, fmt.Errorf("topk: slot record of %d bytes, want 12", len(b))
	}
	return slotInfo{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:])}, nil
}

type scoredCodec struct{}

func (scoredCodec) Append(dst []byte, v Scored) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, v.Item)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Score))
}
func (scoredCodec) Decode(b []byte) (Scored, error) {
	if len(b) != 16 {
		return Scored{}, fmt.Errorf("topk: scored item of %d bytes, want 16", len(b))
	}
	return Scored{binary.LittleEndian.Uint64(b), math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))}, nil
}
