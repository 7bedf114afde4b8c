// SPSC rings (spec/wire-format.md §4) and frame headers (§5): the producer and consumer algorithms,
// with every index and header read from shared memory validated by one routine, checkRecord.

package ring

import (
	"sync/atomic"
)

// spsc is one SPSC ring inside a mapped segment. A producer keeps its tail privately and never reads
// the shared one back; a consumer does the same with head.
type spsc struct {
	seg      *segment
	base     uint64 // offset of the ring header in the segment
	data     uint64 // offset of the data area: base + ringHeaderSize
	capacity uint64
	mask     uint64
	allowed  [2]uint16 // frame kinds allowed besides padding (0 = none)
	tail     uint64    // producer: private tail
	head     uint64    // consumer: private head
}

// openRing is §4.1: the ring at base must hold the expected capacity and fit the segment.
func openRing(s *segment, base, capacity uint64, allowed ...uint16) (*spsc, error) {
	if base+ringHeaderSize > s.size() || base%64 != 0 {
		return nil, corrupt("a ring of %s at %d lies outside its %d bytes", s.name, base, s.size())
	}
	c := s.load64(base + ringCapacity)
	if c != capacity || !validCapacity(c) || base+ringHeaderSize+c > s.size() {
		return nil, corrupt("a ring of %s at %d has capacity %d, expected %d within %d bytes", s.name, base, c,
			capacity, s.size())
	}
	r := &spsc{seg: s, base: base, data: base + ringHeaderSize, capacity: c, mask: c - 1}
	copy(r.allowed[:], allowed)
	// Only the producer writes tail and only the consumer writes head: whichever side we are, the value
	// loaded here is where that side left off.
	r.tail = s.load64(base + ringTail)
	r.head = s.load64(base + ringHead)
	return r, nil
}

func (r *spsc) maxPayload() uint64 { return maxPayload(r.capacity) }

// errFull says the ring has no space now (nothing written).
var errFull = &Error{Code: CodeWouldBlock, Message: "the ring is full"}

// write is the producer algorithm of §4.2 (steps 1 to 8; the caller rings). parts are the payload,
// concatenated.
func (r *spsc) write(kind uint16, seq uint64, parts ...[]byte) error {
	var n uint64
	for _, p := range parts {
		n += uint64(len(p))
	}
	if n > r.maxPayload() {
		return newError(CodeTooLarge, "payload of %d bytes is larger than the ring's maximum of %d", n, r.maxPayload())
	}
	tail := r.tail
	// SYNC: observe head (pairs with the consumer's Release store: it is done with those bytes).
	head := r.seg.load64(r.base + ringHead)
	if tail-head > r.capacity || tail%frameAlign != 0 {
		return corrupt("ring of %s: head %d and tail %d are inconsistent", r.seg.name, head, tail)
	}
	size := recordSize(n)
	toEnd := r.capacity - tail&r.mask
	var pad uint64
	if toEnd < size {
		pad = toEnd
	}
	if r.capacity-(tail-head) < pad+size {
		return errFull
	}
	if pad > 0 {
		writeHeader(r.seg, r.data+tail&r.mask, uint32(pad-frameHeaderSize), frameKindPadding, 0)
	}
	off := r.data + (tail+pad)&r.mask
	writeHeader(r.seg, off, uint32(n), kind, seq)
	at := off + frameHeaderSize
	for _, p := range parts {
		at += uint64(copy(r.seg.mem[at:], p))
	}
	r.tail = tail + pad + size
	// SYNC: publish record (pairs with the consumer's Acquire load of tail).
	r.seg.store64(r.base+ringTail, r.tail)
	return nil
}

// hasSpace is a pure check: would a record of n payload bytes fit now?
func (r *spsc) hasSpace(n int) bool {
	head := r.seg.load64(r.base + ringHead)
	size := recordSize(uint64(n))
	toEnd := r.capacity - r.tail&r.mask
	var pad uint64
	if toEnd < size {
		pad = toEnd
	}
	used := r.tail - head
	return used <= r.capacity && r.capacity-used >= pad+size
}

// setWaiting stores producer_waiting (§4.4).
func (r *spsc) setWaiting(v uint32) { r.seg.store32(r.base+ringProducerWaiting, v) }

// record is one frame read from a ring: its payload aliases the mapping until the consumer releases it.
type record struct {
	kind    uint16
	seq     uint64
	payload []byte
	size    uint64 // ring bytes to release, padding skipped before it included
}

// peek is the consumer algorithm of §4.3, steps 1 to 5: the next record, or ok = false when empty.
func (r *spsc) peek() (rec record, ok bool, err error) {
	head := r.head
	// SYNC: observe record (pairs with the producer's Release store of tail).
	tail := r.seg.load64(r.base + ringTail)
	var skipped uint64
	for {
		if head == tail {
			return record{}, false, nil
		}
		available := tail - head
		if available > r.capacity || head%frameAlign != 0 {
			return record{}, false, corrupt("ring of %s: head %d and tail %d are inconsistent", r.seg.name, head, tail)
		}
		off := head & r.mask
		len, kind, seq := readHeader(r.seg, r.data+off)
		size, err := checkRecord(r.capacity, off, available, len, kind, r.allowed[:])
		if err != nil {
			return record{}, false, corrupt("ring of %s: %s", r.seg.name, err.Message)
		}
		if kind == frameKindPadding {
			head += size
			skipped += size
			continue
		}
		start := r.data + off + frameHeaderSize
		payload := r.seg.mem[start : start+uint64(len) : start+uint64(len)]
		return record{kind: kind, seq: seq, payload: payload, size: skipped + size}, true, nil
	}
}

// release is steps 6 and 7 of §4.3; it reports whether the producer waits for space (the caller then
// rings the producer's doorbell).
func (r *spsc) release(rec record) bool {
	r.head += rec.size
	// SYNC: release space (pairs with the producer's Acquire load of head).
	r.seg.store64(r.base+ringHead, r.head)
	return r.seg.load32(r.base+ringProducerWaiting) != 0
}

// hasData is a pure check for a sleeper's condition.
func (r *spsc) hasData() bool { return r.seg.load64(r.base+ringTail) != r.head }

// writeHeader stores a frame header as two 64-bit words (§5): len | kind << 32, then seq. The spec
// asks for Relaxed stores: single aligned 64-bit stores (never torn on amd64 and arm64) that the
// writer's later atomic store of the tail publishes, as the Go memory model orders every write before
// an atomic store ahead of it. sync/atomic has no Relaxed store, and its SeqCst one costs a full fence.
func writeHeader(s *segment, off uint64, len uint32, kind uint16, seq uint64) {
	*s.word64(off) = uint64(len) | uint64(kind)<<32
	*s.word64(off + frameSeq) = seq
}

func readHeader(s *segment, off uint64) (len uint32, kind uint16, seq uint64) {
	w := atomic.LoadUint64(s.word64(off))
	return uint32(w), uint16(w >> 32), atomic.LoadUint64(s.word64(off + frameSeq))
}

// checkRecord validates a frame header found at ring offset off with available unread bytes (§4.3 step
// 4) and returns the ring bytes the record takes. Every ring reader uses it.
func checkRecord(capacity, off, available uint64, len uint32, kind uint16, allowed []uint16) (uint64, *Error) {
	toEnd := capacity - off
	if kind == frameKindPadding {
		if uint64(len)+frameHeaderSize != toEnd || toEnd > available {
			return 0, corrupt("padding of %d bytes at offset %d does not end the ring", len, off)
		}
		return toEnd, nil
	}
	known := false
	for _, k := range allowed {
		if k != 0 && k == kind {
			known = true
		}
	}
	if !known {
		return 0, corrupt("frame kind %d is not allowed here", kind)
	}
	if uint64(len) > maxPayload(capacity) {
		return 0, corrupt("frame of %d bytes exceeds the maximum payload %d", len, maxPayload(capacity))
	}
	size := recordSize(uint64(len))
	if size > toEnd || size > available {
		return 0, corrupt("frame of %d bytes at offset %d runs past the data written", len, off)
	}
	return size, nil
}
