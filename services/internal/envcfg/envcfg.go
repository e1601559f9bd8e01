package envcfg

import (
	"fmt"

	"github.com/e3-platform/e3/service"
)

// Reader reads bounded settings from one Env, remembering the first
// error. It is not safe for concurrent use; one constructor uses it.
type Reader struct {
	env service.Env
	err error
}

// NewReader returns a Reader of env's config.
func NewReader(env service.Env) *Reader { return &Reader{env: env} }

// Int returns key as an int in [lo, hi], or def when the key is absent.
// After an error, from this read or an earlier one, it returns 0.
func (r *Reader) Int(key string, def, lo, hi int) int {
	if r.err != nil {
		return 0
	}
	var v int
	v, r.err = r.env.Int(key, def)
	if r.err == nil && (v < lo || v > hi) {
		r.err = fmt.Errorf("config %q: %d is outside [%d, %d]", key, v, lo, hi)
	}
	return v
}

// Float returns key as a float64 in [lo, hi], or def when the key is
// absent; NaN is outside every range. After an error, from this read or
// an earlier one, it returns 0.
func (r *Reader) Float(key string, def, lo, hi float64) float64 {
	if r.err != nil {
		return 0
	}
	var v float64
	v, r.err = r.env.Float(key, def)
	if r.err == nil && !(v >= lo && v <= hi) {
		r.err = fmt.Errorf("config %q: %v is outside [%v, %v]", key, v, lo, hi)
	}
	return v
}

// Err returns the first error of the reads so far, or nil.
func (r *Reader) Err() error { return r.err }
