// Calls (spec/wire-format.md §8, spec/bootstrap.md §5.3): links between a caller and a function, the
// caller's side (correlation ids, pending calls, PeerGone when the provider goes) and the provider's
// (handlers on goroutines, responses written back under the link's lock).

package ring

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/avro"
)

// responseWait bounds how long a provider waits for response space before dropping the response.
const responseWait = 5 * time.Second

type callKey struct{ name, reqSchema, respSchema string }

// callResult is what a pending call receives: a response payload (a private copy) or an error.
type callResult struct {
	datum []byte
	err   error
}

// link is one mapped link segment, seen from the caller's or the provider's side.
type link struct {
	seg        *segment
	id         int64
	functionID int64
	caller     bool // we are its caller (else its provider)
	peer       uint32
	reqFP      uint64
	respFP     uint64
	out        *spsc // the ring we produce: requests (caller) or responses (provider)
	in         *spsc // the ring we consume: the reactor, or a caller waiting for its response, under inMu
	inMu       sync.Mutex
	max        uint64

	mu      sync.Mutex // serialises writers of out; held while out's mapping is used
	dead    atomic.Bool
	retire  atomic.Bool // the provider withdrew the function: the reactor forgets the link
	nextSeq uint64
	// Figures for Describe, under mu: requests written (caller), responses and errors written (provider).
	calls, served, failed uint64

	pmu     sync.Mutex
	pending map[uint64]chan callResult // caller side

	fn *function // provider side
}

// openLink maps a link segment and checks it (wire-format.md §8.1).
func (c *Conn) openLink(name string, caller bool, functionID int64) (*link, error) {
	s, err := openSegment(name, kindLink)
	if err == errNotFound || err == errNotReady {
		return nil, newError(CodePeerGone, "link segment %s is gone", name)
	}
	if err != nil {
		return nil, err
	}
	fail := func(e error) (*link, error) { s.unmap(); return nil, e }
	if s.size() < linkRequestRing+ringHeaderSize {
		return fail(corrupt("link segment %s is only %d bytes", name, s.size()))
	}
	capacity := s.load64(linkRequestRing + ringCapacity)
	if !validCapacity(capacity) || linkSegmentSize(capacity) != s.size() {
		return fail(corrupt("link segment %s: capacity %d does not make %d bytes", name, capacity, s.size()))
	}
	l := &link{seg: s, id: int64(s.load64(linkLinkID)), functionID: int64(s.load64(linkFunctionID)), caller: caller,
		reqFP: s.load64(linkRequestFP), respFP: s.load64(linkResponseFP), max: maxPayload(capacity),
		pending: map[uint64]chan callResult{}}
	req, err := openRing(s, linkRequestRing, capacity, frameKindCallRequest)
	if err != nil {
		return fail(err)
	}
	resp, err := openRing(s, linkResponseRing(capacity), capacity, frameKindCallOK, frameKindCallError)
	if err != nil {
		return fail(err)
	}
	callerID, providerID := s.load32(linkCaller), s.load32(linkProvider)
	if caller {
		if callerID != c.appID || providerID >= c.maxApps {
			return fail(corrupt("link %s joins apps %d and %d, not this caller (%d)", name, callerID, providerID, c.appID))
		}
		l.peer, l.out, l.in = providerID, req, resp
	} else {
		if providerID != c.appID || callerID >= c.maxApps || l.functionID != functionID {
			return fail(corrupt("link %s is not for function %d of this provider (%d)", name, functionID, c.appID))
		}
		l.peer, l.out, l.in = callerID, resp, req
	}
	return l, nil
}

// addLink and removeLink replace the reactor's snapshot of links.
func (c *Conn) addLink(l *link) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	old := *c.links.Load()
	next := append(append(make([]*link, 0, len(old)+1), old...), l)
	c.links.Store(&next)
}

func (c *Conn) removeLink(l *link) {
	c.linkMu.Lock()
	old := *c.links.Load()
	next := make([]*link, 0, len(old))
	for _, o := range old {
		if o != l {
			next = append(next, o)
		}
	}
	c.links.Store(&next)
	for k, v := range c.callers {
		if v == l {
			delete(c.callers, k)
		}
	}
	c.linkMu.Unlock()
	l.unmap()
}

// unmap marks the link dead and unmaps it once no writer uses it.
func (l *link) unmap() {
	l.dead.Store(true)
	l.mu.Lock()
	l.inMu.Lock()
	l.seg.unmap()
	l.inMu.Unlock()
	l.mu.Unlock()
}

// peerGoneFlag is the other side's gone flag (provider_gone for a caller, caller_gone for a provider).
func (l *link) peerGoneFlag() bool {
	if l.caller {
		return l.seg.load32(linkProviderGone) != 0
	}
	return l.seg.load32(linkCallerGone) != 0
}

// hasWork is a pure check for the reactor's condition: data to read, or a gone peer to notice.
func (l *link) hasWork() bool {
	if l.retire.Load() {
		return true
	}
	// A caller holding inMu is reading the responses itself: nothing for the reactor then.
	if l.inMu.TryLock() {
		data := l.in.hasData()
		l.inMu.Unlock()
		if data {
			return true
		}
	}
	return l.caller && l.seg.load32(linkProviderGone) != 0
}

// poll reads what the link has (on the reactor); it reports whether there was anything.
func (l *link) poll(c *Conn) bool {
	if l.retire.Load() {
		c.removeLink(l)
		return true
	}
	if !l.inMu.TryLock() {
		return false // a caller is draining the responses
	}
	busy, err := l.drain(c)
	l.inMu.Unlock()
	if err != nil {
		c.linkClosed(l.id, corrupt("call link %d: %s", l.id, err.Message))
		return true
	}
	if !busy && l.caller && l.seg.load32(linkProviderGone) != 0 {
		c.linkClosed(l.id, newError(CodePeerGone, "the provider of call link %d is gone", l.id))
		return true
	}
	return busy
}

// drain reads up to 64 records of the link's in ring; the caller holds inMu.
func (l *link) drain(c *Conn) (bool, *Error) {
	busy := false
	for n := 0; n < 64; n++ {
		rec, ok, err := l.in.peek()
		if err != nil {
			return true, err.(*Error)
		}
		if !ok {
			break
		}
		busy = true
		if l.caller {
			l.deliver(rec)
		} else {
			payload := append([]byte(nil), rec.payload...)
			c.serving.Add(1)
			go c.serve(l, rec.seq, payload)
		}
		// The peer's doorbell is in the control segment, which outlives every link: no lock needed.
		if l.in.release(rec) {
			c.appBellOf(l.peer).ring()
		}
	}
	return busy, nil
}

// awaitSpinning is a caller's wait for its response under the spin and adaptive strategies: it reads
// the response ring itself for up to the adaptive window, skipping the hand-off from the reactor, then
// leaves the rest to the reactor. Corruption and a gone provider are left to the reactor too.
func (c *Conn) awaitSpinning(ctx context.Context, l *link, ch chan callResult) (callResult, bool) {
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case r := <-ch:
			return r, true
		default:
		}
		if l.inMu.TryLock() {
			if !l.dead.Load() {
				_, _ = l.drain(c)
			}
			l.inMu.Unlock()
		}
		if i&63 == 63 {
			if ctx.Err() != nil || time.Since(start) > spinFor+yieldFor {
				return callResult{}, false
			}
			if c.wait == Adaptive && time.Since(start) > spinFor {
				runtime.Gosched()
			}
		}
	}
}

// deliver hands a response to its pending call; one nobody waits for (timed out) is dropped.
func (l *link) deliver(rec record) {
	l.pmu.Lock()
	ch := l.pending[rec.seq]
	delete(l.pending, rec.seq)
	l.pmu.Unlock()
	if ch == nil {
		return
	}
	switch rec.kind {
	case frameKindCallOK:
		datum, err := checkSOE("the response", rec.payload, l.respFP)
		if err != nil {
			ch <- callResult{err: err}
			return
		}
		ch <- callResult{datum: append([]byte(nil), datum...)}
	default:
		r, err := decodeControl(rec.payload)
		if err != nil {
			ch <- callResult{err: err}
			return
		}
		ce, ok := r.(ctlCallError)
		if !ok {
			ch <- callResult{err: newError(CodeProtocol, "a call error frame holds %T, not CallError", r)}
			return
		}
		ch <- callResult{err: &Error{Code: codeOf(ce.Code), Message: ce.Message}}
	}
}

// linkClosed forgets a link: pending calls fail with err (PeerGone), a provider stops serving it.
func (c *Conn) linkClosed(id int64, err *Error) {
	for _, l := range *c.links.Load() {
		if l.id != id {
			continue
		}
		l.failPending(err)
		c.removeLink(l)
	}
}

func (l *link) failPending(err error) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	for seq, ch := range l.pending {
		delete(l.pending, seq)
		ch <- callResult{err: err}
	}
}

func (c *Conn) failAllCalls(err *Error) {
	for _, l := range *c.links.Load() {
		if l.caller {
			l.failPending(err)
		}
	}
}

// writeOut writes a frame into the link's out ring, waiting for space until deadline, and rings the
// peer. stop says when to give up early.
func (c *Conn) writeOut(l *link, kind uint16, seq uint64, deadline time.Time, stop func() bool, parts ...[]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead.Load() {
		return newError(CodePeerGone, "call link %d is closed", l.id)
	}
	err := l.out.write(kind, seq, parts...)
	if err == errFull {
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		l.out.setWaiting(1)
		c.appBell.wait(c.wait, deadline, func() bool { return l.out.hasSpace(n) }, func() bool {
			return stop() || l.peerGoneFlag() || l.dead.Load()
		})
		err = l.out.write(kind, seq, parts...)
		l.out.setWaiting(0)
		if err == errFull {
			if l.peerGoneFlag() {
				return newError(CodePeerGone, "the peer of call link %d is gone", l.id)
			}
			return newError(CodeTimeout, "no space in call link %d", l.id)
		}
	}
	if err != nil {
		return err
	}
	// Figures only (wire-format.md §8.1), never read by the protocol: Relaxed, so plain aligned stores
	// rather than sync/atomic's fenced ones, off the call's critical path.
	if l.caller {
		l.calls++
		*l.seg.word64(linkCalls) = l.calls
	} else {
		l.served++
		*l.seg.word64(linkServed) = l.served
		if kind == frameKindCallError {
			l.failed++
			*l.seg.word64(linkFailed) = l.failed
		}
	}
	c.appBellOf(l.peer).ring()
	return nil
}

// Function is a function this app exposes; Close withdraws it.
type Function struct {
	conn *Conn
	fn   *function
}

type function struct {
	id      int64
	name    string
	req     *avro.Schema
	resp    *avro.Schema
	handler HandlerFunc
	reqFP   uint64
	respFP  uint64
}

// Request is one call as a handler sees it.
type Request struct {
	datum []byte
	fn    *function
}

// Decode decodes the request datum into v (a pointer to a struct with `avro` tags, or to any).
func (r *Request) Decode(v any) error { return decodeDatum("the request", r.fn.req, r.datum, v) }

// Raw is the request's Avro datum (the Single Object header stripped). It is valid during the call.
func (r *Request) Raw() []byte { return r.datum }

// RawResponse is a response datum already in Avro binary; a handler may return one to skip encoding.
type RawResponse []byte

// HandlerFunc serves one call: it returns the response (encoded with the response schema, or a
// RawResponse) or an error, which the caller receives as ErrHandlerError with the error's message. ctx
// is cancelled when the connection closes.
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// ExposeFunction registers a function. Each call runs handler on a goroutine of its own, so handlers
// run concurrently. It blocks for the broker's reply (at most 10 s). Options: WithKey. Errors:
// ErrInvalidArgument, ErrInvalidSchema, ErrNameTaken, ErrBrokerGone, ErrTimeout.
func (c *Conn) ExposeFunction(name, requestSchema, responseSchema string, handler HandlerFunc,
	opts ...Option) (*Function, error) {
	o := collect(opts)
	req, err := parseSchema("the request schema", requestSchema)
	if err != nil {
		return nil, err
	}
	resp, err := parseSchema("the response schema", responseSchema)
	if err != nil {
		return nil, err
	}
	fn := &function{name: name, req: req, resp: resp, handler: handler}
	rec, err := c.request(context.Background(), ctlExposeFunction{Name: name, RequestSchema: requestSchema,
		ResponseSchema: responseSchema, Key: keyField(o.key)}, func(rec any) {
		// On the reactor, before any LinkOpened that follows the reply.
		if r, ok := rec.(ctlFunctionExposed); ok {
			fn.id, fn.reqFP, fn.respFP = r.FunctionID, uint64(r.RequestFingerprint), uint64(r.ResponseFingerprint)
			c.linkMu.Lock()
			c.functions[r.FunctionID] = fn
			c.linkMu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	if _, ok := rec.(ctlFunctionExposed); !ok {
		return nil, newError(CodeProtocol, "the broker answered ExposeFunction with %T", rec)
	}
	f := &Function{conn: c, fn: fn}
	c.track(f)
	return f, nil
}

// Close withdraws the function: its callers' pending calls fail with ErrPeerGone. It blocks for the
// broker's reply.
func (f *Function) Close() error {
	c := f.conn
	c.untrack(f)
	c.linkMu.Lock()
	_, ok := c.functions[f.fn.id]
	delete(c.functions, f.fn.id)
	c.linkMu.Unlock()
	if !ok {
		return nil
	}
	// Only the reactor unmaps a link it may be reading: it forgets these at its next turn.
	for _, l := range *c.links.Load() {
		if !l.caller && l.fn == f.fn {
			l.retire.Store(true)
		}
	}
	c.appBell.wakeAll()
	_, err := c.request(context.Background(), ctlWithdrawFunction{FunctionID: f.fn.id}, nil)
	return err
}

func (f *Function) closeLocal() {
	f.conn.linkMu.Lock()
	delete(f.conn.functions, f.fn.id)
	f.conn.linkMu.Unlock()
}

// linkOpened serves a new link to one of our functions (on the reactor).
func (c *Conn) linkOpened(r ctlLinkOpened) {
	c.linkMu.Lock()
	fn := c.functions[r.FunctionID]
	c.linkMu.Unlock()
	if fn == nil {
		return
	}
	l, err := c.openLink(r.Segment, false, r.FunctionID)
	if err != nil {
		return // the caller times out or sees the link closed
	}
	l.fn = fn
	c.addLink(l)
}

// serve runs the handler for one request and writes the response (wire-format.md §8.3).
func (c *Conn) serve(l *link, seq uint64, payload []byte) {
	defer c.serving.Done()
	fn := l.fn
	datum, err := checkSOE("the request", payload, l.reqFP)
	var out []byte
	kind := frameKindCallOK
	if err == nil {
		var resp any
		resp, err = runHandler(c.serveCtx, fn, datum)
		if err != nil {
			err = newError(CodeHandlerError, "%s", err.Error())
		} else {
			h := soeHeader(l.respFP)
			if raw, ok := resp.(RawResponse); ok {
				out = append(h[:], raw...)
			} else if out, err = fn.resp.AppendEncode(h[:], resp); err != nil {
				err = newError(CodeHandlerError, "the response does not encode: %v", err)
			}
			if err == nil && uint64(len(out)) > l.max {
				err = newError(CodeTooLarge, "the response of %d bytes is larger than the link's maximum of %d",
					len(out), l.max)
			}
		}
	}
	if err != nil {
		code := CodeHandlerError
		if e, ok := err.(*Error); ok {
			code = e.Code
		}
		kind = frameKindCallError
		out = encodeControl(nil, ctlCallError{Code: int32(code), Message: err.Error()})
	}
	_ = c.writeOut(l, kind, seq, time.Now().Add(responseWait), func() bool { return c.stop.Load() }, out)
}

// runHandler runs the handler, turning a panic into a handler error.
func runHandler(ctx context.Context, fn *function, datum []byte) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the handler panicked: %v", p)
		}
	}()
	return fn.handler(ctx, &Request{datum: datum, fn: fn})
}

// callerLink returns the link for a function and schemas, resolving it when there is none.
func (c *Conn) callerLink(ctx context.Context, name string, o options) (*link, *avro.Schema, error) {
	key := callKey{name, o.reqSchema, o.respSchema}
	c.linkMu.Lock()
	l := c.callers[key]
	c.linkMu.Unlock()
	if l != nil && !l.dead.Load() {
		return l, nil, nil
	}
	rec, err := c.request(ctx, ctlResolveFunction{Name: name, RequestSchema: o.reqSchema,
		ResponseSchema: o.respSchema, Key: keyField(o.key)}, nil)
	if err != nil {
		return nil, nil, err
	}
	r, ok := rec.(ctlFunctionResolved)
	if !ok {
		return nil, nil, newError(CodeProtocol, "the broker answered ResolveFunction with %T", rec)
	}
	l, err = c.openLink(r.Segment, true, r.FunctionID)
	if err != nil {
		return nil, nil, err
	}
	if l.id != r.LinkID || l.reqFP != uint64(r.RequestFingerprint) || l.respFP != uint64(r.ResponseFingerprint) {
		l.seg.unmap()
		return nil, nil, corrupt("link segment %s does not match the broker's reply", r.Segment)
	}
	c.linkMu.Lock()
	if old := c.callers[key]; old != nil && !old.dead.Load() {
		// Another goroutine resolved it meanwhile: keep one link per function and schemas.
		c.linkMu.Unlock()
		l.seg.unmap()
		return old, nil, nil
	}
	c.callers[key] = l
	c.linkMu.Unlock()
	c.addLink(l)
	return l, nil, nil
}

// Call calls the function name with req (encoded with the request schema) and decodes the response
// into resp (a pointer). The schemas are required: WithSchemas(request, response); WithKey presents a
// key. Call is safe from many goroutines at once; calls on one link are in flight together.
//
// It blocks until the response, ctx's deadline (ErrTimeout, wrapping context.DeadlineExceeded) or
// cancellation (ctx.Err()). Errors: ErrUnknownFunction, ErrWrongKey, ErrSchemaMismatch (both
// fingerprints), ErrInvalidSchema, ErrTooLarge, ErrHandlerError (the handler's message), ErrPeerGone
// (the provider died or withdrew the function), ErrBrokerGone, ErrDecode.
func (c *Conn) Call(ctx context.Context, name string, req, resp any, opts ...Option) error {
	datum, err := c.CallRaw(ctx, name, req, opts...)
	if err != nil {
		return err
	}
	o := collect(opts)
	s, err := c.schema(o.respSchema)
	if err != nil {
		return err
	}
	return decodeDatum("the response", s, datum, resp)
}

// CallRaw is Call returning the response datum undecoded; req may be a RawResponse-like []byte datum
// already encoded (type RawRequest) or a value to encode.
func (c *Conn) CallRaw(ctx context.Context, name string, req any, opts ...Option) ([]byte, error) {
	if c.closed.Load() {
		return nil, newError(CodeClosed, "the connection is closed")
	}
	o := collect(opts)
	if o.reqSchema == "" || o.respSchema == "" {
		return nil, newError(CodeInvalidArgument, "Call needs the function's schemas: pass ring.WithSchemas(request, response)")
	}
	reqSchema, err := c.schema(o.reqSchema)
	if err != nil {
		return nil, err
	}
	if _, err := c.schema(o.respSchema); err != nil {
		return nil, err
	}
	return c.callRaw(ctx, name, o, reqSchema, req, nil)
}

// callRaw makes one call; cached, when set, keeps the link between calls of a Caller.
func (c *Conn) callRaw(ctx context.Context, name string, o options, reqSchema *avro.Schema, req any,
	cached *atomic.Pointer[link]) ([]byte, error) {
	if c.closed.Load() {
		return nil, newError(CodeClosed, "the connection is closed")
	}
	var l *link
	if cached != nil {
		l = cached.Load()
	}
	if l == nil || l.dead.Load() {
		var err error
		if l, _, err = c.callerLink(ctx, name, o); err != nil {
			return nil, err
		}
		if cached != nil {
			cached.Store(l)
		}
	}
	var err error
	h := soeHeader(l.reqFP)
	var payload []byte
	if raw, ok := req.(RawRequest); ok {
		payload = append(h[:], raw...)
	} else if payload, err = reqSchema.AppendEncode(h[:], req); err != nil {
		return nil, newError(CodeInvalidArgument, "the request does not encode with its schema: %v", err)
	}
	if uint64(len(payload)) > l.max {
		return nil, newError(CodeTooLarge, "the request of %d bytes is larger than the link's maximum of %d",
			len(payload), l.max)
	}
	ch := make(chan callResult, 1)
	l.pmu.Lock()
	l.nextSeq++
	seq := l.nextSeq
	l.pending[seq] = ch
	l.pmu.Unlock()
	forget := func() {
		l.pmu.Lock()
		delete(l.pending, seq)
		l.pmu.Unlock()
	}
	deadline, _ := ctx.Deadline()
	if err := c.writeOut(l, frameKindCallRequest, seq, deadline, func() bool { return ctx.Err() != nil }, payload); err != nil {
		forget()
		if ctx.Err() != nil {
			return nil, ctxError(ctx, fmt.Sprintf("calling `%s`", name))
		}
		return nil, err
	}
	if c.gone.Load() {
		forget()
		return nil, c.brokerGoneError()
	}
	if c.wait != Blocking {
		if r, ok := c.awaitSpinning(ctx, l, ch); ok {
			return r.datum, r.err
		}
	}
	select {
	case r := <-ch:
		return r.datum, r.err
	case <-ctx.Done():
		forget()
		return nil, ctxError(ctx, fmt.Sprintf("calling `%s`", name))
	}
}

// Caller is a function resolved once for many calls: it skips the per-call lookups of Conn.Call.
// It is safe from many goroutines at once.
type Caller struct {
	conn      *Conn
	name      string
	o         options
	req, resp *avro.Schema
	link      atomic.Pointer[link]
}

// Function resolves the function name with its request and response schemas (and WithKey) and
// returns a Caller for it. It blocks for the broker's reply. Errors: those of Call before the call
// itself (ErrUnknownFunction, ErrWrongKey, ErrSchemaMismatch, ErrInvalidSchema, ErrBrokerGone).
func (c *Conn) Function(ctx context.Context, name, requestSchema, responseSchema string, opts ...Option) (*Caller,
	error) {
	o := collect(opts)
	o.reqSchema, o.respSchema = requestSchema, responseSchema
	req, err := c.schema(requestSchema)
	if err != nil {
		return nil, err
	}
	resp, err := c.schema(responseSchema)
	if err != nil {
		return nil, err
	}
	l, _, err := c.callerLink(ctx, name, o)
	if err != nil {
		return nil, err
	}
	f := &Caller{conn: c, name: name, o: o, req: req, resp: resp}
	f.link.Store(l)
	return f, nil
}

// Call is Conn.Call through the resolved function (resolving it again if its link is gone).
func (f *Caller) Call(ctx context.Context, req, resp any) error {
	datum, err := f.CallRaw(ctx, req)
	if err != nil {
		return err
	}
	return decodeDatum("the response", f.resp, datum, resp)
}

// CallRaw is Conn.CallRaw through the resolved function.
func (f *Caller) CallRaw(ctx context.Context, req any) ([]byte, error) {
	return f.conn.callRaw(ctx, f.name, f.o, f.req, req, &f.link)
}

// RawRequest is a request datum already in Avro binary, for CallRaw and Call.
type RawRequest []byte

// schema parses (and caches) a schema used by Call.
func (c *Conn) schema(text string) (*avro.Schema, error) {
	if s, ok := schemaCache.Load(text); ok {
		return s.(*avro.Schema), nil
	}
	s, err := parseSchema("the schema", text)
	if err != nil {
		return nil, err
	}
	schemaCache.Store(text, s)
	return s, nil
}

var schemaCache sync.Map
