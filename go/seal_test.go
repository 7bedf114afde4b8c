// Sealing as requests do it (bootstrap.md §5.5): what reaches the request ring, read back off a slot in
// private memory, carries each key sealed with the id of its own record. The vectors are checked in
// spec_test.go; the broker's side of it in e2e_test.go.

package ring

import (
	"bytes"
	"context"
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
