package service

import (
	"fmt"
	"sort"
)

// Registry maps microservice names to descriptors. It is filled at start-up
// and read-only afterwards, so lookups need no lock.
type Registry struct {
	byName map[string]*Descriptor
	names  []string
}

// NewRegistry returns a registry holding ds. It fails on a duplicate or
// empty name.
func NewRegistry(ds ...Descriptor) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Descriptor, len(ds))}
	for i := range ds {
		d := ds[i]
		if d.Name == "" {
			return nil, fmt.Errorf("service: descriptor %d has no name", i)
		}
		if _, dup := r.byName[d.Name]; dup {
			return nil, fmt.Errorf("service: %q registered twice", d.Name)
		}
		if d.Family != FamilyPacket && d.Family != FamilyEvent {
			return nil, fmt.Errorf("service: %q has no message family", d.Name)
		}
		r.byName[d.Name] = &d
		r.names = append(r.names, d.Name)
	}
	sort.Strings(r.names)
	return r, nil
}

// Lookup returns the descriptor registered under name.
func (r *Registry) Lookup(name string) (*Descriptor, bool) {
	d, ok := r.byName[name]
	return d, ok
}

// Names returns the registered names in sorted order.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Len returns the number of registered services.
func (r *Registry) Len() int { return len(r.names) }
