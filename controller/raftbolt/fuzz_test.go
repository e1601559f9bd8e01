package raftbolt

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// FuzzDecodeLog feeds arbitrary records to the decoder: it must never
// panic, and whatever it accepts must encode back to the same bytes.
func FuzzDecodeLog(f *testing.F) {
	f.Add(AppendLog(nil, &raft.Log{Type: raft.LogCommand, Term: 3, Data: []byte("x")}))
	f.Add(AppendLog(nil, &raft.Log{Type: raft.LogConfiguration, Term: 1 << 40, Data: bytes.Repeat([]byte{1}, 300), Extensions: []byte("e"), AppendedAt: time.Unix(5, 6)}))
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := DecodeLog(7, b, &l); err != nil {
			return
		}
		if l.Index != 7 {
			t.Fatalf("index %d, want 7", l.Index)
		}
		again := AppendLog(nil, &l)
		// Varints have one canonical form that Uvarint accepts; anything
		// decoded must re-encode byte for byte.
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, again)
		}
	})
}
