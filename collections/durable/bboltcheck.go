package durable

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk meta page, which has been stable since boltdb's format
// version 2: a 16-byte page header, then magic, version, page size, flags,
// root bucket (pgid, sequence), freelist pgid, high-water pgid, txid and an
// FNV-64a checksum of the fields before it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltMetaOff    = 16
	boltPgidOff    = boltMetaOff + 40
	boltTxidOff    = boltMetaOff + 48
	boltSumOff     = boltMetaOff + 56
	boltMinPage    = 1024
	boltMaxPageLog = 14 // bbolt tries page sizes up to 16 MiB
)

// checkBoltFile catches a file that is too short for the database its
// meta pages describe, before bbolt maps it: bbolt would fault on the
// missing pages instead of returning an error. A file bbolt itself will
// reject (no valid meta page) is left to bbolt's error.
func checkBoltFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil // a new file
	}
	var best struct {
		ok             bool
		txid, pgid, ps uint64
	}
	var buf [boltSumOff + 8]byte
	// Meta page 0 is at offset 0; meta page 1 is one page further, and the
	// page size is only known from a valid meta page.
	offsets := []int64{0}
	for i := 0; i <= boltMaxPageLog; i++ {
		offsets = append(offsets, int64(boltMinPage)<<i)
	}
	for _, off := range offsets {
		n, err := f.ReadAt(buf[:], off)
		if n < len(buf) {
			if err == io.EOF || err == nil {
				continue
			}
			return err
		}
		m := buf[boltMetaOff:]
		if binary.LittleEndian.Uint32(m) != boltMagic || binary.LittleEndian.Uint32(m[4:]) != boltVersion {
			continue
		}
		h := fnv.New64a()
		h.Write(buf[boltMetaOff:boltSumOff])
		if h.Sum64() != binary.LittleEndian.Uint64(buf[boltSumOff:]) {
			continue
		}
		ps := uint64(binary.LittleEndian.Uint32(m[8:]))
		if off != 0 && uint64(off) != ps {
			continue // a meta-looking block that is not where meta page 1 lives
		}
		txid := binary.LittleEndian.Uint64(buf[boltTxidOff:])
		if !best.ok || txid > best.txid {
			best.ok, best.txid, best.pgid, best.ps = true, txid, binary.LittleEndian.Uint64(buf[boltPgidOff:]), ps
		}
	}
	if !best.ok {
		return nil
	}
	if need := best.pgid * best.ps; uint64(size) < need {
		return fmt.Errorf("%w: %s is %d bytes, but its newest bbolt meta page (txid %d) describes %d pages of %d bytes (%d bytes): the file was truncated",
			ErrCorrupt, path, size, best.txid, best.pgid, best.ps, need)
	}
	return nil
}
