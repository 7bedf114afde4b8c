// ring-go-bench: the Go connector's side of `ringctl bench`: the cases, parameters and JSON rows of
// tools/bench (ring-bench) and c/bench (ring_c_bench), as system "ring-go" ("ring-go-typed" for the
// typed publish), beside a Go Unix-socket baseline ("go-uds") measured in the same run. Each case is a
// leader on CPU 0 and a follower (this program again, `follow <case> ...`) on CPU 1, through a live
// broker in IMPULSE_RING_NS.
//
//	ring-go-bench suite [--quick]
//	ring-go-bench pubsub-latency|call-latency|throughput|uds-latency|uds-throughput [--size N]
//	              [--wait spin|adaptive|block] [--iters N] [--warmup N] [--count N] [--gap-us N] [--typed]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	ring "github.com/impulse/ring/go"
)

// timeout is generous: a follower that takes this long is stuck, not slow.
const timeout = 30 * time.Second

type params struct {
	size, iters, warmup, count, gapUs int
	wait                              string
	typed                             bool
	cpu                               int
}

func defaults() params {
	return params{size: 64, wait: "adaptive", iters: 10000, warmup: 1000, count: 100000, cpu: 1}
}

func parse(args []string) params {
	p := defaults()
	fs := flag.NewFlagSet("ring-go-bench", flag.ExitOnError)
	fs.IntVar(&p.size, "size", p.size, "payload bytes")
	fs.StringVar(&p.wait, "wait", p.wait, "spin, adaptive or block")
	fs.IntVar(&p.iters, "iters", p.iters, "measured round trips")
	fs.IntVar(&p.warmup, "warmup", p.warmup, "round trips before measuring")
	fs.IntVar(&p.count, "count", p.count, "messages for throughput")
	fs.IntVar(&p.gapUs, "gap-us", p.gapUs, "pause between round trips")
	fs.BoolVar(&p.typed, "typed", false, "typed publish (Avro encode) instead of raw")
	fs.IntVar(&p.cpu, "cpu", p.cpu, "the follower's CPU")
	_ = fs.Parse(args)
	return p
}

func (p params) args() []string {
	a := []string{"--size", strconv.Itoa(p.size), "--wait", p.wait, "--iters", strconv.Itoa(p.iters), "--warmup",
		strconv.Itoa(p.warmup), "--count", strconv.Itoa(p.count), "--gap-us", strconv.Itoa(p.gapUs), "--cpu",
		strconv.Itoa(p.cpu)}
	if p.typed {
		a = append(a, "--typed")
	}
	return a
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ring-go-bench: "+format+"\n", args...)
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		die("%s failed: %v", what, err)
	}
}

// pin puts every thread of the process on cpu (threads started later inherit it).
func pin(cpu int) {
	var mask [16]uint64
	mask[cpu/64] |= 1 << (cpu % 64)
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask),
			uintptr(unsafe.Pointer(&mask)))
	}
}

func cpus() int { return runtime.NumCPU() }

// follower is this program again, `follow <case>`, its stdin and stdout piped to us.
type follower struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
}

func spawn(name string, p params) *follower {
	self, err := os.Executable()
	check(err, "finding this program")
	cmd := exec.Command(self, append([]string{"follow", name}, p.args()...)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	check(err, "stdin pipe")
	out, err := cmd.StdoutPipe()
	check(err, "stdout pipe")
	check(cmd.Start(), "starting a follower")
	return &follower{cmd: cmd, in: in, lines: bufio.NewScanner(out)}
}

func (f *follower) expect(word string) {
	for f.lines.Scan() {
		if f.lines.Text() == word {
			return
		}
	}
	die("the follower exited while the leader waited for `%s`", word)
}

func (f *follower) finish() {
	_ = f.in.Close()
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		_ = f.cmd.Process.Kill()
		<-done
	}
}

func say(word string) { fmt.Println(word) }

func waitForLeader() { _, _ = io.Copy(io.Discard, os.Stdin) }

func latencyRow(name, system string, p params, samples []int64) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	q := func(x float64) int64 {
		rank := int(x*float64(len(samples)) + 0.999999)
		rank = max(1, min(rank, len(samples)))
		return samples[rank-1]
	}
	fmt.Printf(`{"case":"%s","system":"%s","payload_bytes":%d,"wait":"%s","subscribers":null,"p50_ns":%d,`+
		`"p99_ns":%d,"p999_ns":%d,"msgs_per_s":null,"bytes_per_s":null}`+"\n", name, system, p.size, p.wait,
		q(0.5), q(0.99), q(0.999))
}

func rateRow(system string, p params, seconds float64) {
	perS := float64(p.count) / seconds
	fmt.Printf(`{"case":"pubsub_throughput","system":"%s","payload_bytes":%d,"wait":"%s","subscribers":1,`+
		`"p50_ns":null,"p99_ns":null,"p999_ns":null,"msgs_per_s":%.1f,"bytes_per_s":%.1f}`+"\n", system, p.size,
		p.wait, perS, perS*float64(p.size))
}

func strategy(wait string) ring.WaitStrategy {
	switch wait {
	case "spin":
		return ring.BusySpin
	case "block":
		return ring.Blocking
	}
	return ring.Adaptive
}

func connect(app string, p params) *ring.Conn {
	conn, err := ring.Connect(context.Background(), app, ring.WithWait(strategy(p.wait)))
	check(err, "connecting to the broker")
	return conn
}

// fixedSchema is an Avro fixed of exactly size bytes: its datum is the payload itself.
func fixedSchema(size int) string {
	return fmt.Sprintf(`{"type":"fixed","name":"Payload%d","namespace":"bench","size":%d}`, size, size)
}

// capacity holds at least 4 messages of size and 1 MiB.
func capacity(size int) uint64 {
	want := uint64(size+64) * 4
	c := uint64(1 << 20)
	for c < want {
		c <<= 1
	}
	return c
}

func publish(conn *ring.Conn, name string, p params) *ring.Publisher {
	// The previous case's channel of this name may still be on its way out.
	for attempt := 0; ; attempt++ {
		pub, err := conn.PublishChannel(name, fixedSchema(p.size), ring.WithCapacity(capacity(p.size)),
			ring.WithWait(strategy(p.wait)), ring.WithSendTimeout(timeout))
		if errors.Is(err, ring.ErrNameTaken) && attempt < 500 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		check(err, "publishing "+name)
		return pub
	}
}

func subscribe(conn *ring.Conn, name string, p params) *ring.Subscriber {
	sub, err := conn.Subscribe(name, fixedSchema(p.size), ring.WithWait(strategy(p.wait)))
	check(err, "subscribing to "+name)
	return sub
}

func filled(size int, b byte) []byte {
	out := make([]byte, size)
	for i := range out {
		out[i] = b
	}
	return out
}

var background = context.Background()

// pubsubLatency is a channel ping-pong: one way = round trip / 2.
func pubsubLatency(p params) {
	pin(0)
	conn := connect("bench-go-ping", p)
	ping := publish(conn, "bench.ping", p)
	f := spawn("pubsub-latency", p)
	f.expect("ready")
	pong := subscribe(conn, "bench.pong", p)
	payload, buf := filled(p.size, 0xA5), make([]byte, 0, p.size)
	samples := make([]int64, p.iters)
	for i := 0; i < p.warmup+p.iters; i++ {
		start := time.Now()
		check(ping.PublishRaw(payload), "publish")
		var err error
		buf, err = pong.RecvRaw(background, buf)
		check(err, "receive")
		if i >= p.warmup {
			samples[i-p.warmup] = time.Since(start).Nanoseconds() / 2
		}
		if p.gapUs > 0 {
			time.Sleep(time.Duration(p.gapUs) * time.Microsecond)
		}
	}
	wait := p
	if p.gapUs > 0 {
		wait.wait += fmt.Sprintf("-gap%dus", p.gapUs)
	}
	latencyRow("pubsub_latency", "ring-go", wait, samples)
	_ = pong.Close()
	f.finish()
	_ = ping.Close()
	_ = conn.Close()
}

func pubsubLatencyFollower(p params) {
	pin(p.cpu)
	conn := connect("bench-go-pong", p)
	ping := subscribe(conn, "bench.ping", p)
	pong := publish(conn, "bench.pong", p)
	say("ready")
	// Echo each ping from where it lies in shared memory, as the C follower does.
	echo := func(datum []byte) error { return pong.PublishRaw(datum) }
	for i := 0; i < p.warmup+p.iters; i++ {
		check(ping.RecvView(background, echo), "receive and publish")
	}
	waitForLeader()
	_ = conn.Close()
}

// callLatency is the round trip of a call to `bench.echo` (not halved: a call is a round trip).
func callLatency(p params) {
	pin(0)
	conn := connect("bench-go-caller", p)
	f := spawn("call-latency", p)
	f.expect("ready")
	payload := filled(p.size, 0x5A)
	samples := make([]int64, p.iters)
	ctx, cancel := context.WithTimeout(background, time.Hour)
	defer cancel()
	echo, err := conn.Function(ctx, "bench.echo", fixedSchema(p.size), fixedSchema(p.size))
	check(err, "resolving bench.echo")
	for i := 0; i < p.warmup+p.iters; i++ {
		start := time.Now()
		resp, err := echo.CallRaw(ctx, ring.RawRequest(payload))
		check(err, "call")
		if i >= p.warmup {
			samples[i-p.warmup] = time.Since(start).Nanoseconds()
		}
		if len(resp) != p.size {
			die("the echo returned %d bytes instead of %d", len(resp), p.size)
		}
	}
	latencyRow("call_latency", "ring-go", p, samples)
	f.finish()
	_ = conn.Close()
}

func callLatencyFollower(p params) {
	pin(p.cpu)
	conn := connect("bench-go-provider", p)
	fn, err := conn.ExposeFunction("bench.echo", fixedSchema(p.size), fixedSchema(p.size),
		func(ctx context.Context, r *ring.Request) (any, error) { return ring.RawResponse(r.Raw()), nil })
	check(err, "expose bench.echo")
	say("ready")
	waitForLeader()
	_ = fn.Close()
	_ = conn.Close()
}

// throughput: one publisher, one subscriber; messages per second until the subscriber has them all.
func throughput(p params) {
	pin(0)
	conn := connect("bench-go-publisher", p)
	pub := publish(conn, "bench.stream", p)
	f := spawn("throughput", p)
	f.expect("ready")
	payload := filled(p.size, 0x3C)
	system := "ring-go"
	start := time.Now()
	if p.typed {
		system = "ring-go-typed"
		for i := 0; i < p.count; i++ {
			check(pub.Publish(payload), "publish")
		}
	} else {
		for i := 0; i < p.count; i++ {
			check(pub.PublishRaw(payload), "publish")
		}
	}
	f.expect("done")
	rateRow(system, p, time.Since(start).Seconds())
	f.finish()
	_ = pub.Close()
	_ = conn.Close()
}

func throughputFollower(p params) {
	pin(p.cpu)
	conn := connect("bench-go-subscriber", p)
	sub := subscribe(conn, "bench.stream", p)
	say("ready")
	total := 0
	count := func(datum []byte) error { total += len(datum); return nil }
	for i := 0; i < p.count; i++ {
		check(sub.RecvView(background, count), "receive")
	}
	if total != p.size*p.count {
		die("received %d bytes instead of %d", total, p.size*p.count)
	}
	say("done")
	waitForLeader()
	_ = conn.Close()
}

// socketPath is where the Unix-socket baseline listens: a private directory under the temp dir.
func socketPath() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("ring-go-bench-%d.sock", os.Getpid()))
}

// udsLatency is the baseline a Go user would pick: a Unix stream socket, ping-pong, one way = rtt / 2.
func udsLatency(p params) {
	pin(0)
	path := socketPath()
	ln, err := net.Listen("unix", path)
	check(err, "listen")
	defer os.Remove(path)
	fp := p
	f := spawnUDS("uds-latency", fp, path)
	conn, err := ln.Accept()
	check(err, "accept")
	f.expect("ready")
	payload, buf := filled(p.size, 0xA5), make([]byte, p.size)
	samples := make([]int64, p.iters)
	for i := 0; i < p.warmup+p.iters; i++ {
		start := time.Now()
		_, err := conn.Write(payload)
		check(err, "write")
		_, err = io.ReadFull(conn, buf)
		check(err, "read")
		if i >= p.warmup {
			samples[i-p.warmup] = time.Since(start).Nanoseconds() / 2
		}
	}
	p.wait = "-"
	latencyRow("pubsub_latency", "go-uds", p, samples)
	_ = conn.Close()
	f.finish()
	_ = ln.Close()
}

func spawnUDS(name string, p params, path string) *follower {
	f := spawn(name, p)
	_, _ = fmt.Fprintln(f.in, path)
	return f
}

func udsFollower(p params, echo bool) {
	pin(p.cpu)
	in := bufio.NewReader(os.Stdin)
	path, err := in.ReadString('\n')
	check(err, "reading the socket path")
	conn, err := net.Dial("unix", strings.TrimSpace(path))
	check(err, "dial")
	say("ready")
	buf := make([]byte, p.size)
	n := p.warmup + p.iters
	if !echo {
		n = p.count
	}
	for i := 0; i < n; i++ {
		_, err := io.ReadFull(conn, buf)
		check(err, "read")
		if echo {
			_, err = conn.Write(buf)
			check(err, "write")
		}
	}
	say("done")
	_, _ = io.Copy(io.Discard, in)
	_ = conn.Close()
}

// udsThroughput streams count messages of size bytes through a Unix stream socket.
func udsThroughput(p params) {
	pin(0)
	path := socketPath()
	ln, err := net.Listen("unix", path)
	check(err, "listen")
	defer os.Remove(path)
	f := spawnUDS("uds-throughput", p, path)
	conn, err := ln.Accept()
	check(err, "accept")
	f.expect("ready")
	payload := filled(p.size, 0x3C)
	start := time.Now()
	for i := 0; i < p.count; i++ {
		_, err := conn.Write(payload)
		check(err, "write")
	}
	f.expect("done")
	p.wait = "-"
	rateRow("go-uds", p, time.Since(start).Seconds())
	_ = conn.Close()
	f.finish()
	_ = ln.Close()
}

type benchCase struct {
	lead, follow func(params)
}

var cases = map[string]benchCase{
	"pubsub-latency": {pubsubLatency, pubsubLatencyFollower},
	"call-latency":   {callLatency, callLatencyFollower},
	"throughput":     {throughput, throughputFollower},
	"uds-latency":    {udsLatency, func(p params) { udsFollower(p, true) }},
	"uds-throughput": {udsThroughput, func(p params) { udsFollower(p, false) }},
}

// suite is the Go subset of ring-bench's suite, with the same iteration counts.
func suite(quick bool) {
	lat := defaults()
	lat.iters, lat.warmup = 100000, 10000
	if quick {
		lat.iters, lat.warmup = 2000, 200
	}
	for _, c := range []struct {
		size int
		wait string
	}{{64, "spin"}, {64, "adaptive"}, {4096, "spin"}} {
		p := lat
		p.size, p.wait = c.size, c.wait
		pubsubLatency(p)
	}
	call := lat
	call.wait = "spin"
	callLatency(call)
	udsLatency(lat)
	tp := defaults()
	tp.count = 5000000
	if quick {
		tp.count = 200000
	}
	throughput(tp)
	typed := tp
	typed.typed = true
	throughput(typed)
	udsThroughput(tp)
	big := tp
	big.size, big.count = 4096, 500000
	if quick {
		big.count = 20000
	}
	throughput(big)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: ring-go-bench suite [--quick] | ring-go-bench <case> [--size N ...]")
	}
	switch os.Args[1] {
	case "suite":
		// Followers inherit the leader's CPU and move themselves: only the leader counts CPUs.
		if cpus() < 2 {
			die("needs two CPUs (a leader and a follower)")
		}
		suite(len(os.Args) > 2 && os.Args[2] == "--quick")
	case "follow":
		if len(os.Args) < 3 {
			die("follow needs a case")
		}
		c, ok := cases[os.Args[2]]
		if !ok {
			die("unknown case `%s`", os.Args[2])
		}
		c.follow(parse(os.Args[3:]))
	default:
		c, ok := cases[os.Args[1]]
		if !ok {
			die("unknown case `%s`", os.Args[1])
		}
		c.lead(parse(os.Args[2:]))
	}
}
