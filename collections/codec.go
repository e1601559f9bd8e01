package collections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Codec encodes values of T for records and snapshots.
type Codec[T any] interface {
	// Append appends the encoding of v to dst.
	Append(dst []byte, v T) []byte
	// Decode decodes one value that fills b exactly.
	Decode(b []byte) (T, error)
}

var errLen = errors.New("collections: wrong encoded length")

type u64Codec struct{}

func (u64Codec) Append(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }
func (u64Codec) Decode(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: uint64 of %d bytes", errLen, len(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

type i64Codec struct{}

func (i64Codec) Append(dst []byte, v int64) []byte {
	return binary.LittleEndian.AppendUint64(dst, uint64(v))
}
func (i64Codec) Decode(b []byte) (int64, error) {
	v, err := u64Codec{}.Decode(b)
	return int64(v), err
}

type f64Codec struct{}

func (f64Codec) Append(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}
func (f64Codec) Decode(b []byte) (float64, error) {
	v, err := u64Codec{}.Decode(b)
	return math.Float64frombits(v), err
}

type strCodec struct{}

func (strCodec) Append(dst []byte, v string) []byte { return append(dst, v...) }
func (strCodec) Decode(b []byte) (string, error)    { return string(b), nil }

type bytesCodec struct{}

func (bytesCodec) Append(dst []byte, v []byte) []byte { return append(dst, v...) }
func (bytesCodec) Decode(b []byte) ([]byte, error)    { return append([]byte(nil), b...), nil }

type f64sCodec struct{}

func (f64sCodec) Append(dst []byte, v []float64) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	return dst
}
func (f64sCodec) Decode(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%w: []float64 of %d bytes", errLen, len(b))
	}
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out, nil
}

// Codecs for common key and value types.
var (
	Uint64   Codec[uint64]    = u64Codec{}
	Int64    Codec[int64]     = i64Codec{}
	Float64  Codec[float64]   = f64Codec{}
	String   Codec[string]    = strCodec{}
	Bytes    Codec[[]byte]    = bytesCodec{}
	Float64s Codec[[]float64] = f64sCodec{}
)
