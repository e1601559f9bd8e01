package recommend

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/e3-platform/e3/collections"
)

// The state lives entirely in reliable collections, so a snapshot of them
// is the whole instance and a replica or a migrated instance rebuilt from
// it answers exactly as the original. Items get dense indices (their order
// of first appearance) so that per-item data sits in arrays.
//
// The co-rating statistics are kept as a sparse symmetric matrix: for each
// item i the list of items j that some user rated together with i, with
// dot[i][j] = sum over users u who rated both of r(u,i)*r(u,j). Each list is
// a chain of fixed-size blocks carved out of one array, so a list can grow
// without being copied and every update is one small array record, cheap
// to log and replicate; a map from (i, j) to the entry's position makes
// the update O(1). With norm2[i] = sum over users u of r(u,i)^2, the
// cosine similarity is dot[i][j] / sqrt(norm2[i]*norm2[j]).
//
// Ratings enter these sums centred on a fixed baseline (the middle of the
// rating scale, 3 stars by default): r(u,i) here is the rating minus the
// baseline. Raw star ratings are all positive, so the plain cosine of two
// items mostly measures how often they are rated together, that is their
// popularity; centred, a low rating counts against similarity and the
// cosine measures agreement in taste. A fixed baseline, unlike each user's
// own mean (Sarwar et al.'s adjusted cosine), keeps every update local: a
// new rating does not shift the user's other centred ratings.

// blockLen is the number of entries per block of a neighbour list: 16
// entries of 16 bytes are four cache lines, long enough that walking a list
// is mostly sequential, short enough that a rare item wastes little.
const blockLen = 16

// noBlock ends a chain of blocks.
const noBlock = math.MaxUint32

// rating is one rating of a user: a dense item index and the value.
type rating struct {
	item uint32
	r    float64
}

// coEntry is one entry of a neighbour list: the other item and the dot
// product of the two items' rating vectors.
type coEntry struct {
	item uint32
	dot  float64
}

// rowMeta locates an item's neighbour list: its first and last blocks and
// its length.
type rowMeta struct {
	head, tail, n uint32
}

// state is the instance's collections.
type state struct {
	baseline float64                            // subtracted from every rating
	items    *collections.Map[uint64, uint32]   // item id -> dense index
	itemIDs  *collections.Array[uint64]         // dense index -> item id
	norm2    *collections.Array[float64]        // dense index -> sum of squared ratings
	rows     *collections.Array[rowMeta]        // dense index -> neighbour list
	co       *collections.Array[coEntry]        // the blocks of all neighbour lists
	next     *collections.Array[uint32]         // block -> next block of its list
	pos      *collections.Map[uint64, uint32]   // (i<<32 | j) -> position of j in i's list
	users    *collections.Map[uint64, []rating] // user id -> the user's ratings
}

func newState(s collections.Store, baseline float64) (*state, error) {
	st := &state{baseline: baseline}
	var err error
	attach := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	attach(func() (e error) { st.items, e = collections.NewMap(s, "items", collections.Uint64, u32Codec{}); return })
	attach(func() (e error) { st.itemIDs, e = collections.NewArray(s, "item_ids", 0, collections.Uint64); return })
	attach(func() (e error) { st.norm2, e = collections.NewArray(s, "norm2", 0, collections.Float64); return })
	attach(func() (e error) { st.rows, e = collections.NewArray(s, "rows", 0, rowCodec{}); return })
	attach(func() (e error) { st.co, e = collections.NewArray(s, "co", 0, coCodec{}); return })
	attach(func() (e error) { st.next, e = collections.NewArray(s, "next_block", 0, u32Codec{}); return })
	attach(func() (e error) { st.pos, e = collections.NewMap(s, "pos", collections.Uint64, u32Codec{}); return })
	attach(func() (e error) {
		st.users, e = collections.NewMap(s, "users", collections.Uint64, ratingsCodec{})
		return
	})
	if err != nil {
		return nil, fmt.Errorf("recommend: %w", err)
	}
	return st, nil
}

func pairKey(i, j uint32) uint64 { return uint64(i)<<32 | uint64(j) }

// index returns the dense index of item, creating it.
func (st *state) index(item uint64) uint32 {
	if i, ok := st.items.Get(item); ok {
		return i
	}
	i := uint32(st.itemIDs.Len())
	st.items.Set(item, i)
	st.itemIDs.Append(item)
	st.norm2.Append(0)
	st.rows.Append(rowMeta{head: noBlock, tail: noBlock})
	return i
}

// observe records that user rated item r and updates the co-rating
// statistics incrementally: with c = r - baseline, a new or changed rating
// (previous centred rating old, or 0 when new) moves dot[i][j] by
// (c-old)*c(u,j) for every other item j the user rated, and norm2[i] by
// c^2-old^2. The user's list keeps the ratings as given. It returns how
// many items the user has rated.
func (st *state) observe(user, item uint64, r float64) int {
	i := st.index(item)
	list, _ := st.users.Get(user)
	k := -1
	for n, x := range list {
		if x.item == i {
			k = n
			break
		}
	}
	old := 0.0
	if k >= 0 {
		if list[k].r == r {
			return len(list)
		}
		old = list[k].r - st.baseline
	}
	c := r - st.baseline
	delta := c - old
	st.norm2.Set(int(i), st.norm2.Get(int(i))+c*c-old*old)
	for _, x := range list {
		if x.item != i {
			d := delta * (x.r - st.baseline)
			st.addDot(i, x.item, d)
			st.addDot(x.item, i, d)
		}
	}
	if k >= 0 {
		list[k].r = r
	} else {
		list = append(list, rating{i, r})
	}
	st.users.Set(user, list)
	return len(list)
}

// addDot adds d to dot[i][j], appending j to i's list if it is not there.
func (st *state) addDot(i, j uint32, d float64) {
	key := pairKey(i, j)
	if p, ok := st.pos.Get(key); ok {
		e := st.co.Get(int(p))
		e.dot += d
		st.co.Set(int(p), e)
		return
	}
	st.appendNeighbour(i, j, d)
}

// appendNeighbour appends j with dot product d to i's neighbour list.
func (st *state) appendNeighbour(i, j uint32, d float64) {
	m := st.rows.Get(int(i))
	if m.n%blockLen == 0 { // the last block is full, or there is none
		b := uint32(st.next.Len())
		st.next.Append(noBlock)
		for range blockLen {
			st.co.Append(coEntry{})
		}
		if m.n == 0 {
			m.head = b
		} else {
			st.next.Set(int(m.tail), b)
		}
		m.tail = b
	}
	p := m.tail*blockLen + m.n%blockLen
	st.co.Set(int(p), coEntry{j, d})
	m.n++
	st.rows.Set(int(i), m)
	st.pos.Set(pairKey(i, j), p)
}

// load fills an empty state with many ratings at once: lists[u] holds
// user u's ratings by dense item index (items given in itemIDs order, each
// rated at least once and at most once per user). It builds the same
// statistics observe would, row by row with an inverted index (for item
// i, the users who rated it, then those users' other items), which touches
// each co-rating once instead of looking up its position for every
// rating; seeding at New is five to ten times faster this way.
func (st *state) load(users []uint64, lists [][]rating, itemIDs []uint64) {
	n := len(itemIDs)
	for _, id := range itemIDs {
		st.index(id)
	}
	type rater struct {
		user int32
		c    float64
	}
	byItem := make([][]rater, n)
	norm2 := make([]float64, n)
	for u, list := range lists {
		for _, x := range list {
			c := x.r - st.baseline
			byItem[x.item] = append(byItem[x.item], rater{int32(u), c})
			norm2[x.item] += c * c
		}
		st.users.Set(users[u], list)
	}
	acc := make([]float64, n)
	mark := make([]uint32, n)
	var touched []uint32
	for i := range n {
		st.norm2.Set(i, norm2[i])
		touched = touched[:0]
		for _, e := range byItem[i] {
			for _, y := range lists[e.user] {
				j := y.item
				if int(j) == i {
					continue
				}
				if mark[j] != uint32(i)+1 {
					mark[j] = uint32(i) + 1
					acc[j] = 0
					touched = append(touched, j)
				}
				acc[j] += e.c * (y.r - st.baseline)
			}
		}
		for _, j := range touched {
			st.appendNeighbour(uint32(i), j, acc[j])
		}
	}
}

// Codecs of the collections' element types: fixed-width little endian.

type u32Codec struct{}

func (u32Codec) Append(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func (u32Codec) Decode(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("recommend: uint32 of %d bytes", len(b))
	}
	return binary.LittleEndian.Uint32(b), nil
}

type rowCodec struct{}

func (rowCodec) Append(dst []byte, v rowMeta) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, v.head)
	dst = binary.LittleEndian.AppendUint32(dst, v.tail)
	return binary.LittleEndian.AppendUint32(dst, v.n)
}
func (rowCodec) Decode(b []byte) (rowMeta, error) {
	if len(b) != 12 {
		return rowMeta{}, fmt.Errorf("recommend: row of %d bytes, want 12", len(b))
	}
	return rowMeta{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])}, nil
}

type coCodec struct{}

func (coCodec) Append(dst []byte, v coEntry) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, v.item)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.dot))
}
func (coCodec) Decode(b []byte) (coEntry, error) {
	if len(b) != 12 {
		return coEntry{}, fmt.Errorf("recommend: co-rating entry of %d bytes, want 12", len(b))
	}
	return coEntry{binary.LittleEndian.Uint32(b), math.Float64frombits(binary.LittleEndian.Uint64(b[4:]))}, nil
}

type ratingsCodec struct{}

func (ratingsCodec) Append(dst []byte, v []rating) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, x.item)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x.r))
	}
	return dst
}
func (ratingsCodec) Decode(b []byte) ([]rating, error) {
	if len(b)%12 != 0 {
		return nil, fmt.Errorf("recommend: rating list of %d bytes, not a multiple of 12", len(b))
	}
	out := make([]rating, len(b)/12)
	for n := range out {
		out[n] = rating{binary.LittleEndian.Uint32(b[12*n:]), math.Float64frombits(binary.LittleEndian.Uint64(b[12*n+4:]))}
	}
	return out, nil
}
