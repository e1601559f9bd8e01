package raftbolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketLogs   = []byte("logs")
	bucketStable = []byte("stable")
)

// Options configure [Open]. The zero value is what a controller wants.
type Options struct {
	// Timeout bounds the wait for the file lock that another process may
	// hold (another controller started on the same data directory).
	// Default 1 s: failing fast with a clear error beats hanging.
	Timeout time.Duration
	// NoSync skips fsync after each transaction. Only for tests and
	// benchmarks: a crash may then lose entries raft believes durable.
	NoSync bool
}

// Store is a raft.LogStore and raft.StableStore on one bbolt file. It is
// safe for concurrent use (bbolt serialises writers and lets readers run
// alongside).
type Store struct {
	db   *bolt.DB
	path string
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens or creates the store at path.
func Open(path string, opt Options) (*Store, error) {
	if opt.Timeout == 0 {
		opt.Timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoSync: opt.NoSync})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("raftbolt: %s is locked by another process (another controller on the same --data directory?)", path)
		}
		return nil, fmt.Errorf("raftbolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketLogs); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketStable)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("raftbolt: init %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Close closes the file. The store must not be used afterwards.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Size returns the file's size in bytes.
func (s *Store) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func key(i uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], i)
	return k[:]
}

func index(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// FirstIndex returns the lowest index stored, 0 when the log is empty.
func (s *Store) FirstIndex() (uint64, error) {
	var i uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLogs).Cursor().First(); k != nil {
			i = index(k)
		}
		return nil
	})
	return i, err
}

// LastIndex returns the highest index stored, 0 when the log is empty.
func (s *Store) LastIndex() (uint64, error) {
	var i uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLogs).Cursor().Last(); k != nil {
			i = index(k)
		}
		return nil
	})
	return i, err
}

// GetLog reads entry idx into log; raft.ErrLogNotFound if there is none.
func (s *Store) GetLog(idx uint64, log *raft.Log) error {
	return s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get(key(idx))
		if v == nil {
			return raft.ErrLogNotFound
		}
		return DecodeLog(idx, v, log)
	})
}

// StoreLog stores one entry.
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs stores entries in one transaction: all of them or, on error,
// none.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		// One buffer for every value: bbolt keeps the slices it is given
		// until the transaction commits, so values must not share memory.
		size := 0
		for _, l := range logs {
			size += 24 + len(l.Data) + len(l.Extensions)
		}
		buf := make([]byte, 0, size)
		for _, l := range logs {
			start := len(buf)
			buf = AppendLog(buf, l)
			if err := b.Put(key(l.Index), buf[start:len(buf):len(buf)]); err != nil {
				return fmt.Errorf("raftbolt: store entry %d: %w", l.Index, err)
			}
		}
		return nil
	})
}

// DeleteRange deletes the entries min..max, both included. Raft calls it
// to compact the log after a snapshot (a prefix) and to drop a conflicting
// suffix on a follower.
func (s *Store) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		// Seek afresh after each delete: a bbolt cursor is not guaranteed
		// to stay on the following key once the current one is deleted.
		for k, _ := c.Seek(key(min)); k != nil && index(k) <= max; k, _ = c.Seek(key(min)) {
			if err := c.Delete(); err != nil {
				return fmt.Errorf("raftbolt: delete entry %d: %w", index(k), err)
			}
		}
		return nil
	})
}

// Set stores val under key in the stable bucket.
func (s *Store) Set(k, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStable).Put(k, val)
	})
}

// Get returns the value of key, or an empty value if it was never set (as
// raft.StableStore asks).
func (s *Store) Get(k []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStable).Get(k); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out, err
}

// SetUint64 stores val under key.
func (s *Store) SetUint64(k []byte, val uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.Set(k, b[:])
}

// GetUint64 returns the value of key, or 0 if it was never set.
func (s *Store) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftbolt: stable key %q holds %d bytes, want 8 for a uint64", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
