package collections

import (
	"encoding/binary"
	"fmt"
)

// Array is a growable array whose mutations are recorded for its Store.
type Array[V any] struct {
	name string
	a    []V
	vc   Codec[V]
	log  Log
	rec  []byte
}

// NewArray creates an array named name in s holding n zero values.
func NewArray[V any](s Store, name string, n int, vc Codec[V]) (*Array[V], error) {
	if n < 0 {
		return nil, fmt.Errorf("collections: array %q: negative length %d", name, n)
	}
	a := &Array[V]{name: name, a: make([]V, n), vc: vc}
	log, err := s.Attach(a)
	if err != nil {
		return nil, err
	}
	a.log = log
	return a, nil
}

// Name returns the array's name.
func (a *Array[V]) Name() string { return a.name }

// Len returns the number of elements.
func (a *Array[V]) Len() int { return len(a.a) }

// Get returns element i; it panics if i is out of range, like a slice.
func (a *Array[V]) Get(i int) V { return a.a[i] }

// Set stores v at index i.
func (a *Array[V]) Set(i int, v V) {
	a.a[i] = v
	if a.log != nil {
		a.rec = binary.AppendUvarint(append(a.rec[:0], opArraySet), uint64(i))
		a.rec = a.vc.Append(a.rec, v)
		a.log.Append(a.rec)
	}
}

// Append adds v at the end.
func (a *Array[V]) Append(v V) {
	a.a = append(a.a, v)
	if a.log != nil {
		a.rec = a.vc.Append(append(a.rec[:0], opArrayAppend), v)
		a.log.Append(a.rec)
	}
}

// Truncate shortens the array to n elements.
func (a *Array[V]) Truncate(n int) {
	if n < 0 || n >= len(a.a) {
		return
	}
	clear(a.a[n:])
	a.a = a.a[:n]
	if a.log != nil {
		a.rec = binary.AppendUvarint(append(a.rec[:0], opArrayTruncate), uint64(n))
		a.log.Append(a.rec)
	}
}

// Apply replays one record.
func (a *Array[V]) Apply(rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("collections: array %q: empty record", a.name)
	}
	switch rec[0] {
	case opArraySet:
		i, w := binary.Uvarint(rec[1:])
		if w <= 0 {
			return fmt.Errorf("collections: array %q: bad index", a.name)
		}
		v, err := a.vc.Decode(rec[1+w:])
		if err != nil {
			return fmt.Errorf("collections: array %q value: %w", a.name, err)
		}
		if i >= uint64(len(a.a)) {
			return fmt.Errorf("collections: array %q: set of index %d beyond length %d", a.name, i, len(a.a))
		}
		a.a[i] = v
	case opArrayAppend:
		v, err := a.vc.Decode(rec[1:])
		if err != nil {
			return fmt.Errorf("collections: array %q value: %w", a.name, err)
		}
		a.a = append(a.a, v)
	case opArrayTruncate:
		n, w := binary.Uvarint(rec[1:])
		if w <= 0 {
			return fmt.Errorf("collections: array %q: bad length", a.name)
		}
		if n < uint64(len(a.a)) {
			clear(a.a[n:])
			a.a = a.a[:n]
		}
	default:
		return fmt.Errorf("collections: array %q: record op %d is not an array op", a.name, rec[0])
	}
	return nil
}

// Snapshot emits one append record per element, after a truncate to zero.
func (a *Array[V]) Snapshot(emit func([]byte) error) error {
	rec := binary.AppendUvarint([]byte{opArrayTruncate}, 0)
	if err := emit(rec); err != nil {
		return err
	}
	for _, v := range a.a {
		rec = a.vc.Append(append(rec[:0], opArrayAppend), v)
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// Clear empties the array without logging.
func (a *Array[V]) Clear() { clear(a.a); a.a = a.a[:0] }
