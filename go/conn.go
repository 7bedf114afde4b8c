// Connections (spec/bootstrap.md §5): finding the broker of a namespace, claiming an app slot,
// registering, and the reactor goroutine that reads the reply ring and the app's call links, watches
// the broker, and sleeps on the app slot's doorbell when there is nothing to do.

package ring

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a connection to the broker of one namespace. Its methods are safe for concurrent use.
type Conn struct {
	ns      string
	appName string
	ctl     *segment
	appID   uint32
	maxApps uint32
	slot    uint64 // offset of our slot in the control segment
	slotSz  uint64
	// generation is the slot's generation at the claim; once it moves (or the slot is FENCED) the
	// broker has dropped this app and the slot is no longer ours (bootstrap.md §3.2).
	generation uint32
	wait       WaitStrategy

	brokerPid   uint32
	brokerStart uint64

	reqRing    *spsc // app -> broker; writers hold reqMu
	replyRing  *spsc // broker -> app; read by the reactor only
	appBell    doorbell
	brokerBell doorbell
	reqMu      sync.Mutex
	reqBuf     []byte
	unmapped   bool // under reqMu: the control segment is unmapped, nothing may post
	reqs       requests
	// session seals the access keys of this registration (bootstrap.md §5.5); set by Connect, then
	// only read.
	session *session

	gone   atomic.Bool // the broker is gone
	fence  atomic.Bool // the broker fenced us off our slot (gone is set too)
	closed atomic.Bool
	stop   atomic.Bool // asks the reactor to return
	done   chan struct{}

	// Call links: the reactor reads them; the snapshot is replaced, never changed, under linkMu.
	linkMu    sync.Mutex
	links     atomic.Pointer[[]*link]
	callers   map[callKey]*link // links this app calls through, by function and schemas
	functions map[int64]*function
	serving   sync.WaitGroup // handler goroutines in flight
	serveCtx  context.Context
	cancel    context.CancelFunc

	endpointsMu sync.Mutex
	endpoints   map[closer]struct{}

	monMu   sync.Mutex
	monitor chan MonitorEvent // Monitor's events; closed by Close
}

type closer interface{ closeLocal() }

// Connect registers the app appName with the broker of the namespace (WithNamespace, else the
// IMPULSE_RING_NS environment variable, else "impulse") and starts the connection's reactor.
//
// Each connection makes a fresh X25519 key pair and agrees a session secret with the broker, which
// seals every access key it presents (bootstrap.md §5.5).
//
// It blocks for the registration, at most 10 s (or until ctx is done). Errors: ErrInvalidArgument
// (namespace, app name), ErrNoBroker (no broker, naming the namespace), ErrLimitReached (no free app
// slot), ErrVersionMismatch, ErrCorrupt, ErrProtocol (the broker's public key is not 32 bytes or is a
// point of small order). Close releases the connection.
func Connect(ctx context.Context, appName string, opts ...Option) (*Conn, error) {
	o := collect(opts)
	ns := o.namespace
	if ns == "" {
		ns = os.Getenv("IMPULSE_RING_NS")
	}
	if ns == "" {
		ns = "impulse"
	}
	if !validNamespace(ns) {
		return nil, newError(CodeInvalidArgument,
			"invalid namespace %q: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'", ns)
	}
	if len(appName) == 0 || len(appName) > 128 {
		return nil, newError(CodeInvalidArgument, "app name must be 1 to 128 bytes, not %d", len(appName))
	}
	// A fresh key pair for this registration (bootstrap.md §5.5); the private key never leaves Connect.
	priv, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	ctl, err := openControl(ctx, ns)
	if err != nil {
		return nil, err
	}
	c := &Conn{ns: ns, appName: appName, ctl: ctl, wait: o.wait, done: make(chan struct{}),
		callers: map[callKey]*link{}, functions: map[int64]*function{}, endpoints: map[closer]struct{}{}}
	c.reqs.pending = map[int64]*pendingRequest{}
	c.links.Store(&[]*link{})
	c.serveCtx, c.cancel = context.WithCancel(context.Background())
	if err := c.claim(); err != nil {
		ctl.unmap()
		return nil, err
	}
	go c.reactor()
	pid := os.Getpid()
	rec, err := c.request(ctx, ctlRegister{AppName: appName, Pid: int64(pid), StartTime: int64(startTime(pid)),
		PublicKey: priv.PublicKey().Bytes()}, nil)
	if err == nil {
		if r, ok := rec.(ctlRegistered); !ok || uint32(r.AppID) != c.appID {
			err = newError(CodeProtocol, "the broker answered Register with %T", rec)
		} else {
			c.session, err = openSession(priv, r.PublicKey)
		}
	}
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeBrokerGone {
			err = c.noBroker()
		}
		c.shutdown(!c.gone.Load())
		return nil, err
	}
	return c, nil
}

func validNamespace(ns string) bool {
	if len(ns) == 0 || len(ns) > 64 {
		return false
	}
	for _, r := range ns {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func (c *Conn) noBroker() *Error {
	return &Error{Code: CodeNoBroker, Message: fmt.Sprintf("no broker is running in namespace `%s`", c.ns),
		Namespace: c.ns}
}

// openControl is steps 1 to 3 of bootstrap.md §5.1.
func openControl(ctx context.Context, ns string) (*segment, error) {
	noBroker := &Error{Code: CodeNoBroker, Message: fmt.Sprintf("no broker is running in namespace `%s`", ns),
		Namespace: ns}
	name := "/impulse-ring." + ns + ".ctl"
	deadline := time.Now().Add(time.Second)
	for {
		s, err := openSegment(name, kindControl)
		if err == errNotFound {
			return nil, noBroker
		}
		if err == errNotReady {
			// A broker is starting: retry for up to a second.
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, noBroker
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		maxApps := uint64(s.load32(ctlMaxApps))
		capacity := uint64(s.load32(ctlRingCapacity))
		if maxApps < 1 || maxApps > maxMaxApps || !validCapacity(capacity) ||
			controlSegmentSize(maxApps, capacity) != s.size() {
			s.unmap()
			return nil, corrupt("control segment of namespace `%s`: %d app slots of %d-byte rings do not make %d bytes",
				ns, maxApps, capacity, s.size())
		}
		if !alive(s.load32(ctlBrokerPid), s.load64(ctlBrokerStart)) || s.load32(ctlShuttingDown) != 0 {
			s.unmap()
			return nil, noBroker
		}
		return s, nil
	}
}

// claim is steps 4 to 6 of bootstrap.md §5.1.
func (c *Conn) claim() error {
	s := c.ctl
	c.maxApps = s.load32(ctlMaxApps)
	capacity := uint64(s.load32(ctlRingCapacity))
	c.slotSz = controlSlotSize(capacity)
	c.brokerPid, c.brokerStart = s.load32(ctlBrokerPid), s.load64(ctlBrokerStart)
	c.brokerBell = doorbellAt(s, ctlBrokerDoorbell)
	for i := uint32(0); i < c.maxApps; i++ {
		slot := ctlSlots + uint64(i)*c.slotSz
		// SYNC: claim slot (the CAS pairs with the broker's Release store of FREE: the rings are reset).
		if !atomicCAS32(s.word32(slot+slotState), slotFree, slotClaimed) {
			continue
		}
		c.appID, c.slot = i, slot
		// Stable until the broker fences or frees the slot: the CAS saw its last bump.
		c.generation = s.load32(slot + slotGeneration)
		pid := os.Getpid()
		s.store32(slot+slotPid, uint32(pid))
		s.store64(slot+slotStart, startTime(pid))
		c.appBell = doorbellAt(s, slot+slotDoorbell)
		var err error
		if c.reqRing, err = openRing(s, slot+slotRequestRing, capacity, frameKindControl); err == nil {
			c.replyRing, err = openRing(s, slot+slotRequestRing+ringHeaderSize+capacity, capacity, frameKindControl)
		}
		if err != nil {
			return err
		}
		return nil
	}
	return newError(CodeLimitReached, "all %d app slots of namespace `%s` are taken", c.maxApps, c.ns)
}

// Namespace is the namespace the connection is in.
func (c *Conn) Namespace() string { return c.ns }

// AppID is the app's id on this broker (its slot index).
func (c *Conn) AppID() uint32 { return c.appID }

// BrokerGone says whether the broker has died or shut down; every later request fails with
// ErrBrokerGone. It does not block.
func (c *Conn) BrokerGone() bool { return c.gone.Load() }

func (c *Conn) brokerGoneError() *Error {
	if c.fence.Load() {
		return &Error{Code: CodeBrokerGone, Namespace: c.ns, Message: fmt.Sprintf(
			"the broker of namespace `%s` dropped this app and fenced its slot %d (it broke the protocol); connect again",
			c.ns, c.appID)}
	}
	return &Error{Code: CodeBrokerGone, Message: fmt.Sprintf("the broker of namespace `%s` is gone", c.ns),
		Namespace: c.ns}
}

// fenced says whether the broker has fenced us off our slot (bootstrap.md §3.2).
func (c *Conn) fenced() bool {
	// SYNC: observe fence (pairs with the broker's Release store of FENCED).
	return c.ctl.load32(c.slot+slotState) == slotFenced || c.ctl.load32(c.slot+slotGeneration) != c.generation
}

// checkFence marks the broker gone for us once we are fenced; whether we are.
func (c *Conn) checkFence() bool {
	if !c.fenced() {
		return false
	}
	c.fence.Store(true)
	c.markGone()
	return true
}

func (c *Conn) brokerAlive() bool {
	return alive(c.brokerPid, c.brokerStart)
}

// markGone records that the broker is gone and fails everything that waits on it.
func (c *Conn) markGone() {
	if c.gone.Swap(true) {
		return
	}
	c.failRequests()
	c.failAllCalls(c.brokerGoneError())
}

// appBellOf is the app-slot doorbell of app a (wire-format.md §8.2); a < maxApps was checked.
func (c *Conn) appBellOf(a uint32) doorbell {
	return doorbellAt(c.ctl, ctlSlots+uint64(a)*c.slotSz+slotDoorbell)
}

// List asks the broker what is on the bus. It blocks for the reply (at most 10 s or until ctx is
// done). Errors: ErrBrokerGone, ErrTimeout.
func (c *Conn) List(ctx context.Context) (*Listing, error) {
	rec, err := c.request(ctx, ctlList{}, nil)
	if err != nil {
		return nil, err
	}
	l, ok := rec.(ctlListing)
	if !ok {
		return nil, newError(CodeProtocol, "the broker answered List with %T", rec)
	}
	return &Listing{Apps: l.Apps, Channels: l.Channels, Functions: l.Functions}, nil
}

// Describe asks the broker about the channel and the function named name (or, with an empty name,
// about the channel or function whose id is id): the schema JSON, the owner and live figures. It
// blocks for the reply (at most 10 s or until ctx is done). Errors: ErrUnknownChannel (nothing of that
// name or id), ErrBrokerGone, ErrTimeout.
func (c *Conn) Describe(ctx context.Context, name string, id int64) (*Description, error) {
	rec, err := c.request(ctx, ctlDescribe{Name: name, ID: id}, nil)
	if err != nil {
		return nil, err
	}
	d, ok := rec.(ctlDescription)
	if !ok {
		return nil, newError(CodeProtocol, "the broker answered Describe with %T", rec)
	}
	return &Description{Channels: d.Channels, Functions: d.Functions}, nil
}

// Monitor asks the broker for every control-plane event from now until the connection closes; they
// arrive on the returned Go channel (buffered; events that find it full are dropped, so a slow reader
// never stalls the connection). It blocks for the broker's reply. Errors: ErrBrokerGone, ErrTimeout.
func (c *Conn) Monitor(ctx context.Context) (<-chan MonitorEvent, error) {
	c.monMu.Lock()
	if c.monitor == nil {
		c.monitor = make(chan MonitorEvent, 1024)
	}
	ch := c.monitor
	c.monMu.Unlock()
	if _, err := c.request(ctx, ctlMonitor{}, nil); err != nil {
		return nil, err
	}
	return ch, nil
}

func (c *Conn) monitorEvent(e MonitorEvent) {
	c.monMu.Lock()
	defer c.monMu.Unlock()
	if c.monitor == nil {
		return
	}
	select {
	case c.monitor <- e:
	default:
	}
}

// reactor runs until Close: it reads replies and events, call responses and call requests, and checks
// the broker's liveness at least every 200 ms.
func (c *Conn) reactor() {
	defer close(c.done)
	lastCheck := time.Now()
	for !c.stop.Load() {
		if !c.gone.Load() {
			c.checkFence()
		}
		busy := c.poll()
		if time.Since(lastCheck) >= maxSleep {
			lastCheck = time.Now()
			if !c.gone.Load() && (!c.brokerAlive() || c.ctl.load32(ctlShuttingDown) != 0) {
				c.markGone()
			}
		}
		if busy {
			// A call response made its caller's goroutine runnable on this P: let it run now rather
			// than after our next spin.
			runtime.Gosched()
			continue
		}
		// The reactor never busy-spins for good: that would take a core from the app's own goroutines.
		strategy := Adaptive
		if c.wait == Blocking {
			strategy = Blocking
		}
		c.appBell.wait(strategy, time.Now().Add(maxSleep), c.hasWork, c.stop.Load)
	}
}

// hasWork is the reactor's wake condition: a pure check of the rings it reads.
func (c *Conn) hasWork() bool {
	if !c.gone.Load() && (c.replyRing.hasData() || c.fenced()) {
		return true
	}
	for _, l := range *c.links.Load() {
		if l.hasWork() {
			return true
		}
	}
	return false
}

// poll does one turn of work; it reports whether there was any.
func (c *Conn) poll() bool {
	busy := false
	for n := 0; n < 64 && !c.gone.Load(); n++ {
		rec, ok, err := c.replyRing.peek()
		if err != nil {
			c.markGone() // a corrupt reply ring: the broker is gone (wire-format.md §4.3)
			break
		}
		if !ok {
			break
		}
		busy = true
		decoded, derr := decodeControl(rec.payload)
		if c.replyRing.release(rec) {
			c.brokerBell.ring()
		}
		if derr != nil {
			msg := derr.Error()
			c.failRequestsWith(ctlFailed{Code: int32(CodeProtocol), Message: "the broker sent a record that does not decode: " + msg})
			continue
		}
		c.handleControl(decoded)
	}
	for _, l := range *c.links.Load() {
		if l.poll(c) {
			busy = true
		}
	}
	return busy
}

func (c *Conn) handleControl(rec any) {
	if f, ok := rec.(ctlFailed); ok && f.RequestID == 0 {
		c.failRequestsWith(f)
		return
	}
	if id, ok := requestID(rec); ok {
		c.deliverReply(id, rec)
		return
	}
	switch r := rec.(type) {
	case ctlLinkOpened:
		c.linkOpened(r)
	case ctlLinkClosed:
		c.linkClosed(r.LinkID, &Error{Code: codeOf(r.Code), Message: r.Message})
	case ctlBrokerShutdown:
		c.markGone()
	case ctlMonitorEvent:
		c.monitorEvent(MonitorEvent(r))
	}
}

// Close unregisters the app: the broker closes its channels and functions and frees its slot. Open
// publishers, subscribers and functions of the connection are closed first. Close waits for handlers
// in flight to return (their contexts are cancelled). It is idempotent.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.endpointsMu.Lock()
	eps := make([]closer, 0, len(c.endpoints))
	for e := range c.endpoints {
		eps = append(eps, e)
	}
	c.endpoints = map[closer]struct{}{}
	c.endpointsMu.Unlock()
	for _, e := range eps {
		e.closeLocal()
	}
	c.shutdown(true)
	return nil
}

// shutdown stops the reactor and the handlers, posts Unregister (unless told not to) and unmaps.
// Nothing touches the slot once Unregister is posted: its next owner's rings would be corrupted.
func (c *Conn) shutdown(unregister bool) {
	c.closed.Store(true)
	c.stop.Store(true)
	c.appBell.wakeAll()
	<-c.done
	c.cancel()
	c.serving.Wait()
	c.failAllCalls(newError(CodeClosed, "the connection is closed"))
	c.failRequests()
	if unregister && !c.gone.Load() {
		c.reqs.mu.Lock()
		c.reqs.next++
		id := c.reqs.next // never 0, which is reserved (bootstrap.md §4.1)
		c.reqs.mu.Unlock()
		_ = c.post(context.Background(), ctlUnregister{RequestID: id})
	}
	c.linkMu.Lock()
	for _, l := range *c.links.Load() {
		l.unmap()
	}
	c.links.Store(&[]*link{})
	c.linkMu.Unlock()
	c.reqMu.Lock()
	c.unmapped = true
	c.ctl.unmap()
	c.reqMu.Unlock()
	c.monMu.Lock()
	if c.monitor != nil {
		close(c.monitor)
		c.monitor = nil
	}
	c.monMu.Unlock()
}

func (c *Conn) track(e closer) {
	c.endpointsMu.Lock()
	c.endpoints[e] = struct{}{}
	c.endpointsMu.Unlock()
}

func (c *Conn) untrack(e closer) {
	c.endpointsMu.Lock()
	delete(c.endpoints, e)
	c.endpointsMu.Unlock()
}
