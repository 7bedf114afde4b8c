// Control records (spec/bootstrap.md §4, spec/schemas/control.avsc) and the request/reply plumbing:
// every record's encoding and decoding, request ids, and the wait for a reply live in this one file.
// Records are Go structs whose fields follow control.avsc in order (checked by spec_test.go); a
// small reflective codec writes them as Avro binary, and reads them back bounded by the bytes left.

package ring

import (
	"context"
	"encoding/binary"
	"reflect"
	"sync"
	"time"
)

// Every control record, in union order: the index in this list is the opcode.
type (
	ctlRegister struct {
		RequestID int64  `json:"request_id"`
		AppName   string `json:"app_name"`
		Pid       int64  `json:"pid"`
		StartTime int64  `json:"start_time"`
		PublicKey []byte `json:"public_key"`
	}
	ctlRegistered struct {
		RequestID int64  `json:"request_id"`
		AppID     int32  `json:"app_id"`
		BrokerPid int64  `json:"broker_pid"`
		PublicKey []byte `json:"public_key"`
	}
	ctlPublishChannel struct {
		RequestID int64   `json:"request_id"`
		Name      string  `json:"name"`
		Schema    string  `json:"schema"`
		Key       *[]byte `json:"key"`
		Capacity  int64   `json:"capacity"`
		Lossy     bool    `json:"lossy"`
	}
	ctlChannelPublished struct {
		RequestID   int64  `json:"request_id"`
		ChannelID   int64  `json:"channel_id"`
		Segment     string `json:"segment"`
		Fingerprint int64  `json:"fingerprint"`
		Capacity    int64  `json:"capacity"`
		MaxPayload  int64  `json:"max_payload"`
	}
	ctlSubscribe struct {
		RequestID int64   `json:"request_id"`
		Name      string  `json:"name"`
		Schema    string  `json:"schema"`
		Key       *[]byte `json:"key"`
	}
	ctlSubscribed struct {
		RequestID       int64  `json:"request_id"`
		ChannelID       int64  `json:"channel_id"`
		Segment         string `json:"segment"`
		SubscriberIndex int32  `json:"subscriber_index"`
		Fingerprint     int64  `json:"fingerprint"`
		Lossy           bool   `json:"lossy"`
	}
	ctlUnsubscribe struct {
		RequestID       int64 `json:"request_id"`
		ChannelID       int64 `json:"channel_id"`
		SubscriberIndex int32 `json:"subscriber_index"`
	}
	ctlCloseChannel struct {
		RequestID int64 `json:"request_id"`
		ChannelID int64 `json:"channel_id"`
	}
	ctlExposeFunction struct {
		RequestID      int64   `json:"request_id"`
		Name           string  `json:"name"`
		RequestSchema  string  `json:"request_schema"`
		ResponseSchema string  `json:"response_schema"`
		Key            *[]byte `json:"key"`
	}
	ctlFunctionExposed struct {
		RequestID           int64 `json:"request_id"`
		FunctionID          int64 `json:"function_id"`
		RequestFingerprint  int64 `json:"request_fingerprint"`
		ResponseFingerprint int64 `json:"response_fingerprint"`
	}
	ctlResolveFunction struct {
		RequestID      int64   `json:"request_id"`
		Name           string  `json:"name"`
		RequestSchema  string  `json:"request_schema"`
		ResponseSchema string  `json:"response_schema"`
		Key            *[]byte `json:"key"`
	}
	ctlFunctionResolved struct {
		RequestID           int64  `json:"request_id"`
		FunctionID          int64  `json:"function_id"`
		LinkID              int64  `json:"link_id"`
		Segment             string `json:"segment"`
		RequestFingerprint  int64  `json:"request_fingerprint"`
		ResponseFingerprint int64  `json:"response_fingerprint"`
		MaxPayload          int64  `json:"max_payload"`
	}
	ctlWithdrawFunction struct {
		RequestID  int64 `json:"request_id"`
		FunctionID int64 `json:"function_id"`
	}
	ctlLinkOpened struct {
		FunctionID int64  `json:"function_id"`
		LinkID     int64  `json:"link_id"`
		Segment    string `json:"segment"`
	}
	ctlLinkClosed struct {
		LinkID  int64  `json:"link_id"`
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	ctlChannelClosed struct {
		ChannelID int64 `json:"channel_id"`
	}
	ctlList struct {
		RequestID int64 `json:"request_id"`
	}
	ctlListing struct {
		RequestID int64          `json:"request_id"`
		Apps      []AppInfo      `json:"apps"`
		Channels  []ChannelInfo  `json:"channels"`
		Functions []FunctionInfo `json:"functions"`
	}
	ctlUnregister struct {
		RequestID int64 `json:"request_id"`
	}
	ctlDone struct {
		RequestID int64 `json:"request_id"`
	}
	ctlFailed struct {
		RequestID            int64  `json:"request_id"`
		Code                 int32  `json:"code"`
		Message              string `json:"message"`
		ExpectedFingerprint  int64  `json:"expected_fingerprint"`
		PresentedFingerprint int64  `json:"presented_fingerprint"`
	}
	ctlCallError struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	ctlBrokerShutdown struct {
		Reason string `json:"reason"`
	}
	ctlDescribe struct {
		RequestID int64  `json:"request_id"`
		Name      string `json:"name"`
		ID        int64  `json:"id"`
	}
	ctlDescription struct {
		RequestID int64                 `json:"request_id"`
		Channels  []ChannelDescription  `json:"channels"`
		Functions []FunctionDescription `json:"functions"`
	}
	ctlMonitor struct {
		RequestID int64 `json:"request_id"`
	}
	ctlMonitorEvent MonitorEvent
)

// ChannelDescription is a channel as Describe shows it: its schema, owner and live figures.
type ChannelDescription struct {
	ChannelID      int64                   `json:"channel_id"`
	Name           string                  `json:"name"`
	Schema         string                  `json:"schema"`
	Fingerprint    int64                   `json:"fingerprint"`
	OwnerAppID     int32                   `json:"owner_app_id"`
	OwnerAppName   string                  `json:"owner_app_name"`
	OwnerPid       int64                   `json:"owner_pid"`
	KeyGated       bool                    `json:"key_gated"`
	Capacity       int64                   `json:"capacity"`
	Lossy          bool                    `json:"lossy"`
	Published      int64                   `json:"published"`
	PublishedBytes int64                   `json:"published_bytes"`
	Subscribers    []SubscriberDescription `json:"subscribers"`
}

// SubscriberDescription is one joined subscriber of a described channel.
type SubscriberDescription struct {
	Index    int32  `json:"index"`
	AppID    int32  `json:"app_id"`
	AppName  string `json:"app_name"`
	Pid      int64  `json:"pid"`
	Position int64  `json:"position"`
	Lag      int64  `json:"lag"`
	Missed   int64  `json:"missed"`
}

// FunctionDescription is a function as Describe shows it: its schemas, owner and call counters.
type FunctionDescription struct {
	FunctionID          int64  `json:"function_id"`
	Name                string `json:"name"`
	RequestSchema       string `json:"request_schema"`
	ResponseSchema      string `json:"response_schema"`
	RequestFingerprint  int64  `json:"request_fingerprint"`
	ResponseFingerprint int64  `json:"response_fingerprint"`
	OwnerAppID          int32  `json:"owner_app_id"`
	OwnerAppName        string `json:"owner_app_name"`
	OwnerPid            int64  `json:"owner_pid"`
	KeyGated            bool   `json:"key_gated"`
	Links               int32  `json:"links"`
	Calls               int64  `json:"calls"`
	Errors              int64  `json:"errors"`
	InFlight            int64  `json:"in_flight"`
}

// MonitorEvent is one thing that happened on the control plane, as Monitor reports it.
type MonitorEvent struct {
	TimeNs  int64  `json:"time_ns"`
	Kind    string `json:"kind"`
	AppID   int32  `json:"app_id"`
	AppName string `json:"app_name"`
	Pid     int64  `json:"pid"`
	Subject string `json:"subject"`
	Detail  string `json:"detail"`
}

// Description is what Describe returns: at most one channel and one function.
type Description struct {
	Channels  []ChannelDescription
	Functions []FunctionDescription
}

// AppInfo is a registered app, in a Listing.
type AppInfo struct {
	AppID int32  `json:"app_id"`
	Name  string `json:"name"`
	Pid   int64  `json:"pid"`
}

// ChannelInfo is a published channel, in a Listing.
type ChannelInfo struct {
	ChannelID   int64  `json:"channel_id"`
	Name        string `json:"name"`
	OwnerAppID  int32  `json:"owner_app_id"`
	Fingerprint int64  `json:"fingerprint"`
	Capacity    int64  `json:"capacity"`
	Lossy       bool   `json:"lossy"`
	Subscribers int32  `json:"subscribers"`
	Published   int64  `json:"published"`
}

// FunctionInfo is an exposed function, in a Listing.
type FunctionInfo struct {
	FunctionID          int64  `json:"function_id"`
	Name                string `json:"name"`
	OwnerAppID          int32  `json:"owner_app_id"`
	RequestFingerprint  int64  `json:"request_fingerprint"`
	ResponseFingerprint int64  `json:"response_fingerprint"`
}

// Listing is what is on the bus, as the broker sees it.
type Listing struct {
	Apps      []AppInfo
	Channels  []ChannelInfo
	Functions []FunctionInfo
}

// ctlRecords lists one value of each record type, in opcode order.
var ctlRecords = []any{
	ctlRegister{}, ctlRegistered{}, ctlPublishChannel{}, ctlChannelPublished{}, ctlSubscribe{}, ctlSubscribed{},
	ctlUnsubscribe{}, ctlCloseChannel{}, ctlExposeFunction{}, ctlFunctionExposed{}, ctlResolveFunction{},
	ctlFunctionResolved{}, ctlWithdrawFunction{}, ctlLinkOpened{}, ctlLinkClosed{}, ctlChannelClosed{},
	ctlList{}, ctlListing{}, ctlUnregister{}, ctlDone{}, ctlFailed{}, ctlCallError{}, ctlBrokerShutdown{},
	ctlDescribe{}, ctlDescription{}, ctlMonitor{}, ctlMonitorEvent{},
}

var ctlOpcodes = func() map[reflect.Type]int {
	m := make(map[reflect.Type]int, len(ctlRecords))
	for i, r := range ctlRecords {
		m[reflect.TypeOf(r)] = i
	}
	return m
}()

// keyField is the clear key bytes of a key field (["null", "bytes"], null for none). The record holds
// them only until request gives it its id and seals them (bootstrap.md §5.5): no key reaches the ring
// in clear.
func keyField(key *string) *[]byte {
	if key == nil {
		return nil
	}
	b := []byte(*key)
	return &b
}

// encodeControl writes the SOE of the control union holding rec (a ctl* struct value).
func encodeControl(dst []byte, rec any) []byte {
	v := reflect.ValueOf(rec)
	op, ok := ctlOpcodes[v.Type()]
	if !ok {
		panic("ring: not a control record: " + v.Type().String())
	}
	dst = append(dst, 0xC3, 0x01)
	dst = binary.LittleEndian.AppendUint64(dst, controlFingerprint)
	dst = appendLong(dst, int64(op))
	return appendValue(dst, v)
}

func appendValue(dst []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.Int64:
		return appendLong(dst, v.Int())
	case reflect.Int32:
		return appendLong(dst, v.Int())
	case reflect.Bool:
		if v.Bool() {
			return append(dst, 1)
		}
		return append(dst, 0)
	case reflect.String:
		dst = appendLong(dst, int64(v.Len()))
		return append(dst, v.String()...)
	case reflect.Pointer: // ["null", T]
		if v.IsNil() {
			return append(dst, 0)
		}
		return appendValue(append(dst, 2), v.Elem())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes
			dst = appendLong(dst, int64(v.Len()))
			return append(dst, v.Bytes()...)
		}
		// An array: one block, then the end marker.
		if v.Len() > 0 {
			dst = appendLong(dst, int64(v.Len()))
			for i := 0; i < v.Len(); i++ {
				dst = appendValue(dst, v.Index(i))
			}
		}
		return append(dst, 0)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			dst = appendValue(dst, v.Field(i))
		}
		return dst
	}
	panic("ring: unsupported control field kind " + v.Kind().String())
}

// appendLong writes an Avro long: zig-zag, then a little-endian base-128 varint.
func appendLong(dst []byte, n int64) []byte {
	u := uint64(n<<1) ^ uint64(n>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// decodeControl reads the SOE of the control union (bootstrap.md §4): header, branch 0 to 26, the
// record, no byte left over. It returns the record as a ctl* struct value.
func decodeControl(b []byte) (any, error) {
	if len(b) < soeHeaderLen || b[0] != 0xC3 || b[1] != 0x01 {
		return nil, newError(CodeDecode, "control record does not start with the single object marker c3 01")
	}
	if f := binary.LittleEndian.Uint64(b[2:10]); f != controlFingerprint {
		return nil, &Error{Code: CodeDecode, Message: "control record has fingerprint " + fp(f) + ", expected " +
			fp(controlFingerprint), Expected: controlFingerprint, Presented: f}
	}
	d := avroReader{b: b[soeHeaderLen:]}
	op := d.long()
	if d.err == nil && (op < 0 || op >= int64(len(ctlRecords))) {
		return nil, newError(CodeDecode, "control record has branch %d, expected 0 to %d", op, len(ctlRecords)-1)
	}
	if d.err != nil {
		return nil, newError(CodeDecode, "control record: %s", d.err.Message)
	}
	v := reflect.New(reflect.TypeOf(ctlRecords[op])).Elem()
	d.value(v, 0)
	if d.err == nil && len(d.b) != 0 {
		return nil, newError(CodeDecode, "control record %s has %d bytes left over", v.Type().Name(), len(d.b))
	}
	if d.err != nil {
		return nil, newError(CodeDecode, "control record %s: %s", v.Type().Name(), d.err.Message)
	}
	return v.Interface(), nil
}

// avroReader reads Avro binary from untrusted bytes: every length is bounded by the bytes left.
type avroReader struct {
	b   []byte
	err *Error
}

func (d *avroReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = newError(CodeDecode, format, args...)
	}
	d.b = nil
}

func (d *avroReader) long() int64 {
	var u uint64
	for shift := uint(0); shift < 70; shift += 7 {
		if len(d.b) == 0 {
			d.fail("truncated varint")
			return 0
		}
		c := d.b[0]
		d.b = d.b[1:]
		if shift == 63 && c > 1 {
			d.fail("varint overflows 64 bits")
			return 0
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	d.fail("varint longer than 10 bytes")
	return 0
}

func (d *avroReader) value(v reflect.Value, depth int) {
	if d.err != nil {
		return
	}
	switch v.Kind() {
	case reflect.Int64:
		v.SetInt(d.long())
	case reflect.Int32:
		n := d.long()
		if n < -1<<31 || n >= 1<<31 {
			d.fail("int %d out of range", n)
			return
		}
		v.SetInt(n)
	case reflect.Bool:
		if len(d.b) == 0 || d.b[0] > 1 {
			d.fail("invalid boolean")
			return
		}
		v.SetBool(d.b[0] == 1)
		d.b = d.b[1:]
	case reflect.String:
		n := d.long()
		if d.err == nil && (n < 0 || n > int64(len(d.b))) {
			d.fail("string of %d bytes with %d left", n, len(d.b))
		}
		if d.err != nil {
			return
		}
		v.SetString(string(d.b[:n]))
		d.b = d.b[n:]
	case reflect.Pointer:
		switch d.long() {
		case 0:
		case 1:
			s := reflect.New(v.Type().Elem())
			d.value(s.Elem(), depth)
			v.Set(s)
		default:
			d.fail("invalid union branch")
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes
			n := d.long()
			if d.err == nil && (n < 0 || n > int64(len(d.b))) {
				d.fail("bytes of length %d with %d left", n, len(d.b))
			}
			if d.err != nil {
				return
			}
			v.SetBytes(append([]byte{}, d.b[:n]...))
			d.b = d.b[n:]
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, 0)
		for d.err == nil {
			n := d.long()
			if n == 0 || d.err != nil {
				break
			}
			if n < 0 { // a negative count is followed by the block's size in bytes
				n = -n
				d.long()
			}
			// Every item takes at least one byte: a count beyond the bytes left is corrupt.
			if n > int64(len(d.b)) {
				d.fail("array block of %d items with %d bytes left", n, len(d.b))
				break
			}
			for i := int64(0); i < n && d.err == nil; i++ {
				item := reflect.New(v.Type().Elem()).Elem()
				d.value(item, depth+1)
				out = reflect.Append(out, item)
			}
		}
		v.Set(out)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			d.value(v.Field(i), depth)
		}
	default:
		d.fail("unsupported field kind %s", v.Kind())
	}
}

// replyTimeout is how long a control request waits for its reply (bootstrap.md §5.2).
const replyTimeout = 10 * time.Second

// pendingRequest is a control request waiting for its reply; onReply, if set, runs on the reactor
// before the reply is handed over (ExposeFunction registers its handler there, so a LinkOpened that
// follows the reply finds it).
type pendingRequest struct {
	reply   chan any
	onReply func(any)
}

// requests numbers control requests and matches replies to them by id.
type requests struct {
	mu      sync.Mutex
	next    int64
	pending map[int64]*pendingRequest
}

// post writes a control record into the request ring, waiting for space, and rings the broker.
func (c *Conn) post(ctx context.Context, rec any) error {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if c.unmapped {
		return newError(CodeClosed, "the connection is closed")
	}
	if c.checkFence() {
		return c.brokerGoneError()
	}
	c.reqBuf = encodeControl(c.reqBuf[:0], rec)
	deadline := time.Now().Add(replyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	err := c.reqRing.write(frameKindControl, 0, c.reqBuf)
	if err == errFull {
		c.reqRing.setWaiting(1)
		var werr error
		c.appBell.wait(c.wait, deadline, func() bool { return c.reqRing.hasSpace(len(c.reqBuf)) }, func() bool {
			return c.gone.Load() || ctx.Err() != nil
		})
		werr = c.reqRing.write(frameKindControl, 0, c.reqBuf)
		c.reqRing.setWaiting(0)
		err = werr
		if err == errFull {
			if c.gone.Load() {
				return c.brokerGoneError()
			}
			return newError(CodeTimeout, "the broker did not read the request ring in time")
		}
	}
	if err != nil {
		return err
	}
	c.brokerBell.ring()
	return nil
}

// request sends rec (whose RequestID field it sets, and whose Key field, if it has one, it seals with
// that id) and waits for the reply with that id. A Failed reply is returned as *Error.
func (c *Conn) request(ctx context.Context, rec any, onReply func(any)) (any, error) {
	if c.gone.Load() {
		return nil, c.brokerGoneError()
	}
	if c.closed.Load() {
		return nil, newError(CodeClosed, "the connection is closed")
	}
	p := &pendingRequest{reply: make(chan any, 1), onReply: onReply}
	c.reqs.mu.Lock()
	c.reqs.next++
	id := c.reqs.next
	c.reqs.pending[id] = p
	c.reqs.mu.Unlock()
	defer func() {
		c.reqs.mu.Lock()
		delete(c.reqs.pending, id)
		c.reqs.mu.Unlock()
	}()
	v := reflect.New(reflect.TypeOf(rec)).Elem()
	v.Set(reflect.ValueOf(rec))
	v.FieldByName("RequestID").SetInt(id)
	// Seal the key with the id of the record that carries it: every id seals at most one key.
	if key := v.FieldByName("Key"); key.IsValid() {
		key.Set(reflect.ValueOf(c.session.sealField(id, key.Interface().(*[]byte))))
	}
	if err := c.post(ctx, v.Interface()); err != nil {
		return nil, err
	}
	timer := time.NewTimer(replyTimeout)
	defer timer.Stop()
	select {
	case r := <-p.reply:
		if r == nil {
			return nil, c.brokerGoneError()
		}
		if f, ok := r.(ctlFailed); ok {
			return nil, failedError(f)
		}
		return r, nil
	case <-timer.C:
		if c.gone.Load() || !c.brokerAlive() {
			return nil, c.brokerGoneError()
		}
		return nil, newError(CodeTimeout, "the broker did not reply to %s within %v", v.Type().Name()[3:], replyTimeout)
	case <-ctx.Done():
		return nil, ctxError(ctx, "waiting for the broker's reply")
	}
}

// failedError turns a Failed reply into an *Error with its code, message and fingerprints.
func failedError(f ctlFailed) *Error {
	return &Error{Code: codeOf(f.Code), Message: f.Message, Expected: uint64(f.ExpectedFingerprint),
		Presented: uint64(f.PresentedFingerprint)}
}

// requestID reads the request id a reply echoes; events have none.
func requestID(rec any) (int64, bool) {
	switch r := rec.(type) {
	case ctlRegistered:
		return r.RequestID, true
	case ctlChannelPublished:
		return r.RequestID, true
	case ctlSubscribed:
		return r.RequestID, true
	case ctlFunctionExposed:
		return r.RequestID, true
	case ctlFunctionResolved:
		return r.RequestID, true
	case ctlListing:
		return r.RequestID, true
	case ctlDone:
		return r.RequestID, true
	case ctlFailed:
		return r.RequestID, true
	case ctlDescription:
		return r.RequestID, true
	}
	return 0, false
}

// deliverReply hands a reply to the request waiting for it; a reply nobody waits for is dropped.
func (c *Conn) deliverReply(id int64, rec any) {
	c.reqs.mu.Lock()
	p := c.reqs.pending[id]
	delete(c.reqs.pending, id)
	c.reqs.mu.Unlock()
	if p == nil {
		return
	}
	if _, failed := rec.(ctlFailed); !failed && p.onReply != nil {
		p.onReply(rec)
	}
	p.reply <- rec
}

// failRequests wakes every waiting request with "broker gone" (a nil reply).
func (c *Conn) failRequests() { c.failRequestsWith(nil) }

// failRequestsWith hands rec (a Failed, or nil for "broker gone") to every waiting request: a Failed
// with request id 0, or a reply that does not decode, concerns one of them but cannot say which
// (bootstrap.md §4.1).
func (c *Conn) failRequestsWith(rec any) {
	c.reqs.mu.Lock()
	defer c.reqs.mu.Unlock()
	for id, p := range c.reqs.pending {
		delete(c.reqs.pending, id)
		p.reply <- rec
	}
}

func ctxError(ctx context.Context, what string) error {
	if ctx.Err() == context.DeadlineExceeded {
		return &Error{Code: CodeTimeout, Message: "timed out " + what, cause: ctx.Err()}
	}
	return ctx.Err()
}
