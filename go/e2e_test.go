// End-to-end tests against a live broker: every API call and its error paths, killed peers (publisher,
// provider, broker), many goroutines at once under the race detector, corrupt shared memory, and the
// zero-allocation raw paths. Each test has a broker and a namespace of its own.

package ring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	metricSchema = `{"type":"record","name":"Metric","namespace":"test","fields":[
    {"name":"name","type":"string"},{"name":"value","type":"double"},{"name":"seq","type":"long"}]}`
	otherMetricSchema = `{"type":"record","name":"Metric","namespace":"test","fields":[
    {"name":"name","type":"string"},{"name":"value","type":"float"},{"name":"seq","type":"long"}]}`
	addReqSchema  = `{"type":"record","name":"AddRequest","namespace":"e2e","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`
	addRespSchema = `{"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]}`
	// The testee's schemas, for tests that run it.
	messageSchema = `{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"bytes"},{"name":"checksum","type":"long"}]}`
)

type metric struct {
	Name  string  `avro:"name"`
	Value float64 `avro:"value"`
	Seq   int64   `avro:"seq"`
}

type addReq struct {
	A int64 `avro:"a"`
	B int64 `avro:"b"`
}

type addResp struct {
	Sum int64 `avro:"sum"`
}

func timeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	_ = cancel // released at the deadline
	return ctx
}

func TestConnectWithoutBrokerNamesTheNamespace(t *testing.T) {
	ns := testNamespace(t)
	_, err := Connect(context.Background(), "lonely", WithNamespace(ns))
	e := errCode(t, err, CodeNoBroker)
	if e.Namespace != ns || !strings.Contains(e.Error(), ns) {
		t.Errorf("NoBroker does not name namespace %s: %v", ns, e)
	}
	if !errors.Is(err, ErrNoBroker) {
		t.Error("errors.Is(err, ErrNoBroker) is false")
	}
}

func TestConnectRefusesInvalidNamespaceAndAppName(t *testing.T) {
	_, err := Connect(context.Background(), "app", WithNamespace("a.b"))
	errCode(t, err, CodeInvalidArgument)
	_, err = Connect(context.Background(), "app", WithNamespace(strings.Repeat("x", 65)))
	errCode(t, err, CodeInvalidArgument)
	b := startBroker(t)
	_, err = Connect(context.Background(), "", WithNamespace(b.ns))
	errCode(t, err, CodeInvalidArgument)
}

func TestPublishAndSubscribeTypedAndRawInOrder(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "pubsub")
	pub, err := conn.PublishChannel("metrics", metricSchema, WithCapacity(8192))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("metrics", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000 // many wraps of an 8 KiB ring, with the subscriber as the gate
	done := make(chan error, 1)
	go func() {
		for i := int64(0); i < n; i++ {
			if err := pub.Publish(&metric{Name: fmt.Sprintf("m%d", i), Value: float64(i) / 2, Seq: i}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := int64(0); i < n; i++ {
		var m metric
		if err := sub.Recv(timeout(10*time.Second), &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Seq != i || m.Name != fmt.Sprintf("m%d", i) || m.Value != float64(i)/2 {
			t.Fatalf("message %d arrived as %+v", i, m)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Raw: a datum built by the library, published and received without encoding.
	datum, _ := mustSchema(t, metricSchema).Encode(&metric{Name: "raw", Value: 1, Seq: 7})
	if err := pub.PublishRaw(datum); err != nil {
		t.Fatal(err)
	}
	got, err := sub.RecvRaw(timeout(5*time.Second), make([]byte, 0, 64))
	if err != nil || string(got) != string(datum) {
		t.Fatalf("raw datum %x (%v), expected %x", got, err, datum)
	}
	// A view hands the datum in place; the error of its function comes back.
	if err := pub.PublishRaw(datum); err != nil {
		t.Fatal(err)
	}
	var viewed string
	if err := sub.RecvView(timeout(5*time.Second), func(d []byte) error { viewed = string(d); return nil }); err != nil ||
		viewed != string(datum) {
		t.Fatalf("viewed %x (%v), expected %x", viewed, err, datum)
	}
	if err := pub.PublishRaw(datum); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	if err := sub.RecvView(timeout(5*time.Second), func([]byte) error { return refused }); err != refused {
		t.Fatalf("RecvView returned %v, not its function's error", err)
	}
	listing, err := conn.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(listing.Channels) != 1 || listing.Channels[0].Name != "metrics" || listing.Channels[0].Subscribers != 1 ||
		listing.Channels[0].Published != n+3 {
		t.Errorf("listing shows %+v", listing.Channels)
	}
}

func TestSubscribeErrorsAreTyped(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "errors")
	_, err := conn.Subscribe("nobody", metricSchema)
	errCode(t, err, CodeUnknownChannel)
	if _, err := conn.PublishChannel("keyed", metricSchema, WithKey("s3cret")); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Subscribe("keyed", metricSchema)
	errCode(t, err, CodeWrongKey)
	_, err = conn.Subscribe("keyed", metricSchema, WithKey("wrong"))
	errCode(t, err, CodeWrongKey)
	_, err = conn.Subscribe("keyed", otherMetricSchema, WithKey("s3cret"))
	e := errCode(t, err, CodeSchemaMismatch)
	want, _ := Fingerprint(metricSchema)
	got, _ := Fingerprint(otherMetricSchema)
	if e.Expected != want || e.Presented != got || !strings.Contains(e.Error(), fp(want)) ||
		!strings.Contains(e.Error(), fp(got)) {
		t.Errorf("SchemaMismatch does not carry both fingerprints: %+v", e)
	}
	_, err = conn.Subscribe("keyed", `{"type":"recor`, WithKey("s3cret"))
	errCode(t, err, CodeInvalidSchema)
	_, err = conn.PublishChannel("keyed", metricSchema)
	errCode(t, err, CodeNameTaken)
	_, err = conn.PublishChannel("", metricSchema)
	errCode(t, err, CodeInvalidArgument)
	_, err = conn.PublishChannel("odd", metricSchema, WithCapacity(5000))
	errCode(t, err, CodeInvalidArgument)
	sub, err := conn.Subscribe("keyed", metricSchema, WithKey("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	errCode(t, sub.Recv(context.Background(), &metric{}), CodeClosed)
}

func TestPublishErrorsAreTyped(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "full")
	pub, err := conn.PublishChannel("small", messageSchema, WithCapacity(4096), WithSendTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	errCode(t, pub.PublishRaw(make([]byte, pub.MaxDatum()+1)), CodeTooLarge)
	errCode(t, pub.Publish(&metric{}), CodeInvalidArgument)
	sub, err := conn.Subscribe("small", messageSchema)
	if err != nil {
		t.Fatal(err)
	}
	// The subscriber reads nothing: the ring fills, and a non-waiting publish says WouldBlock.
	datum := make([]byte, 500)
	var published int
	for ; published < 100; published++ {
		if err = pub.PublishRaw(datum); err != nil {
			break
		}
	}
	errCode(t, err, CodeWouldBlock)
	if published == 0 || published > 8 {
		t.Errorf("%d messages of 500 bytes fitted a 4 KiB ring", published)
	}
	// A subscriber that reads frees the space.
	if _, err := sub.RecvRaw(timeout(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishRaw(datum); err != nil {
		t.Fatalf("after a read: %v", err)
	}
	// A publish with a send timeout waits, then says Timeout.
	waiting, err := conn.PublishChannel("waiting", messageSchema, WithCapacity(4096),
		WithSendTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Subscribe("waiting", messageSchema); err != nil {
		t.Fatal(err)
	}
	for err = nil; err == nil; {
		err = waiting.PublishRaw(datum)
	}
	errCode(t, err, CodeTimeout)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	errCode(t, pub.PublishRaw(datum), CodeClosed)
}

func TestSubscriberDrainsThenSeesClosed(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "closer")
	pub, err := conn.PublishChannel("ending", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	other := b.connect(t, "reader")
	sub, err := other.Subscribe("ending", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 10; i++ {
		if err := pub.Publish(&metric{Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for m := range sub.Messages() {
		var v metric
		if err := m.Decode(&v); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, v.Seq)
	}
	if len(seqs) != 10 || seqs[9] != 9 {
		t.Errorf("received %v before the close", seqs)
	}
	errCode(t, sub.Err(), CodeClosed)
}

func TestLossySubscriberCountsWhatItMissed(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "lossy")
	pub, err := conn.PublishChannel("fast", metricSchema, WithCapacity(4096), Lossy())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("fast", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000 // laps a 4 KiB ring many times over
	for i := int64(0); i < n; i++ {
		if err := pub.Publish(&metric{Name: "x", Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	var received, missed uint64
	next := int64(0)
	for int64(received+missed) < n {
		var m metric
		err := sub.Recv(timeout(5*time.Second), &m)
		var e *Error
		switch {
		case err == nil:
			if m.Seq != next {
				t.Fatalf("expected message %d, got %d", next, m.Seq)
			}
			received++
			next++
		case errors.As(err, &e) && e.Code == CodeLagged:
			missed += e.Missed
			next += int64(e.Missed)
		default:
			t.Fatal(err)
		}
	}
	if received+missed != n || missed == 0 || received == 0 {
		t.Errorf("received %d + missed %d, published %d", received, missed, n)
	}
}

func TestManyGoroutinesPublishAndCallAtOnce(t *testing.T) {
	b := startBroker(t)
	provider := b.connect(t, "provider")
	if _, err := provider.ExposeFunction("add", addReqSchema, addRespSchema,
		func(ctx context.Context, r *Request) (any, error) {
			var req addReq
			if err := r.Decode(&req); err != nil {
				return nil, err
			}
			return &addResp{Sum: req.A + req.B}, nil
		}); err != nil {
		t.Fatal(err)
	}
	caller := b.connect(t, "caller")
	pub, err := caller.PublishChannel("shared", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := provider.Subscribe("shared", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var resp addResp
				err := caller.Call(timeout(10*time.Second), "add", &addReq{A: int64(g), B: int64(i)}, &resp,
					WithSchemas(addReqSchema, addRespSchema))
				if err != nil || resp.Sum != int64(g+i) {
					errs <- fmt.Errorf("call %d+%d = %d: %v", g, i, resp.Sum, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := pub.Publish(&metric{Name: "g", Seq: int64(g)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	count := map[int64]int{}
	for i := 0; i < goroutines*each; i++ {
		var m metric
		if err := sub.Recv(timeout(10*time.Second), &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		count[m.Seq]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for g := int64(0); g < goroutines; g++ {
		if count[g] != each {
			t.Errorf("goroutine %d: %d messages arrived, %d published", g, count[g], each)
		}
	}
}

func TestCallErrorsAreTyped(t *testing.T) {
	b := startBroker(t)
	provider := b.connect(t, "provider")
	fn, err := provider.ExposeFunction("div", addReqSchema, addRespSchema,
		func(ctx context.Context, r *Request) (any, error) {
			var req addReq
			if err := r.Decode(&req); err != nil {
				return nil, err
			}
			switch req.B {
			case 0:
				return nil, errors.New("division by zero")
			case -1:
				panic("the handler broke")
			case -2:
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return &addResp{Sum: req.A / req.B}, nil
		}, WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = provider.ExposeFunction("div", addReqSchema, addRespSchema, nil)
	errCode(t, err, CodeNameTaken)
	caller := b.connect(t, "caller")
	schemas := WithSchemas(addReqSchema, addRespSchema)
	var resp addResp
	errCode(t, caller.Call(context.Background(), "mul", &addReq{}, &resp, schemas), CodeUnknownFunction)
	errCode(t, caller.Call(context.Background(), "div", &addReq{}, &resp, schemas), CodeWrongKey)
	errCode(t, caller.Call(context.Background(), "div", &addReq{}, &resp, WithKey("k")), CodeInvalidArgument)
	err = caller.Call(context.Background(), "div", &addReq{}, &resp, WithKey("k"),
		WithSchemas(addReqSchema, metricSchema))
	errCode(t, err, CodeSchemaMismatch)
	if err := caller.Call(timeout(5*time.Second), "div", &addReq{A: 9, B: 3}, &resp, schemas, WithKey("k")); err != nil ||
		resp.Sum != 3 {
		t.Fatalf("9/3 = %d: %v", resp.Sum, err)
	}
	err = caller.Call(timeout(5*time.Second), "div", &addReq{A: 1, B: 0}, &resp, schemas, WithKey("k"))
	if e := errCode(t, err, CodeHandlerError); e.Error() != "division by zero" {
		t.Errorf("handler error says %q", e.Error())
	}
	err = caller.Call(timeout(5*time.Second), "div", &addReq{A: 1, B: -1}, &resp, schemas, WithKey("k"))
	if e := errCode(t, err, CodeHandlerError); !strings.Contains(e.Error(), "panicked") {
		t.Errorf("a panicking handler says %q", e.Error())
	}
	err = caller.Call(timeout(100*time.Millisecond), "div", &addReq{A: 1, B: -2}, &resp, schemas, WithKey("k"))
	if e := errCode(t, err, CodeTimeout); !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("a timed-out call does not wrap context.DeadlineExceeded: %v", e)
	}
	// A resolved Caller skips the per-call lookups and gives the same answers.
	div, err := caller.Function(timeout(5*time.Second), "div", addReqSchema, addRespSchema, WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 20; i++ {
		if err := div.Call(timeout(5*time.Second), &addReq{A: 10 * i, B: i}, &resp); err != nil || resp.Sum != 10 {
			t.Fatalf("(10*%d)/%d = %d: %v", i, i, resp.Sum, err)
		}
	}
	errCode(t, div.Call(timeout(5*time.Second), &addReq{A: 1, B: 0}, &resp), CodeHandlerError)
	// A link belongs to the app that resolved it (bootstrap.md §5.3): another app must present the key.
	_, err = b.connect(t, "stranger").Function(timeout(5*time.Second), "div", addReqSchema, addRespSchema)
	errCode(t, err, CodeWrongKey)
	big := make([]byte, 200_000)
	errCode(t, caller.Call(context.Background(), "div", RawRequest(big), &resp, schemas, WithKey("k")), CodeTooLarge)
	// Withdrawing the function fails later calls on the link with PeerGone, then UnknownFunction.
	if err := fn.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = caller.Call(timeout(time.Second), "div", &addReq{A: 1, B: 1}, &resp, schemas, WithKey("k"))
		if errors.Is(err, ErrUnknownFunction) || time.Now().After(deadline) {
			break
		}
		errCode(t, err, CodePeerGone)
		time.Sleep(10 * time.Millisecond)
	}
	errCode(t, err, CodeUnknownFunction)
}

func TestKilledPublisherClosesTheChannel(t *testing.T) {
	b := startBroker(t)
	p := b.testee(t, "publisher", "--channel", "doomed", "--count", "10", "--hold-ms", "60000",
		"--wait-subscribers", "1")
	p.waitLine(t, "ready")
	conn := b.connect(t, "survivor")
	sub, err := conn.Subscribe("doomed", messageSchema)
	if err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, "published 10")
	p.kill()
	received := 0
	for {
		_, err := sub.RecvRaw(timeout(10*time.Second), nil)
		if err != nil {
			errCode(t, err, CodeClosed)
			break
		}
		received++
	}
	if received != 10 {
		t.Errorf("received %d of 10 before Closed", received)
	}
}

func TestKilledProviderFailsPendingCallWithPeerGone(t *testing.T) {
	b := startBroker(t)
	p := b.testee(t, "provider", "--function", "slow", "--sleep-ms", "30000")
	p.waitLine(t, "ready")
	conn := b.connect(t, "caller")
	errs := make(chan error, 1)
	go func() {
		var resp addResp
		errs <- conn.Call(timeout(30*time.Second), "slow", &addReq{A: 1, B: 2}, &resp,
			WithSchemas(`{"type":"record","name":"AddRequest","namespace":"e2e","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`,
				addRespSchema))
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach the handler
	p.kill()
	killed := time.Now()
	select {
	case err := <-errs:
		errCode(t, err, CodePeerGone)
		if d := time.Since(killed); d > time.Second {
			t.Errorf("PeerGone took %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending call did not fail within 5 s of the provider's death")
	}
}

func TestKilledBrokerGivesBrokerGone(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "orphan")
	sub, err := conn.PublishChannel("left", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	_ = sub
	s, err := conn.Subscribe("left", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	b.kill()
	deadline := time.Now().Add(2 * time.Second)
	for !conn.BrokerGone() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !conn.BrokerGone() {
		t.Fatal("the connection did not notice the broker's death within 2 s")
	}
	_, err = conn.List(context.Background())
	e := errCode(t, err, CodeBrokerGone)
	if e.Namespace != b.ns {
		t.Errorf("BrokerGone names %q, not %q", e.Namespace, b.ns)
	}
	errCode(t, s.Recv(timeout(time.Second), &metric{}), CodeBrokerGone)
	_ = conn.Close()
	// A restarted broker cleans up what the dead one left; the cleanup then stops it.
	b.start()
}

func TestCorruptChannelIsReportedNotTrusted(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "victim")
	pub, err := conn.PublishChannel("bent", metricSchema, WithCapacity(4096))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("bent", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(&metric{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	g := sub.ch.seg
	// A frame length past the ring's maximum payload.
	word := g.load64(sub.ch.data)
	g.store64(sub.ch.data, word&^0xFFFFFFFF|0x7FFFFFFF)
	errCode(t, sub.Recv(timeout(time.Second), &metric{}), CodeCorrupt)
	// An unknown frame kind.
	g.store64(sub.ch.data, word&0xFFFFFFFF|99<<32)
	errCode(t, sub.Recv(timeout(time.Second), &metric{}), CodeCorrupt)
	// Repaired, the message is delivered; then a tail a whole ring ahead of the cursor.
	g.store64(sub.ch.data, word)
	if err := sub.Recv(timeout(time.Second), &metric{}); err != nil {
		t.Fatalf("the repaired message: %v", err)
	}
	g.store64(chTail, sub.pos+8192)
	errCode(t, sub.Recv(timeout(time.Second), &metric{}), CodeCorrupt)
	// A corrupt reply ring means the broker is gone (it cannot be trusted any more).
	r := conn.replyRing
	conn.ctl.store64(r.base+ringTail, r.head+(1<<40))
	conn.appBell.wakeAll()
	deadline := time.Now().Add(2 * time.Second)
	for !conn.BrokerGone() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !conn.BrokerGone() {
		t.Error("a corrupt reply ring did not mark the broker gone")
	}
	conn.ctl.store64(r.base+ringTail, r.head)
}

func TestCheckRecordRefusesEveryBadHeader(t *testing.T) {
	data := []uint16{frameKindData}
	cases := []struct {
		off, avail uint64
		len        uint32
		kind       uint16
	}{
		{0, 4096, 100, 0},                    // kind 0
		{0, 4096, 100, 7},                    // unknown kind
		{0, 4096, 100, frameKindControl},     // a kind this ring does not carry
		{0, 4096, 2033, frameKindData},       // over max_payload
		{4064, 4096, 100, frameKindData},     // runs past the end of the ring
		{0, 32, 100, frameKindData},          // runs past the data written
		{4080, 4096, 16, frameKindPadding},   // padding that does not end the ring
		{4064, 16, 16, frameKindPadding},     // padding past the data written
		{0, 4096, 0xFFFFFFFF, frameKindData}, // a huge length
	}
	for _, c := range cases {
		if _, err := checkRecord(4096, c.off, c.avail, c.len, c.kind, data); err == nil || err.Code != CodeCorrupt {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if size, err := checkRecord(4096, 4064, 4096, 16, frameKindPadding, data); err != nil || size != 32 {
		t.Errorf("valid padding: %d %v", size, err)
	}
}

func TestRawPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	b := startBroker(t)
	conn := b.connect(t, "allocs")
	pub, err := conn.PublishChannel("raw", metricSchema, WithCapacity(1<<16), Lossy())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("raw", metricSchema)
	if err != nil {
		t.Fatal(err)
	}
	datum, _ := mustSchema(t, metricSchema).Encode(&metric{Name: "x", Value: 1, Seq: 1})
	buf := make([]byte, 0, 256)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := pub.PublishRaw(datum); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.RecvRaw(ctx, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("PublishRaw + RecvRaw allocate %v times per message", allocs)
	}
}

func TestClosingUnblocksAWaitingPublishAndAWaitingRecv(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "unblock")
	pub, err := conn.PublishChannel("stuck", messageSchema, WithCapacity(4096), WithSendTimeout(-1))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("stuck", messageSchema)
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() {
		for {
			if err := pub.PublishRaw(make([]byte, 500)); err != nil {
				published <- err
				return
			}
		}
	}()
	idle, err := conn.Subscribe("stuck", messageSchema)
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan error, 1)
	go func() {
		// Drain what is there, then wait: Close must end the wait with Closed.
		for {
			if _, err := idle.RecvRaw(context.Background(), nil); err != nil {
				received <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // the publisher is now waiting on `sub`, which never reads
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-published:
		errCode(t, err, CodeClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("a publish waiting for space did not end when the publisher closed")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-received:
		errCode(t, err, CodeClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Recv did not end when the subscriber closed")
	}
	if sub.Err() != nil {
		t.Errorf("Err before Messages: %v", sub.Err())
	}
}

func TestCancellingRecvReturnsAtOnce(t *testing.T) {
	b := startBroker(t)
	conn := b.connect(t, "cancel")
	if _, err := conn.PublishChannel("quiet", metricSchema); err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe("quiet", metricSchema, WithWait(Blocking))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Recv(ctx, &metric{}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a cancelled Recv returned %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a cancelled Recv did not return within a second")
	}
}

// BenchmarkPublishRawRecvRaw is one raw publish and one raw receive into a reused buffer, on one
// goroutine (`go test -bench PublishRaw -benchmem`): it reports time and allocations, asserts nothing.
func BenchmarkPublishRawRecvRaw(b *testing.B) {
	br := startBroker(b)
	conn := br.connect(b, "bench")
	pub, err := conn.PublishChannel("raw", metricSchema, Lossy())
	if err != nil {
		b.Fatal(err)
	}
	sub, err := conn.Subscribe("raw", metricSchema)
	if err != nil {
		b.Fatal(err)
	}
	datum := make([]byte, 64)
	buf := make([]byte, 0, 256)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pub.PublishRaw(datum); err != nil {
			b.Fatal(err)
		}
		if buf, err = sub.RecvRaw(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}
