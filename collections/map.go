package collections

import "fmt"

// Map is a hash map whose mutations are recorded for its Store.
type Map[K comparable, V any] struct {
	name string
	m    map[K]V
	kc   Codec[K]
	vc   Codec[V]
	log  Log
	kb   []byte // scratch for encoding records without allocating
	rec  []byte
}

// NewMap creates an empty map named name in s.
func NewMap[K comparable, V any](s Store, name string, kc Codec[K], vc Codec[V]) (*Map[K, V], error) {
	m := &Map[K, V]{name: name, m: make(map[K]V), kc: kc, vc: vc}
	log, err := s.Attach(m)
	if err != nil {
		return nil, err
	}
	m.log = log
	return m, nil
}

// Name returns the map's name.
func (m *Map[K, V]) Name() string { return m.name }

// Get returns the value under k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	v, ok := m.m[k]
	return v, ok
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int { return len(m.m) }

// Set stores v under k.
func (m *Map[K, V]) Set(k K, v V) {
	m.m[k] = v
	if m.log != nil {
		m.kb = m.kc.Append(m.kb[:0], k)
		m.rec = m.vc.Append(appendKV(m.rec[:0], opMapSet, m.kb, nil), v)
		m.log.Append(m.rec)
	}
}

// Delete removes k; deleting a missing key records nothing.
func (m *Map[K, V]) Delete(k K) {
	if _, ok := m.m[k]; !ok {
		return
	}
	delete(m.m, k)
	if m.log != nil {
		m.kb = m.kc.Append(m.kb[:0], k)
		m.rec = appendKV(m.rec[:0], opMapDelete, m.kb, nil)
		m.log.Append(m.rec)
	}
}

// Range calls f for each entry until f returns false. The order is
// unspecified.
func (m *Map[K, V]) Range(f func(K, V) bool) {
	for k, v := range m.m {
		if !f(k, v) {
			return
		}
	}
}

// Apply replays one record.
func (m *Map[K, V]) Apply(rec []byte) error {
	op, kb, vb, err := splitKV(rec)
	if err != nil {
		return err
	}
	k, err := m.kc.Decode(kb)
	if err != nil {
		return fmt.Errorf("collections: map %q key: %w", m.name, err)
	}
	switch op {
	case opMapSet:
		v, err := m.vc.Decode(vb)
		if err != nil {
			return fmt.Errorf("collections: map %q value: %w", m.name, err)
		}
		m.m[k] = v
	case opMapDelete:
		delete(m.m, k)
	default:
		return fmt.Errorf("collections: map %q: record op %d is not a map op", m.name, op)
	}
	return nil
}

// Snapshot emits one set record per entry.
func (m *Map[K, V]) Snapshot(emit func([]byte) error) error {
	var kb, rec []byte
	for k, v := range m.m {
		kb = m.kc.Append(kb[:0], k)
		rec = m.vc.Append(appendKV(rec[:0], opMapSet, kb, nil), v)
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// Clear empties the map without logging.
func (m *Map[K, V]) Clear() { clear(m.m) }
