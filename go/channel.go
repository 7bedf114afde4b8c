// Channels (spec/wire-format.md §7): the publisher (gating under block, retiring records, padding at
// the wrap) and the subscriber (join, receive with the lossy re-checks, leave).

package ring

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/avro"
)

// channelSeg is a mapped channel segment after the checks of §7.1.
type channelSeg struct {
	seg            *segment
	id             uint64
	fp             uint64
	capacity, mask uint64
	data           uint64
	lossy          bool
	maxSubs        uint64
	dataBell       doorbell
	spaceBell      doorbell
}

func openChannel(name string, id int64, fingerprint int64) (*channelSeg, error) {
	s, err := openSegment(name, kindChannel)
	if err == errNotFound || err == errNotReady {
		return nil, newError(CodeClosed, "channel segment %s is gone", name)
	}
	if err != nil {
		return nil, err
	}
	fail := func(e error) (*channelSeg, error) { s.unmap(); return nil, e }
	if s.size() < chSubscribers {
		return fail(corrupt("channel segment %s is only %d bytes", name, s.size()))
	}
	capacity, policy, maxSubs := s.load64(chCapacity), s.load32(chPolicy), uint64(s.load32(chMaxSubscribers))
	if !validCapacity(capacity) || policy > policyLossy || maxSubs < 1 || maxSubs > maxMaxSubscribers ||
		channelSegmentSize(maxSubs, capacity) != s.size() {
		return fail(corrupt("channel segment %s: capacity %d, policy %d, %d subscribers do not make %d bytes", name,
			capacity, policy, maxSubs, s.size()))
	}
	if s.load64(chChannelID) != uint64(id) || s.load64(chFingerprint) != uint64(fingerprint) {
		return fail(corrupt("channel segment %s is not channel %d with fingerprint %s", name, id, fp(uint64(fingerprint))))
	}
	return &channelSeg{seg: s, id: uint64(id), fp: uint64(fingerprint), capacity: capacity, mask: capacity - 1,
		data: channelDataOffset(maxSubs), lossy: policy == policyLossy, maxSubs: maxSubs,
		dataBell: doorbellAt(s, chDataDoorbell), spaceBell: doorbellAt(s, chSpaceDoorbell)}, nil
}

// Publisher is the publishing end of a channel. Its methods are safe for concurrent use (publishes
// are serialised). Close closes the channel: subscribers read what is left, then see ErrClosed.
type Publisher struct {
	conn   *Conn
	ch     *channelSeg
	name   string
	schema *avro.Schema
	header [soeHeaderLen]byte
	wait   WaitStrategy
	send   time.Duration
	max    uint64

	mu        sync.Mutex
	closed    bool
	closing   atomic.Bool // set before Close takes mu, so a publish waiting for space gives up
	tail      uint64      // private copies: never read back from the segment while publishing
	nextSeq   uint64
	minValid  uint64
	cachedMin uint64
	buf       []byte
}

// PublishChannel publishes the channel name with the schema every message follows. Options: WithKey
// (subscribers must present it), WithCapacity, Lossy, WithWait, WithSendTimeout. It blocks for the
// broker's reply (at most 10 s). Errors: ErrInvalidArgument, ErrInvalidSchema, ErrNameTaken,
// ErrBrokerGone, ErrTimeout, ErrCorrupt.
func (c *Conn) PublishChannel(name, schema string, opts ...Option) (*Publisher, error) {
	o := collect(opts)
	s, err := parseSchema("the channel's schema", schema)
	if err != nil {
		return nil, err
	}
	rec, err := c.request(context.Background(), ctlPublishChannel{Name: name, Schema: schema, Key: keyField(o.key),
		Capacity: int64(o.capacity), Lossy: o.lossy}, nil)
	if err != nil {
		return nil, err
	}
	r, ok := rec.(ctlChannelPublished)
	if !ok {
		return nil, newError(CodeProtocol, "the broker answered PublishChannel with %T", rec)
	}
	ch, err := openChannel(r.Segment, r.ChannelID, r.Fingerprint)
	if err != nil {
		return nil, err
	}
	// A fresh channel: the words are 0, but load them as the spec says rather than assume.
	tail := ch.seg.load64(chTail)
	p := &Publisher{conn: c, ch: ch, name: name, schema: s, header: soeHeader(ch.fp), wait: o.wait,
		send: o.sendTimeout, max: maxPayload(ch.capacity), tail: tail, nextSeq: ch.seg.load64(chNextSeq),
		minValid: ch.seg.load64(chMinValid), cachedMin: tail}
	c.track(p)
	return p, nil
}

// MaxDatum is the largest datum one message may carry (the Single Object header excluded).
func (p *Publisher) MaxDatum() int { return int(p.max) - soeHeaderLen }

// Publish encodes v (a struct with `avro` tags, a map, or any value the schema accepts) and publishes
// it. Under block it waits for the slowest subscriber as WithSendTimeout says. Errors: ErrTooLarge,
// ErrInvalidArgument (v does not encode), ErrTimeout, ErrWouldBlock, ErrClosed.
func (p *Publisher) Publish(v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	buf, err := p.schema.AppendEncode(append(p.buf[:0], p.header[:]...), v)
	if err != nil {
		return newError(CodeInvalidArgument, "the message does not encode with the channel's schema: %v", err)
	}
	p.buf = buf
	return p.publishLocked(buf[:soeHeaderLen], buf[soeHeaderLen:])
}

// PublishRaw publishes a datum already in Avro binary; it does not allocate. Same errors as Publish.
func (p *Publisher) PublishRaw(datum []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.publishLocked(p.header[:], datum)
}

func (p *Publisher) publishLocked(header, datum []byte) error {
	if p.closed {
		return newError(CodeClosed, "the publisher of `%s` is closed", p.name)
	}
	n := uint64(len(header) + len(datum))
	if n > p.max {
		return newError(CodeTooLarge, "a message of %d bytes is larger than the channel's maximum of %d", n, p.max)
	}
	if p.try(header, datum) {
		return nil
	}
	if p.send == 0 {
		return newError(CodeWouldBlock, "channel `%s` is full: its slowest subscriber is a whole ring behind", p.name)
	}
	var deadline time.Time
	if p.send > 0 {
		deadline = time.Now().Add(p.send)
	}
	for {
		p.ch.spaceBell.wait(p.wait, deadline, func() bool { return p.fits(n) }, p.closing.Load)
		if p.closing.Load() {
			return newError(CodeClosed, "the publisher of `%s` is closed", p.name)
		}
		if p.try(header, datum) {
			return nil
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return newError(CodeTimeout, "channel `%s` stayed full for %v", p.name, p.send)
		}
	}
}

// layout is §7.3 step 2: where a record of n bytes would go.
func (p *Publisher) layout(n uint64) (pad, size, end uint64) {
	size = recordSize(n)
	toEnd := p.ch.capacity - p.tail&p.ch.mask
	if toEnd < size {
		pad = toEnd
	}
	return pad, size, p.tail + pad + size
}

// fits is a pure check: would a record of n bytes pass the gate now?
func (p *Publisher) fits(n uint64) bool {
	_, _, end := p.layout(n)
	return p.ch.lossy || end-p.slowest() <= p.ch.capacity
}

// try is one publish attempt (§7.3); false means the channel is full.
func (p *Publisher) try(header, datum []byte) bool {
	c := p.ch
	n := uint64(len(header) + len(datum))
	pad, _, end := p.layout(n)
	if !c.lossy && end-p.cachedMin > c.capacity {
		p.cachedMin = p.slowest()
		if end-p.cachedMin > c.capacity {
			return false
		}
	}
	if end > c.capacity {
		p.retireUntil(end - c.capacity)
	}
	seq := p.nextSeq
	if pad > 0 {
		writeHeader(c.seg, c.data+p.tail&c.mask, uint32(pad-frameHeaderSize), frameKindPadding, seq)
	}
	off := c.data + (p.tail+pad)&c.mask
	writeHeader(c.seg, off, uint32(n), frameKindData, seq)
	at := off + frameHeaderSize
	at += uint64(copy(c.seg.mem[at:], header))
	copy(c.seg.mem[at:], datum)
	p.nextSeq, p.tail = seq+1, end
	*c.seg.word64(chNextSeq) = p.nextSeq // Relaxed, published by the tail's store (see writeHeader)
	// SYNC: publish record (pairs with the subscriber's Acquire load of tail).
	c.seg.store64(chTail, end)
	c.dataBell.ring()
	return true
}

// slowest is the lowest position of a JOINING or ACTIVE subscriber, or tail when there is none; a
// position outside [tail - capacity, tail] is corrupt and ignored, except a JOINING cursor more than a
// ring behind, which gates every publish until it settles (§7.3).
func (p *Publisher) slowest() uint64 {
	c := p.ch
	// Go's atomics are SeqCst: the loads below take the place of the spec's SeqCst fence.
	low := p.tail
	for i := uint64(0); i < c.maxSubs; i++ {
		slot := chSubscribers + i*subSize
		st := c.seg.load32(slot + subState)
		if st != subJoining && st != subActive {
			continue
		}
		// SYNC: observe cursor (pairs with the subscriber's Release store of pos).
		pos := c.seg.load64(slot + subPos)
		switch {
		case pos <= p.tail && p.tail-pos <= c.capacity:
			low = min(low, pos)
		case st == subJoining && pos <= p.tail:
			// Caught mid-join with the position of its first tail load (§7.6): its settled position
			// is not visible yet and may be one we would overwrite. Gate completely until it settles.
			gate := uint64(0)
			if p.tail >= c.capacity {
				gate = p.tail - c.capacity
			}
			low = min(low, gate)
		}
	}
	return low
}

// retireUntil advances min_valid past every record that starts before target (§7.4).
func (p *Publisher) retireUntil(target uint64) {
	c := p.ch
	m := p.minValid
	if m >= target {
		return
	}
	for m < target {
		off := m & c.mask
		toEnd := c.capacity - off
		l, kind, _ := readHeader(c.seg, c.data+off)
		size := toEnd
		if kind != frameKindPadding {
			size = recordSize(uint64(l))
		}
		if size == 0 || size > toEnd || m%frameAlign != 0 {
			m = target // our own records were overwritten by someone else
			break
		}
		m += size
	}
	p.minValid = m
	// A swap, not a store: its acquire half keeps the record writes that follow from moving before it,
	// which is the spec's Release fence (a subscriber that copied a torn record then sees min_valid moved).
	atomic.SwapUint64(c.seg.word64(chMinValid), m)
}

// Close closes the channel: it stores closed and rings the subscribers, then tells the broker (it
// blocks for the reply). Later publishes fail with ErrClosed.
func (p *Publisher) Close() error {
	if !p.closeLocalFirst() {
		return nil
	}
	p.conn.untrack(p)
	_, err := p.conn.request(context.Background(), ctlCloseChannel{ChannelID: int64(p.ch.id)}, nil)
	if e, ok := err.(*Error); ok && (e.Code == CodeBrokerGone || e.Code == CodeClosed) {
		err = nil // the broker closed it already, or will when it collects the app
	}
	p.mu.Lock()
	p.ch.seg.unmap()
	p.mu.Unlock()
	return err
}

func (p *Publisher) closeLocalFirst() bool {
	p.closing.Store(true)
	p.ch.spaceBell.wakeAll()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.closed = true
	p.ch.seg.store32(chClosed, 1)
	p.ch.dataBell.ring()
	return true
}

func (p *Publisher) closeLocal() {
	if p.closeLocalFirst() {
		p.mu.Lock()
		p.ch.seg.unmap()
		p.mu.Unlock()
	}
}

// Subscriber is the receiving end of a channel. Receives are serialised: it is one cursor.
type Subscriber struct {
	conn   *Conn
	ch     *channelSeg
	name   string
	schema *avro.Schema
	index  uint64
	slot   uint64
	wait   WaitStrategy

	mu       sync.Mutex
	closed   atomic.Bool
	mapMu    sync.RWMutex // held to write while unmapping; read by the cancellation callback
	unmapped bool
	pos      uint64
	nextSeq  uint64
	lastTail uint64
	lastRing uint64
	missed   uint64 // messages missed so far, mirrored in IR_SUB_MISSED for Describe
	fence    uint64 // a private word for read-modify-writes that stand for Acquire fences
	copyBuf  []byte
	messages chan Message
	quit     chan struct{} // closed when the subscriber leaves
	msgMu    sync.Mutex    // guards msgErr (not mu: a Recv in progress holds that)
	msgErr   error
	msgOnce  sync.Once
	msgDone  chan struct{}
}

// Subscribe joins the channel name, presenting schema (its fingerprint must equal the channel's) and
// WithKey's key. Options: WithKey, WithWait. It blocks for the broker's reply (at most 10 s). Errors:
// ErrUnknownChannel, ErrWrongKey, ErrSchemaMismatch (both fingerprints), ErrInvalidSchema,
// ErrLimitReached, ErrBrokerGone, ErrCorrupt.
func (c *Conn) Subscribe(name, schema string, opts ...Option) (*Subscriber, error) {
	o := collect(opts)
	s, err := parseSchema("the subscriber's schema", schema)
	if err != nil {
		return nil, err
	}
	rec, err := c.request(context.Background(), ctlSubscribe{Name: name, Schema: schema, Key: keyField(o.key)}, nil)
	if err != nil {
		return nil, err
	}
	r, ok := rec.(ctlSubscribed)
	if !ok {
		return nil, newError(CodeProtocol, "the broker answered Subscribe with %T", rec)
	}
	ch, err := openChannel(r.Segment, r.ChannelID, r.Fingerprint)
	if err == nil && (r.SubscriberIndex < 0 || uint64(r.SubscriberIndex) >= ch.maxSubs) {
		ch.seg.unmap()
		err = corrupt("subscriber index %d is outside channel `%s`'s %d slots", r.SubscriberIndex, name, ch.maxSubs)
	}
	if err != nil {
		_, _ = c.request(context.Background(), ctlUnsubscribe{ChannelID: r.ChannelID, SubscriberIndex: r.SubscriberIndex}, nil)
		return nil, err
	}
	sub := &Subscriber{conn: c, ch: ch, name: name, schema: s, index: uint64(r.SubscriberIndex), wait: o.wait,
		quit: make(chan struct{})}
	sub.slot = chSubscribers + sub.index*subSize
	sub.join()
	c.track(sub)
	return sub, nil
}

// join is §7.6.
func (s *Subscriber) join() {
	g := s.ch.seg
	t1 := g.load64(chTail)
	g.store64(s.slot+subPos, t1)
	g.store32(s.slot+subState, subJoining)
	// Go's atomics are SeqCst: the store above and the load below are ordered as the spec's fence asks.
	t2 := g.load64(chTail)
	s.nextSeq = g.load64(chNextSeq)
	g.store64(s.slot+subPos, t2)
	s.pos, s.lastTail, s.lastRing = t2, t2, t2
	g.store32(s.slot+subState, subActive)
}

// Recv waits for the next message and decodes it into v (a pointer). It returns nil, or: ErrLagged (a
// lossy subscriber missed messages; *Error.Missed says how many; the next Recv continues), ErrClosed
// (the channel is closed and drained), ErrBrokerGone (nothing left and the broker is gone), ErrDecode,
// ErrCorrupt, ErrTimeout at ctx's deadline, or ctx.Err() when ctx is cancelled.
func (s *Subscriber) Recv(ctx context.Context, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recvLocked(ctx, func(datum []byte) error { return decodeDatum("the message", s.schema, datum, v) })
}

// RecvRaw is Recv returning the datum (the Single Object header stripped), appended to buf[:0]: it
// does not allocate when buf is large enough.
func (s *Subscriber) RecvRaw(ctx context.Context, buf []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := buf[:0]
	err := s.recvLocked(ctx, func(datum []byte) error { out = append(out, datum...); return nil })
	return out, err
}

// RecvView waits for the next message and calls fn with its datum (the Single Object header
// stripped) where it lies: in the channel's shared memory under block (the publisher does not
// overwrite it before the cursor moves past it, which happens when fn returns), a private copy under
// lossy. The datum is valid only during fn; fn's error is returned. Same errors as Recv.
func (s *Subscriber) RecvView(ctx context.Context, fn func(datum []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recvLocked(ctx, fn)
}

// recvLocked waits for one message and hands its datum to use before the cursor moves past it.
func (s *Subscriber) recvLocked(ctx context.Context, use func([]byte) error) error {
	if s.unmapped {
		return newError(CodeClosed, "the subscriber of `%s` is closed", s.name)
	}
	var stop func() bool
	if ctx.Done() != nil {
		// Cancellation rings our own data doorbell, so a futex sleep ends at once.
		defer context.AfterFunc(ctx, s.wake)()
		stop = func() bool { return ctx.Err() != nil || s.closed.Load() }
	} else {
		stop = s.closed.Load
	}
	deadline, _ := ctx.Deadline()
	for {
		got, err := s.attempt(use)
		if got || err != nil {
			return err
		}
		if s.conn.gone.Load() {
			return s.conn.brokerGoneError()
		}
		if s.closed.Load() {
			return newError(CodeClosed, "the subscriber of `%s` is closed", s.name)
		}
		if ctx.Err() != nil {
			return ctxError(ctx, "waiting for a message on `"+s.name+"`")
		}
		s.ch.dataBell.wait(s.wait, deadline, s.ready, stop)
	}
}

// wake interrupts a Recv's sleep, unless the segment is unmapped already.
func (s *Subscriber) wake() {
	s.mapMu.RLock()
	defer s.mapMu.RUnlock()
	if !s.unmapped {
		s.ch.dataBell.wakeAll()
	}
}

// ready is the sleeper's condition: a pure check for news (a message, the close) with no side effect.
func (s *Subscriber) ready() bool {
	g := s.ch.seg
	return g.load64(chTail) != s.pos || g.load32(chClosed) != 0 || s.conn.gone.Load()
}

// acquireFence orders the loads before it ahead of the loads after it: a read-modify-write of a
// private word is a full barrier on amd64 and arm64, which sync/atomic's loads alone are not.
func (s *Subscriber) acquireFence() { atomic.AddUint64(&s.fence, 1) }

// attempt is one receive attempt (§7.5); got says a message was delivered to use.
func (s *Subscriber) attempt(use func([]byte) error) (got bool, err error) {
	c := s.ch
	g := c.seg
	for {
		var tail uint64
		if !c.lossy && s.pos < s.lastTail {
			tail = s.lastTail
		} else {
			// SYNC: observe record (pairs with the publisher's Release store of tail).
			tail = g.load64(chTail)
			s.lastTail = tail
		}
		if s.pos == tail {
			if g.load32(chClosed) != 0 && g.load64(chTail) == s.pos {
				return false, newError(CodeClosed, "channel `%s` is closed", s.name)
			}
			return false, nil
		}
		available := tail - s.pos
		if c.lossy && (available > c.capacity || s.pos < g.load64(chMinValid)) {
			if missed, err := s.skipToOldest(); err != nil || missed > 0 {
				if err != nil {
					return false, err
				}
				return false, s.lagged(missed)
			}
			continue
		}
		if available > c.capacity || s.pos%frameAlign != 0 {
			return false, corrupt("channel `%s`: cursor %d and tail %d are inconsistent", s.name, s.pos, tail)
		}
		off := s.pos & c.mask
		l, kind, seq := readHeader(g, c.data+off)
		size, verr := checkRecord(c.capacity, off, available, l, kind, []uint16{frameKindData})
		if c.lossy {
			s.acquireFence()
			if s.pos < g.load64(chMinValid) {
				continue // the header may be torn
			}
		}
		if verr != nil {
			return false, corrupt("channel `%s`: %s", s.name, verr.Message)
		}
		if kind == frameKindPadding {
			s.pos += size
			g.store64(s.slot+subPos, s.pos)
			continue
		}
		start := c.data + off + frameHeaderSize
		payload := g.mem[start : start+uint64(l) : start+uint64(l)]
		if c.lossy {
			s.copyBuf = append(s.copyBuf[:0], payload...)
			s.acquireFence()
			if s.pos < g.load64(chMinValid) {
				continue // the copy may be torn
			}
			payload = s.copyBuf
			if missed := seq - s.nextSeq; missed != 0 && missed < 1<<63 {
				s.nextSeq = seq
				return false, s.lagged(missed)
			}
		}
		datum, err := checkSOE("the message", payload, c.fp)
		if err == nil {
			err = use(datum)
		}
		// A message that does not decode is consumed all the same: the next one may.
		s.nextSeq = seq + 1
		s.pos += size
		// SYNC: release cursor (pairs with the publisher's Acquire load in slowest).
		g.store64(s.slot+subPos, s.pos)
		if s.pos == s.lastTail || s.pos-s.lastRing >= c.capacity/8 {
			s.lastRing = s.pos
			c.spaceBell.ring()
		}
		return true, err
	}
}

// skipToOldest moves a lapped lossy subscriber to the oldest record still in the ring (§7.5).
func (s *Subscriber) skipToOldest() (uint64, error) {
	c := s.ch
	g := c.seg
	m := g.load64(chMinValid)
	// The tail is loaded after min_valid: an older tail may be behind a min_valid that moved meanwhile.
	tail := g.load64(chTail)
	if m > tail || m%frameAlign != 0 {
		return 0, corrupt("channel `%s`: min_valid %d is past the tail %d or misaligned", s.name, m, tail)
	}
	s.pos = m
	_, _, seq := readHeader(g, c.data+m&c.mask)
	s.acquireFence()
	var missed uint64
	if g.load64(chMinValid) <= s.pos {
		missed = seq - s.nextSeq
		if missed >= 1<<63 {
			missed = 0
		}
	}
	s.nextSeq += missed
	g.store64(s.slot+subPos, s.pos)
	s.lastTail = tail
	return missed, nil
}

// lagged counts missed messages (IR_SUB_MISSED is a figure for Describe) and reports them.
func (s *Subscriber) lagged(missed uint64) *Error {
	s.missed += missed
	*s.ch.seg.word64(s.slot + subMissed) = s.missed // a figure, Relaxed
	return &Error{Code: CodeLagged, Message: lagMessage(s.name, missed), Missed: missed}
}

func lagMessage(name string, missed uint64) string {
	return "the subscriber of `" + name + "` lagged and missed " + itoa(missed) + " messages"
}

// Message is one message delivered by Messages.
type Message struct {
	// Datum is the message's Avro datum (the Single Object header stripped); it belongs to the receiver.
	Datum  []byte
	schema *avro.Schema
}

// Decode decodes the message into v.
func (m Message) Decode(v any) error { return decodeDatum("the message", m.schema, m.Datum, v) }

// Messages returns a Go channel fed by one goroutine, for `for m := range sub.Messages()`. Lagged
// gaps are skipped (see Missed through Recv instead); the channel is closed when the subscription
// ends (channel closed, broker gone, Close), and Err then says why (nil after Close).
func (s *Subscriber) Messages() <-chan Message {
	s.msgOnce.Do(func() {
		s.messages = make(chan Message, 64)
		s.msgDone = make(chan struct{})
		go func() {
			defer close(s.msgDone)
			defer close(s.messages)
			for {
				datum, err := s.RecvRaw(context.Background(), nil)
				if err == nil {
					select {
					case s.messages <- Message{Datum: datum, schema: s.schema}:
					case <-s.quit:
						return
					}
					continue
				}
				if e, ok := err.(*Error); ok && e.Code == CodeLagged {
					continue
				}
				if s.closed.Load() {
					err = nil
				}
				s.msgMu.Lock()
				s.msgErr = err
				s.msgMu.Unlock()
				return
			}
		}()
	})
	return s.messages
}

// Err says why the Messages channel was closed.
func (s *Subscriber) Err() error {
	s.msgMu.Lock()
	defer s.msgMu.Unlock()
	return s.msgErr
}

// Close leaves the channel: the slot is freed (a waiting publisher stops waiting for it) and the broker
// told (Close blocks for its reply). A Recv in progress returns ErrClosed.
func (s *Subscriber) Close() error {
	if !s.leave() {
		return nil
	}
	s.conn.untrack(s)
	_, err := s.conn.request(context.Background(), ctlUnsubscribe{ChannelID: int64(s.ch.id),
		SubscriberIndex: int32(s.index)}, nil)
	if e, ok := err.(*Error); ok && (e.Code == CodeBrokerGone || e.Code == CodeClosed) {
		err = nil
	}
	return err
}

// leave frees the slot and unmaps, once any Recv in progress has returned.
func (s *Subscriber) leave() bool {
	if s.closed.Swap(true) {
		return false
	}
	s.ch.dataBell.wakeAll()
	s.mu.Lock()
	g := s.ch.seg
	g.store32(s.slot+subState, subFree)
	s.ch.spaceBell.ring()
	s.mapMu.Lock()
	g.unmap()
	s.unmapped = true
	s.mapMu.Unlock()
	s.mu.Unlock()
	close(s.quit)
	return true
}

func (s *Subscriber) closeLocal() { s.leave() }

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
