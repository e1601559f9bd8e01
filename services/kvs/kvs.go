package kvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
)

// Config keys and defaults.
const (
	ConfigMaxValue = "max_value" // largest value in bytes
	ConfigCapacity = "capacity"  // most items held
	// DefaultMaxValue is the 1 KB value limit of the E3 KVS.
	DefaultMaxValue = 1024
	// DefaultCapacity bounds an instance at about 0.5 GB of 1 KB values,
	// half the 1 GB its descriptor reserves, leaving room for the table
	// and the Go heap's slack.
	DefaultCapacity = 500_000
	// MaxKeyLen is memcached's key length limit.
	MaxKeyLen = 250
	// MaxValueLimit is the largest max_value accepted: an event's text
	// length is a u16.
	MaxValueLimit = 65535
	// maxProbe bounds how far an item may sit from its home slot. With a
	// 64-bit hash two keys share a home slot about once in 2^64/n² draws,
	// so the bound only matters against keys crafted to collide: it caps
	// the work such keys can cause per request.
	maxProbe = 64
)

// Status is the first byte of every reply.
type Status uint8

const (
	StatusOK          Status = iota // GET hit, SET stored, DELETE deleted
	StatusNotFound                  // GET miss, DELETE of a missing key
	StatusOutOfMemory               // SET of a new key refused: the store is full
	StatusNoSlot                    // SET of a new key refused: its probe window is full
)

// ReplyHeaderLen is the fixed part of every reply: status, then flags.
const ReplyHeaderLen = 5

// Item is a stored key and value. Key and value share one allocation,
// as items do in memcached and MemC3, and a SET of an existing key
// reuses it when the new value fits.
type Item struct {
	Data   []byte // key, then value
	KeyLen uint8
	Flags  uint32 // opaque client flags (memcached's flags)
	Exp    int64  // expiry deadline in ns of the service clock; 0: never
}

// Key returns the item's key.
func (it *Item) Key() []byte { return it.Data[:it.KeyLen] }

// Value returns the item's value.
func (it *Item) Value() []byte { return it.Data[it.KeyLen:] }

// ItemCodec encodes an Item as flags u32, exp i64 (little endian), key
// length u8, then key and value.
var ItemCodec collections.Codec[Item] = itemCodec{}

type itemCodec struct{}

// Append appends the encoding of it.
func (itemCodec) Append(dst []byte, it Item) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, it.Flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(it.Exp))
	dst = append(dst, it.KeyLen)
	return append(dst, it.Data...)
}

// Decode decodes an Item, copying its data out of b.
func (itemCodec) Decode(b []byte) (Item, error) {
	if len(b) < 13 {
		return Item{}, fmt.Errorf("kvs: item of %d bytes, shorter than its 13-byte header", len(b))
	}
	it := Item{
		Flags:  binary.LittleEndian.Uint32(b),
		Exp:    int64(binary.LittleEndian.Uint64(b[4:])),
		KeyLen: b[12],
	}
	if int(it.KeyLen) > len(b)-13 {
		return Item{}, fmt.Errorf("kvs: item key of %d bytes in %d bytes of data", it.KeyLen, len(b)-13)
	}
	it.Data = append([]byte(nil), b[13:]...)
	return it, nil
}

// KeyHash is the hash of a key: the routing key of kvs requests and the
// home slot of the key in the table. It is xxhash64, equal on every node.
func KeyHash(key []byte) uint64 { return xxhash.Sum64(key) }

// Store is one kvs instance. It is safe for concurrent use.
type Store struct {
	maxValue int
	capacity int
	hash     func([]byte) uint64 // KeyHash; tests substitute a weak one

	mu    sync.Mutex
	table *collections.Map[uint64, Item] // slot -> item
}

// New builds a kvs instance; see the package comment for config keys.
func New(env service.Env) (service.Handler, error) {
	return newStore(env, KeyHash)
}

func newStore(env service.Env, hash func([]byte) uint64) (*Store, error) {
	mv, err := env.Int(ConfigMaxValue, DefaultMaxValue)
	if err != nil {
		return nil, fmt.Errorf("kvs: %w", err)
	}
	if mv < 0 || mv > MaxValueLimit {
		return nil, fmt.Errorf("kvs: config %q: %d is outside [0, %d]", ConfigMaxValue, mv, MaxValueLimit)
	}
	capacity, err := env.Int(ConfigCapacity, DefaultCapacity)
	if err != nil {
		return nil, fmt.Errorf("kvs: %w", err)
	}
	if capacity < 1 {
		return nil, fmt.Errorf("kvs: config %q: %d items; need at least 1", ConfigCapacity, capacity)
	}
	if env.Store == nil {
		return nil, fmt.Errorf("kvs: env has no store")
	}
	m, err := collections.NewMap(env.Store, "kvs.items", collections.Uint64, ItemCodec)
	if err != nil {
		return nil, fmt.Errorf("kvs: %w", err)
	}
	return &Store{maxValue: mv, capacity: capacity, hash: hash, table: m}, nil
}

// find looks key up. It returns the slot holding it, or the first free
// slot of its probe window (free is false when the window is full).
// Called with s.mu held.
func (s *Store) find(key []byte, h uint64) (slot uint64, it Item, found, free bool) {
	for i := uint64(0); i < maxProbe; i++ {
		it, ok := s.table.Get(h + i)
		if !ok {
			return h + i, Item{}, false, true
		}
		if bytes.Equal(it.Key(), key) {
			return h + i, it, true, false
		}
	}
	return 0, Item{}, false, false
}

// remove deletes the item in slot and closes the gap by moving later
// items of the run back (backward-shift deletion), so that every item
// stays reachable from its home slot without tombstones. Called with s.mu
// held.
func (s *Store) remove(slot uint64) {
	hole := slot
	for j := slot + 1; ; j++ {
		it, ok := s.table.Get(j)
		if !ok {
			break
		}
		home := s.hash(it.Key())
		// The item at j may fill the hole if the hole lies between its
		// home and j (distances wrap around the 64-bit slot space).
		if j-home >= j-hole {
			s.table.Set(hole, it)
			hole = j
		}
	}
	s.table.Delete(hole)
}

func expired(it *Item, now int64) bool { return it.Exp != 0 && now >= it.Exp }

// Handle executes one GET, SET or DELETE; see the package comment for the
// encoding.
func (s *Store) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("kvs: %w", err)
	}
	key := ev.Token
	var obs [24]byte
	if ev.Op == service.OpObserve {
		// A stream event (an IoT data hub's sensor reading) is kept as the
		// latest record of its stream: key = the stream key, value = item,
		// reading and time. Stream events carry credentials or other data
		// in Token, so Token is not the key here.
		var kb [8]byte
		binary.LittleEndian.PutUint64(kb[:], ev.Key)
		key = kb[:]
		binary.LittleEndian.PutUint64(obs[0:], ev.Item)
		binary.LittleEndian.PutUint64(obs[8:], math.Float64bits(ev.Value))
		binary.LittleEndian.PutUint64(obs[16:], uint64(ev.Time))
	}
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("kvs: %w: key of %d bytes; want 1 to %d", service.ErrMalformed, len(key), MaxKeyLen)
	}
	var hdr [ReplyHeaderLen]byte
	h := s.hash(key)
	switch ev.Op {
	case service.OpGet:
		s.mu.Lock()
		slot, it, found, _ := s.find(key, h)
		if found && expired(&it, c.Now) {
			s.remove(slot)
			found = false
		}
		if !found {
			s.mu.Unlock()
			hdr[0] = byte(StatusNotFound)
			c.Respond(hdr[:])
			break
		}
		binary.LittleEndian.PutUint32(hdr[1:], it.Flags)
		// Build the reply under the lock: a later SET may reuse the
		// item's memory.
		c.Scratch = append(append(c.Scratch[:0], hdr[:]...), it.Value()...)
		s.mu.Unlock()
		c.Respond(c.Scratch)
	case service.OpSet:
		if len(ev.Text) > s.maxValue {
			return fmt.Errorf("kvs: %w: value of %d bytes exceeds the %d-byte limit", service.ErrMalformed, len(ev.Text), s.maxValue)
		}
		if ev.Item > 0xffffffff {
			return fmt.Errorf("kvs: %w: flags %d do not fit 32 bits", service.ErrMalformed, ev.Item)
		}
		hdr[0] = byte(s.set(key, h, ev.Text, uint32(ev.Item), ev.Time, c.Now))
		c.Respond(hdr[:])
	case service.OpObserve:
		hdr[0] = byte(s.set(key, h, obs[:], 0, 0, c.Now))
		c.Respond(hdr[:])
	case service.OpDelete:
		s.mu.Lock()
		slot, it, found, _ := s.find(key, h)
		if found {
			s.remove(slot)
			found = !expired(&it, c.Now)
		}
		s.mu.Unlock()
		if !found {
			hdr[0] = byte(StatusNotFound)
		}
		c.Respond(hdr[:])
	default:
		return fmt.Errorf("kvs: %w: op %d not supported; want observe (%d), get (%d), set (%d) or delete (%d)",
			service.ErrMalformed, ev.Op, service.OpObserve, service.OpGet, service.OpSet, service.OpDelete)
	}
	c.Emit(c.Key, req)
	return nil
}

// set stores value under key. A negative deadline (memcached's negative
// exptime) or one already passed stores nothing and removes the key.
func (s *Store) set(key []byte, h uint64, value []byte, flags uint32, exp, now int64) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, it, found, free := s.find(key, h)
	if exp < 0 || exp != 0 && now >= exp {
		if found {
			s.remove(slot)
		}
		return StatusOK
	}
	n := len(key) + len(value)
	if found {
		if cap(it.Data) >= n {
			it.Data = append(it.Data[:len(key)], value...)
		} else {
			it.Data = append(append(make([]byte, 0, n), key...), value...)
		}
	} else {
		switch {
		case !free:
			return StatusNoSlot
		case s.table.Len() >= s.capacity:
			return StatusOutOfMemory
		}
		it = Item{Data: append(append(make([]byte, 0, n), key...), value...), KeyLen: uint8(len(key))}
	}
	it.Flags, it.Exp = flags, exp
	s.table.Set(slot, it)
	return StatusOK
}

// Len returns the number of items held, expired ones not yet noticed
// included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.Len()
}
