// Sealing as a connection does it (bootstrap.md §5.5): what reaches the request ring, read back off a
// slot in private memory, carries each key sealed with the id of its own record, and Connect refuses a
// broker public key it cannot use (a fake broker in this process answers Register). The vectors are
// checked in spec_test.go, keys against the real broker in e2e_test.go.

package ring

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSlot is a connection on an app slot in private memory, with no broker: its requests stay in the
// request ring for the test to read.
func fakeSlot(t *testing.T, s *session) *Conn {
	t.Helper()
	const capacity = minRingCapacity
	seg := fuzzSegment(controlSlotSize(capacity), nil)
	seg.store64(slotRequestRing+ringCapacity, capacity)
	req, err := openRing(seg, slotRequestRing, capacity, frameKindControl)
	if err != nil {
		t.Fatal(err)
	}
	return &Conn{ns: "fake", ctl: seg, reqRing: req, appBell: doorbellAt(seg, slotDoorbell),
		brokerBell: doorbellAt(seg, slotDoorbell), session: s, reqs: requests{pending: map[int64]*pendingRequest{}}}
}

// sent is the next record in the fake slot's request ring.
func sent(t *testing.T, c *Conn) any {
	t.Helper()
	rec, ok, err := c.reqRing.peek()
	if err != nil || !ok {
		t.Fatalf("nothing in the request ring (%v)", err)
	}
	c.reqRing.head += rec.size
	out, err := decodeControl(rec.payload)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEveryKeyGoesOutSealedWithItsOwnRequestID(t *testing.T) {
	priv, err := newKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := newKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := openSession(priv, peer.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	c := fakeSlot(t, s)
	key, other := "s3cret", ""
	records := []any{
		ctlPublishChannel{Name: "a", Schema: `"long"`, Key: keyField(&key)},
		ctlSubscribe{Name: "a", Schema: `"long"`, Key: keyField(&key)},
		ctlExposeFunction{Name: "f", RequestSchema: `"int"`, ResponseSchema: `"int"`, Key: keyField(&key)},
		ctlResolveFunction{Name: "f", RequestSchema: `"int"`, ResponseSchema: `"int"`, Key: keyField(&key)},
		ctlSubscribe{Name: "a", Schema: `"long"`, Key: keyField(&other)},
		ctlSubscribe{Name: "a", Schema: `"long"`, Key: keyField(nil)},
	}
	seen := map[string]bool{}
	for i, rec := range records {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := c.request(ctx, rec, nil)
		cancel()
		errCode(t, err, CodeTimeout) // nobody answers: what counts is what was written
		var id int64
		var field *[]byte
		switch r := sent(t, c).(type) {
		case ctlPublishChannel:
			id, field = r.RequestID, r.Key
		case ctlSubscribe:
			id, field = r.RequestID, r.Key
		case ctlExposeFunction:
			id, field = r.RequestID, r.Key
		case ctlResolveFunction:
			id, field = r.RequestID, r.Key
		default:
			t.Fatalf("record %d went out as %T", i, r)
		}
		if id != int64(i+1) {
			t.Errorf("record %d went out with request id %d", i, id)
		}
		clearKey := reflectKey(rec)
		switch {
		case clearKey == nil:
			if field != nil {
				t.Errorf("record %d: no key went out as %x, not null", i, *field)
			}
		case field == nil || len(*field) != len(*clearKey):
			t.Errorf("record %d: key %q went out as %v", i, *clearKey, field)
		default:
			if len(*clearKey) > 0 && bytes.Equal(*field, *clearKey) {
				t.Errorf("record %d: key %q went out in clear", i, *clearKey)
			}
			if back := s.seal(id, *field); !bytes.Equal(back, *clearKey) {
				t.Errorf("record %d: key %q unseals to %q with its own id %d", i, *clearKey, back, id)
			}
			if seen[string(*field)] && len(*field) > 0 {
				t.Errorf("record %d: the same sealed bytes %x went out twice", i, *field)
			}
			seen[string(*field)] = true
		}
	}
}

// reflectKey is the clear key a record was built with.
func reflectKey(rec any) *[]byte {
	switch r := rec.(type) {
	case ctlPublishChannel:
		return r.Key
	case ctlSubscribe:
		return r.Key
	case ctlExposeFunction:
		return r.Key
	case ctlResolveFunction:
		return r.Key
	}
	return nil
}

func TestEveryRegistrationMakesAFreshKeyPair(t *testing.T) {
	seen := map[string]bool{}
	for range 8 {
		priv, err := newKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		pub := priv.PublicKey().Bytes()
		if len(pub) != publicKeyLen || seen[string(pub)] {
			t.Fatalf("key pair %x is not a fresh 32-byte X25519 key", pub)
		}
		seen[string(pub)] = true
	}
}

// fakeBroker is this test process playing the broker of namespace ns: a control segment with one app
// slot, whose Register it answers with Registered carrying brokerPublic. seen gets every record the
// app writes after it (or an error).
type fakeBroker struct {
	seg  *segment
	seen chan any
}

func startFakeBroker(t *testing.T, ns string, brokerPublic []byte) *fakeBroker {
	t.Helper()
	const capacity = minRingCapacity
	path := "/dev/shm/impulse-ring." + ns + ".ctl"
	size := controlSegmentSize(1, capacity)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Cleanup(func() { _ = os.Remove(path) })
	if err := f.Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	seg := &segment{name: path[len("/dev/shm"):], mem: mem}
	pid := os.Getpid()
	seg.store32(segMagic, segMagicValue)
	seg.store32(segKind, kindControl)
	seg.store64(segSize, size)
	seg.store32(segCreatorPid, uint32(pid))
	seg.store64(segCreatorStart, startTime(pid))
	seg.store32(ctlBrokerPid, uint32(pid))
	seg.store64(ctlBrokerStart, startTime(pid))
	seg.store32(ctlMaxApps, 1)
	seg.store32(ctlRingCapacity, capacity)
	reqBase := uint64(ctlSlots + slotRequestRing)
	replyBase := reqBase + ringHeaderSize + capacity
	seg.store64(reqBase+ringCapacity, capacity)
	seg.store64(replyBase+ringCapacity, capacity)
	seg.store32(segVersion, specVersion) // last: the segment is ready
	req, err1 := openRing(seg, reqBase, capacity, frameKindControl)
	reply, err2 := openRing(seg, replyBase, capacity, frameKindControl)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	b := &fakeBroker{seg: seg, seen: make(chan any, 16)}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		<-done
		seg.unmap()
	})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			rec, ok, err := req.peek()
			if err != nil {
				b.seen <- err
				return
			}
			if !ok {
				time.Sleep(time.Millisecond)
				continue
			}
			r, err := decodeControl(rec.payload)
			req.release(rec)
			if err != nil {
				b.seen <- err
				return
			}
			if reg, ok := r.(ctlRegister); ok {
				out := encodeControl(nil, ctlRegistered{RequestID: reg.RequestID, AppID: 0, BrokerPid: int64(pid),
					PublicKey: brokerPublic})
				if err := reply.write(frameKindControl, 0, out); err != nil {
					b.seen <- err
					return
				}
				doorbellAt(seg, ctlSlots+slotDoorbell).ring()
			}
			b.seen <- r
		}
	}()
	return b
}

func (b *fakeBroker) next(t *testing.T) any {
	t.Helper()
	select {
	case r := <-b.seen:
		if err, ok := r.(error); ok {
			t.Fatal(err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the app wrote nothing more")
		return nil
	}
}

func TestConnectRefusesABrokerPublicKeyOfSmallOrderOrWrongLength(t *testing.T) {
	cases := map[string]struct {
		key  []byte
		says string
	}{
		"zero":  {make([]byte, 32), "is a point of small order"},
		"one":   {append([]byte{1}, make([]byte, 31)...), "is a point of small order"},
		"short": {make([]byte, 31), "is 31 bytes, expected 32"},
		"empty": {nil, "is 0 bytes, expected 32"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ns := testNamespace(t)
			b := startFakeBroker(t, ns, c.key)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := Connect(ctx, "victim", WithNamespace(ns))
			if err == nil {
				conn.Close()
			}
			e := errCode(t, err, CodeProtocol)
			if !strings.Contains(e.Message, c.says) {
				t.Errorf("%q does not say %q", e.Message, c.says)
			}
			reg, ok := b.next(t).(ctlRegister)
			if !ok || len(reg.PublicKey) != publicKeyLen || reg.RequestID == 0 {
				t.Fatalf("the app registered with %+v", reg)
			}
			// The broker did register the app: it must unregister, not leave the slot taken.
			if r, ok := b.next(t).(ctlUnregister); !ok {
				t.Errorf("after the refusal the app wrote %#v, expected Unregister", r)
			}
		})
	}
}
