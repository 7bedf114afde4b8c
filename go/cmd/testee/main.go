// The Go connector's testee: one role per run (publisher, subscriber, provider, caller), parameters on
// the command line, results on stdout, so ringctl's matrix drives Go against every other language
// with one harness. A connector error prints `error <CodeName>: <message>` and exits with 10 + the
// error's code; a verification failure prints `mismatch ...` and exits with 2; a usage error exits 64.
//
//	testee publisher  [--channel C] [--key K] [--count N] [--lossy] [--capacity B] [--wait-subscribers K]
//	                  [--wait-go] [--raw] [--hold-ms T] [--probe-too-large] [--probe-invalid-schema]
//	testee subscriber [--channel C] [--key K] [--count N] [--expect-closed] [--stall-ms T] [--schema other]
//	                  [--probe-invalid-schema]
//	testee provider   [--function F] [--key K] [--fail-on X] [--sleep-ms T]
//	testee caller     [--function F] [--key K] [--count N] [--in-flight C] [--threads T] [--timeout-ms T]
//	                  [--base A] [--keep-going]
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ring "github.com/impulse/ring/go"
)

const (
	messageSchema = `{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"bytes"},{"name":"checksum","type":"long"}]}`
	// Same field names, another type for body: another fingerprint.
	otherMessageSchema = `{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"string"},{"name":"checksum","type":"long"}]}`
	malformedSchema   = `{"type":"record","name":"Broken","fields":[{"name":"x","type":`
	addRequestSchema  = `{"type":"record","name":"AddRequest","namespace":"e2e","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`
	addResponseSchema = `{"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]}`
)

type message struct {
	Seq      int64  `avro:"seq"`
	Body     []byte `avro:"body"`
	Checksum int64  `avro:"checksum"`
}

type addRequest struct {
	A int64 `avro:"a"`
	B int64 `avro:"b"`
}

type addResponse struct {
	Sum int64 `avro:"sum"`
}

// failure is how a run ends when it does not succeed.
type failure struct {
	ring     error
	mismatch string
	usage    string
}

type args map[string]string

// options lists what each role takes: true for a flag, false for an option with a value.
var options = map[string]map[string]bool{
	"publisher": {"--channel": false, "--key": false, "--count": false, "--lossy": true, "--capacity": false,
		"--wait-subscribers": false, "--wait-go": true, "--raw": true, "--hold-ms": false, "--probe-too-large": true,
		"--probe-invalid-schema": true},
	"subscriber": {"--channel": false, "--key": false, "--count": false, "--expect-closed": true,
		"--stall-ms": false, "--schema": false, "--probe-invalid-schema": true},
	"provider": {"--function": false, "--key": false, "--fail-on": false, "--sleep-ms": false},
	"caller": {"--function": false, "--key": false, "--count": false, "--in-flight": false, "--threads": false,
		"--timeout-ms": false, "--base": false, "--keep-going": true},
}

var number = regexp.MustCompile(`^-?[0-9]+$`)

// parse reads a role's options (spec/testee.md §1): anything it does not know is a usage error.
func parse(role string, argv []string) (args, *failure) {
	known, ok := options[role]
	if !ok {
		return nil, &failure{usage: fmt.Sprintf("unknown role `%s`", role)}
	}
	a := args{}
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if !strings.HasPrefix(arg, "--") {
			return nil, &failure{usage: fmt.Sprintf("unexpected argument `%s`", arg)}
		}
		isFlag, ok := known[arg]
		if !ok {
			return nil, &failure{usage: fmt.Sprintf("the %s role takes no option `%s`", role, arg)}
		}
		if isFlag {
			a[arg] = ""
			continue
		}
		if i+1 >= len(argv) {
			return nil, &failure{usage: fmt.Sprintf("`%s` needs a value", arg)}
		}
		a[arg] = argv[i+1]
		i++
	}
	for _, name := range []string{"--count", "--capacity", "--wait-subscribers", "--hold-ms", "--stall-ms", "--fail-on",
		"--sleep-ms", "--in-flight", "--threads", "--timeout-ms", "--base"} {
		if v, ok := a[name]; ok {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil || !number.MatchString(v) {
				return nil, &failure{usage: fmt.Sprintf("`%s` takes a number, not `%s`", name, v)}
			}
		}
	}
	if v, ok := a["--schema"]; ok && v != "other" {
		return nil, &failure{usage: fmt.Sprintf("unknown schema `%s`; use `other`", v)}
	}
	return a, nil
}

func (a args) flag(name string) bool { _, ok := a[name]; return ok }

func (a args) text(name, def string) string {
	if v, ok := a[name]; ok {
		return v
	}
	return def
}

func (a args) number(name string, def int64) int64 {
	v, ok := a[name]
	if !ok {
		return def
	}
	n, _ := strconv.ParseInt(v, 10, 64) // checked by parse
	return n
}

func (a args) millis(name string, def int64) time.Duration {
	n := a.number(name, def)
	if n < 0 {
		n = 0
	}
	return time.Duration(n) * time.Millisecond
}

func (a args) key() []ring.Option {
	if k, ok := a["--key"]; ok {
		return []ring.Option{ring.WithKey(k)}
	}
	return nil
}

// pattern is the table bodies are cut from (spec/testee.md): byte i is (i*31) ^ (i>>7), truncated.
var pattern = func() []byte {
	p := make([]byte, 4096)
	for i := range p {
		p[i] = byte(uint32(i)*31 ^ uint32(i)>>7)
	}
	return p
}()

// body of message seq: 0 to 2000 bytes cut from the pattern at an offset that depends on seq.
func body(seq int64) []byte {
	n := (uint64(seq) * 2654435761) % 2001
	start := uint64(seq) % 1999
	return pattern[start : start+n]
}

// checksum is FNV-1a over seq and the body, 8 bytes at a time (the tail zero-padded).
func checksum(seq int64, b []byte) int64 {
	hash := uint64(0xcbf29ce484222325)
	mix := func(w uint64) { hash = (hash ^ w) * 0x100000001b3 }
	mix(uint64(seq))
	for len(b) >= 8 {
		mix(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var tail [8]byte
	copy(tail[:], b)
	mix(binary.LittleEndian.Uint64(tail[:]))
	return int64(hash)
}

// appendLong writes an Avro long, for the raw datum built by hand.
func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func rawDatum(seq int64, out []byte) []byte {
	b := body(seq)
	out = appendLong(out[:0], seq)
	out = appendLong(out, int64(len(b)))
	out = append(out, b...)
	return appendLong(out, checksum(seq, b))
}

func errorLine(err error) string {
	var e *ring.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%s: %s", e.Code, e.Error())
	}
	return fmt.Sprintf("Io: %v", err)
}

func connect(name string) *ring.Conn {
	conn, err := ring.Connect(context.Background(), name)
	if err != nil {
		report(&failure{ring: err})
	}
	return conn
}

func waitForSubscribers(conn *ring.Conn, channel string, wanted int64) *failure {
	deadline := time.Now().Add(30 * time.Second)
	for {
		listing, err := conn.List(context.Background())
		if err != nil {
			return &failure{ring: err}
		}
		var n int64
		for _, c := range listing.Channels {
			if c.Name == channel {
				n = int64(c.Subscribers)
			}
		}
		if n >= wanted {
			return nil
		}
		if time.Now().After(deadline) {
			return &failure{mismatch: fmt.Sprintf("only %d of %d subscribers came", n, wanted)}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publisher(a args) *failure {
	channel := a.text("--channel", "data")
	count := a.number("--count", 1000)
	conn := connect("testee-publisher")
	if a.flag("--probe-invalid-schema") {
		if _, err := conn.PublishChannel(channel+"-malformed", malformedSchema); err != nil {
			fmt.Println("probe " + errorLine(err))
		} else {
			fmt.Println("probe accepted a malformed schema")
		}
	}
	opts := append(a.key(), ring.WithCapacity(uint64(a.number("--capacity", 0))))
	if a.flag("--lossy") {
		opts = append(opts, ring.Lossy())
	}
	pub, err := conn.PublishChannel(channel, messageSchema, opts...)
	if err != nil {
		return &failure{ring: err}
	}
	fmt.Println("ready")
	if f := waitForSubscribers(conn, channel, a.number("--wait-subscribers", 0)); f != nil {
		return f
	}
	if a.flag("--wait-go") {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return &failure{usage: fmt.Sprintf("cannot read stdin: %v", err)}
		}
	}
	if a.flag("--probe-too-large") {
		if err := pub.PublishRaw(make([]byte, pub.MaxDatum()+1)); err != nil {
			fmt.Println("probe " + errorLine(err))
		} else {
			fmt.Println("probe published an oversized payload")
		}
	}
	raw := a.flag("--raw")
	var datum []byte
	for seq := int64(0); seq < count; seq++ {
		if raw {
			datum = rawDatum(seq, datum)
			err = pub.PublishRaw(datum)
		} else {
			b := body(seq)
			err = pub.Publish(&message{Seq: seq, Body: b, Checksum: checksum(seq, b)})
		}
		if err != nil {
			return &failure{ring: err}
		}
	}
	fmt.Printf("published %d\n", count)
	defer func() { _ = pub.Close(); _ = conn.Close() }()
	// Holding keeps the channel open even when the broker goes: the error is printed at once, but the
	// publisher lives on until the hold ends or a kill.
	until := time.Now().Add(a.millis("--hold-ms", 0))
	gone := false
	for time.Now().Before(until) {
		if !gone && conn.BrokerGone() {
			gone = true
			fmt.Println("error " + errorLine(ring.ErrBrokerGone))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if gone {
		os.Exit(10 + int(ring.CodeBrokerGone))
	}
	return nil
}

func subscriber(a args) *failure {
	channel := a.text("--channel", "data")
	count := a.number("--count", 1000)
	expectClosed := a.flag("--expect-closed")
	stall := a.millis("--stall-ms", 0)
	schema := messageSchema
	if a.flag("--schema") {
		schema = otherMessageSchema
	}
	conn := connect("testee-subscriber")
	if a.flag("--probe-invalid-schema") {
		if _, err := conn.Subscribe(channel, malformedSchema, a.key()...); err != nil {
			fmt.Println("probe " + errorLine(err))
		} else {
			fmt.Println("probe subscribed with a malformed schema")
		}
	}
	// The channel may not be published yet: retry for a while.
	deadline := time.Now().Add(30 * time.Second)
	var sub *ring.Subscriber
	for {
		var err error
		sub, err = conn.Subscribe(channel, schema, a.key()...)
		if errors.Is(err, ring.ErrUnknownChannel) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			return &failure{ring: err}
		}
		break
	}
	fmt.Println("subscribed")
	time.Sleep(stall)
	var next, received int64
	var missed uint64
	idleSince := time.Now()
	var ended *failure
loop:
	for expectClosed || received+int64(missed) < count {
		var m message
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := sub.Recv(ctx, &m)
		cancel()
		var e *ring.Error
		switch {
		case err == nil:
			idleSince = time.Now()
			if m.Seq != next {
				ended = &failure{mismatch: fmt.Sprintf("expected message %d, got %d", next, m.Seq)}
				break loop
			}
			if string(m.Body) != string(body(m.Seq)) || m.Checksum != checksum(m.Seq, m.Body) {
				ended = &failure{mismatch: fmt.Sprintf("message %d is damaged", next)}
				break loop
			}
			next++
			received++
		case errors.Is(err, ring.ErrTimeout):
			if time.Since(idleSince) > 60*time.Second {
				ended = &failure{mismatch: fmt.Sprintf("nothing received for 60 s after %d messages", received)}
				break loop
			}
		case errors.As(err, &e) && e.Code == ring.CodeLagged:
			missed += e.Missed
			next += int64(e.Missed)
		case expectClosed && errors.Is(err, ring.ErrClosed):
			fmt.Println("closed")
			break loop
		default:
			ended = &failure{ring: err}
			break loop
		}
	}
	fmt.Printf("received %d\n", received)
	if a.flag("--stall-ms") || missed > 0 {
		fmt.Printf("missed %d received %d\n", missed, received)
	}
	return ended
}

func provider(a args) *failure {
	failOn, hasFailOn := int64(0), a.flag("--fail-on")
	if hasFailOn {
		failOn = a.number("--fail-on", 0)
	}
	sleep := a.millis("--sleep-ms", 0)
	conn := connect("testee-provider")
	fn, err := conn.ExposeFunction(a.text("--function", "add"), addRequestSchema, addResponseSchema,
		func(ctx context.Context, req *ring.Request) (any, error) {
			var r addRequest
			if err := req.Decode(&r); err != nil {
				return nil, err
			}
			select {
			case <-time.After(sleep):
			case <-ctx.Done():
			}
			if hasFailOn && r.A == failOn {
				return nil, fmt.Errorf("refusing a = %d", r.A)
			}
			return &addResponse{Sum: r.A + r.B}, nil
		}, a.key()...)
	if err != nil {
		return &failure{ring: err}
	}
	fmt.Println("ready")
	var stdinClosed atomic.Bool
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stdinClosed.Store(true)
	}()
	for !stdinClosed.Load() {
		if conn.BrokerGone() {
			report(&failure{ring: ring.ErrBrokerGone})
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := fn.Close(); err != nil {
		return &failure{ring: err}
	}
	_ = conn.Close()
	return nil
}

type callerPlan struct {
	conn      *ring.Conn
	function  string
	opts      []ring.Option
	base      int64
	timeout   time.Duration
	keepGoing bool
	printed   sync.Mutex
}

func (p *callerPlan) call(i int64) *failure {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	var resp addResponse
	err := p.conn.Call(ctx, p.function, &addRequest{A: p.base + i, B: i * 3}, &resp, p.opts...)
	switch {
	case err == nil && resp.Sum == p.base+i+i*3:
		return nil
	case err == nil:
		return &failure{mismatch: fmt.Sprintf("call %d returned %d", i, resp.Sum)}
	case p.keepGoing:
		p.printed.Lock()
		fmt.Println("error " + errorLine(err))
		p.printed.Unlock()
		return &failure{}
	default:
		return &failure{ring: err}
	}
}

func caller(a args) *failure {
	count := a.number("--count", 1000)
	conn := connect("testee-caller")
	plan := &callerPlan{conn: conn, function: a.text("--function", "add"),
		opts: append(a.key(), ring.WithSchemas(addRequestSchema, addResponseSchema)), base: a.number("--base", 0),
		timeout: a.millis("--timeout-ms", 30000), keepGoing: a.flag("--keep-going")}
	// Threads and in-flight calls are both goroutines here: Call blocks its goroutine only.
	workers := a.number("--threads", 0)
	async := workers <= 0
	if async {
		workers = a.number("--in-flight", 1)
	}
	if workers < 1 {
		workers = 1
	}
	var failed, started atomic.Int64
	var firstErr atomic.Pointer[failure]
	var once sync.Once
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := int64(0); w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= count || firstErr.Load() != nil {
					return
				}
				if started.Add(1) == 1 && async {
					once.Do(func() { fmt.Println("calling") })
				}
				if f := plan.call(i); f != nil {
					if f.ring == nil && f.mismatch == "" {
						failed.Add(1)
						continue
					}
					firstErr.CompareAndSwap(nil, f)
					return
				}
			}
		}()
	}
	wg.Wait()
	if f := firstErr.Load(); f != nil {
		return f
	}
	if plan.keepGoing {
		fmt.Printf("ok %d failed %d\n", count-failed.Load(), failed.Load())
	} else {
		fmt.Printf("ok %d\n", count)
	}
	_ = conn.Close()
	return nil
}

// report prints how the run ended and exits with its code.
func report(f *failure) {
	switch {
	case f == nil:
		os.Exit(0)
	case f.ring != nil:
		fmt.Println("error " + errorLine(f.ring))
		var e *ring.Error
		if errors.As(f.ring, &e) {
			os.Exit(10 + int(e.Code))
		}
		os.Exit(10 + int(ring.CodeIo))
	case f.mismatch != "":
		fmt.Println("mismatch " + f.mismatch)
		os.Exit(2)
	case f.usage == "":
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "testee: %s\nusage: testee publisher|subscriber|provider|caller [--option value]...\n", f.usage)
		os.Exit(64)
	}
}

func main() {
	role := ""
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	for _, arg := range os.Args[1:] {
		if arg == "--help" {
			fmt.Print(contract)
			os.Exit(0)
		}
	}
	var rest []string
	if len(os.Args) > 2 {
		rest = os.Args[2:]
	}
	a, f := parse(role, rest)
	if f != nil {
		report(f)
	}
	switch role {
	case "publisher":
		f = publisher(a)
	case "subscriber":
		f = subscriber(a)
	case "provider":
		f = provider(a)
	case "caller":
		f = caller(a)
	}
	report(f)
}
