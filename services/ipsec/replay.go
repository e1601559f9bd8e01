package ipsec

// ReplayWindowSize is the anti-replay window in packets: RFC 4303 §3.4.3
// requires at least 32 and recommends 64 (the bitmap is one uint64).
const ReplayWindowSize = 64

// replayWindow is the receiver's sliding window of RFC 4303 §3.4.3 (the
// algorithm of RFC 4303 Appendix A without extended sequence numbers):
// top is the highest sequence number authenticated so far and bit i of
// bits records whether top-i was received. The caller serialises access.
type replayWindow struct {
	top  uint32
	bits uint64
}

// check reports whether seq may be new: not zero (the first packet of an
// SA has sequence number 1), not left of the window and not seen. It does
// not change the window, so a forged packet cannot move it; [replayWindow.accept]
// does that after the ICV has been verified.
func (w *replayWindow) check(seq uint32) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		return true
	}
	d := w.top - seq
	return d < ReplayWindowSize && w.bits&(1<<d) == 0
}

// accept records seq as received. It checks again, because another core may
// have accepted the same sequence number between check and accept.
func (w *replayWindow) accept(seq uint32) bool {
	if !w.check(seq) {
		return false
	}
	if seq > w.top {
		if s := seq - w.top; s < ReplayWindowSize {
			w.bits = w.bits<<s | 1
		} else {
			w.bits = 1
		}
		w.top = seq
		return true
	}
	w.bits |= 1 << (w.top - seq)
	return true
}
