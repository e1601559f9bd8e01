package durable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// Replicator carries a primary's records to its backup. The runtime
// implements it over its transport; [LocalReplicator] calls a Backup in
// the same process and [ConnReplicator] speaks to [ServeBackup] over a
// stream connection.
//
// The store calls one method at a time, in LSN order. Both must honour
// ctx, and must not keep the batches or snapshot after they return.
type Replicator interface {
	// Install seeds a fresh backup with snap and the batches after it
	// (Backup.Install at the far end).
	Install(ctx context.Context, snap *Snapshot, tail []Batch) error
	// Replicate delivers one batch and returns once the backup has
	// persisted and applied it (Backup.Apply at the far end).
	Replicate(ctx context.Context, b Batch) error
}

// LocalReplicator replicates to a Backup in the same process: for tests,
// and for a backup that the runtime reaches through its own in-process
// queues.
type LocalReplicator struct{ Backup *Backup }

// Install calls Backup.Install.
func (r LocalReplicator) Install(ctx context.Context, snap *Snapshot, tail []Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.Backup.Install(snap, tail)
}

// Replicate calls Backup.Apply.
func (r LocalReplicator) Replicate(ctx context.Context, b Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.Backup.Apply(b)
}

// Frames of the stream protocol between ConnReplicator and ServeBackup:
// u32 little-endian length of what follows, a type byte, the payload.
const (
	frameSnapshot byte = 'S' // payload: an encoded Snapshot; reply ack
	frameBatch    byte = 'B' // payload: an encoded Batch; reply ack
	frameAck      byte = 'A' // payload: u64 LSN the backup is at
	frameError    byte = 'E' // payload: the error text

	// MaxFrame bounds one frame, so that a damaged length cannot make the
	// reader allocate without limit. A snapshot larger than this cannot be
	// sent in one piece.
	MaxFrame = 1 << 30
)

// writeFrame sends one frame.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload)+1 > MaxFrame {
		return fmt.Errorf("durable: frame of %d bytes exceeds the %d-byte limit", len(payload)+1, MaxFrame)
	}
	var hdr [5]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)+1))
	hdr[4] = typ
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readFrame reads one frame into buf (grown as needed).
func readFrame(r io.Reader, buf []byte) (typ byte, payload, newBuf []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n == 0 || n > MaxFrame {
		return 0, nil, buf, fmt.Errorf("%w: frame length %d outside [1, %d]", ErrCorrupt, n, MaxFrame)
	}
	// Grow the buffer as the data arrives, not by the length alone, so that
	// a damaged length costs at most what was actually sent.
	buf = buf[:0]
	for len(buf) < int(n) {
		step := min(int(n)-len(buf), 1<<20)
		buf = slices.Grow(buf, step)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, buf, fmt.Errorf("durable: frame of %d bytes cut short after %d: %w", n, len(buf), err)
		}
	}
	return buf[0], buf[1:], buf, nil
}

// decodeFrame checks a frame the backup received and decodes its payload.
func decodeFrame(typ byte, payload []byte) (*Snapshot, Batch, error) {
	switch typ {
	case frameSnapshot:
		s, err := ParseSnapshot(payload)
		return s, Batch{}, err
	case frameBatch:
		b, err := ParseBatch(payload)
		return nil, b, err
	}
	return nil, Batch{}, fmt.Errorf("%w: frame type 0x%02x is neither snapshot nor batch", ErrCorrupt, typ)
}

// ConnReplicator replicates over a stream connection (TCP, a transport
// channel) to a ServeBackup at the far end. After any error the
// connection's state is unknown, so every later call fails too: the store
// then drops it as a lost backup and a new one is seeded.
type ConnReplicator struct {
	mu     sync.Mutex
	conn   io.ReadWriter
	buf    []byte
	broken error
}

// NewConnReplicator returns a replicator speaking over conn. If conn has
// SetDeadline (a net.Conn), the calls' contexts bound its reads and
// writes.
func NewConnReplicator(conn io.ReadWriter) *ConnReplicator {
	return &ConnReplicator{conn: conn}
}

// Install sends the snapshot, then each tail batch.
func (r *ConnReplicator) Install(ctx context.Context, snap *Snapshot, tail []Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.call(ctx, frameSnapshot, snap.Bytes()); err != nil {
		return err
	}
	for _, b := range tail {
		if err := r.call(ctx, frameBatch, b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// Replicate sends one batch and waits for the backup's acknowledgement.
func (r *ConnReplicator) Replicate(ctx context.Context, b Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.call(ctx, frameBatch, b.Bytes())
}

type deadliner interface{ SetDeadline(time.Time) error }

func (r *ConnReplicator) call(ctx context.Context, typ byte, payload []byte) error {
	if r.broken != nil {
		return r.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := r.conn.(deadliner); ok {
		dl, _ := ctx.Deadline()
		_ = d.SetDeadline(dl) // zero: none
		stop := context.AfterFunc(ctx, func() { _ = d.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	err := writeFrame(r.conn, typ, payload)
	var rt byte
	var rp []byte
	if err == nil {
		rt, rp, r.buf, err = readFrame(r.conn, r.buf)
	}
	if err == nil {
		switch {
		case rt == frameError:
			err = fmt.Errorf("durable: backup: %s", rp)
		case rt != frameAck || len(rp) != 8:
			err = fmt.Errorf("%w: backup replied with a frame of type 0x%02x and %d bytes", ErrCorrupt, rt, len(rp))
		}
	}
	if err != nil {
		cerr := ctx.Err()
		if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			cerr = context.DeadlineExceeded // the conn's deadline fired first
		}
		if cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		r.broken = fmt.Errorf("durable: replication connection unusable after: %w", err)
	}
	return err
}

// ServeBackup answers a ConnReplicator on conn, installing snapshots and
// applying batches to b, until the connection ends (then it returns nil)
// or a frame cannot be read. An error applying a frame is sent back to the
// primary and ends the session.
func ServeBackup(conn io.ReadWriter, b *Backup) error {
	var buf []byte
	for {
		typ, payload, nb, err := readFrame(conn, buf)
		buf = nb
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		snap, batch, err := decodeFrame(typ, payload)
		if err == nil {
			if snap != nil {
				err = b.Install(snap, nil)
			} else {
				err = b.Apply(batch)
			}
		}
		if err != nil {
			_ = writeFrame(conn, frameError, []byte(err.Error()))
			return err
		}
		if err := writeFrame(conn, frameAck, binary.LittleEndian.AppendUint64(nil, b.LSN())); err != nil {
			return err
		}
	}
}
