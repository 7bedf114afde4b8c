// Test helpers: a live broker (target/debug/impulsed, or $IMPULSE_RING_BROKER) in a namespace of the
// test's own, the Go testee as a separate process, and the /dev/shm check every test ends with.

package ring

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// broker is a live impulsed process serving one test's namespace.
type broker struct {
	t   testing.TB
	ns  string
	cmd *exec.Cmd
}

func brokerBinary(t testing.TB) string {
	if b := os.Getenv("IMPULSE_RING_BROKER"); b != "" {
		return b
	}
	b, err := filepath.Abs("../target/debug/impulsed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("the broker %s is missing: run `cargo build -p impulsed` first (or set IMPULSE_RING_BROKER)", b)
	}
	return b
}

var nsClean = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// testNamespace is unique per test and per run, within the 64-byte limit.
func testNamespace(t testing.TB) string {
	name := nsClean.ReplaceAllString(t.Name(), "-")
	ns := fmt.Sprintf("go-%d-%s", os.Getpid(), name)
	if len(ns) > 64 {
		ns = ns[:64]
	}
	return ns
}

// startBroker starts a broker in a fresh namespace; at cleanup it stops it (SIGTERM, exit 0) and checks
// that nothing of the namespace is left in /dev/shm.
func startBroker(t testing.TB) *broker {
	t.Helper()
	b := &broker{t: t, ns: testNamespace(t)}
	b.start()
	t.Cleanup(func() {
		b.stop()
		if left := shmLeft(b.ns); len(left) > 0 {
			t.Errorf("namespace %s left %v in /dev/shm", b.ns, left)
		}
	})
	return b
}

func (b *broker) start() {
	b.t.Helper()
	b.cmd = exec.Command(brokerBinary(b.t), "--ns", b.ns, "--log-level", "warn")
	b.cmd.Stdout, b.cmd.Stderr = os.Stderr, os.Stderr
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("cannot start the broker: %v", err)
	}
	ctl := "/dev/shm/impulse-ring." + b.ns + ".ctl"
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Ready means this broker's control segment: a dead broker's may still be there.
		if ready(ctl, b.cmd.Process.Pid) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the broker did not create %s within 10 s", ctl)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ready says whether the control segment at path is laid out (version set) by process pid.
func ready(path string, pid int) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var h [segHeaderSize]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(h[segVersion:]) != 0 && binary.LittleEndian.Uint32(h[segCreatorPid:]) == uint32(pid)
}

// stop ends the broker with SIGTERM; it must exit 0.
func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	err := b.cmd.Wait()
	b.cmd = nil
	if err != nil {
		b.t.Errorf("the broker did not exit cleanly on SIGTERM: %v", err)
	}
}

// kill ends the broker with SIGKILL, as a crash would.
func (b *broker) kill() {
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}

func shmLeft(ns string) []string {
	entries, _ := os.ReadDir("/dev/shm")
	var left []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "impulse-ring."+ns+".") {
			left = append(left, e.Name())
		}
	}
	return left
}

func (b *broker) connect(t testing.TB, name string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, name, WithNamespace(b.ns))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testee is the Go testee run as a process of its own (so it can be killed).
type testee struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
	stdin interface{ Close() error }
}

// testeePath is the Go testee built from this tree by TestMain, so it never lags the code under test.
var testeePath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ring-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testeePath = filepath.Join(dir, "testee")
	build := exec.Command("go", "build", "-o", testeePath, "./cmd/testee")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build the Go testee: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func testeeBinary(t *testing.T) string { return testeePath }

func (b *broker) testee(t *testing.T, args ...string) *testee {
	t.Helper()
	cmd := exec.Command(testeeBinary(t), args...)
	cmd.Env = append(os.Environ(), "IMPULSE_RING_NS="+b.ns)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &testee{cmd: cmd, done: make(chan struct{}), stdin: stdin}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
	})
	return p
}

// waitLine waits until the testee printed a line starting with prefix.
func (p *testee) waitLine(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.HasPrefix(l, prefix) {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Fatalf("the testee printed no %q within 30 s; it printed %q", prefix, p.lines)
}

func (p *testee) kill() { _ = p.cmd.Process.Kill() }

// errCode asserts err is an *Error of code want, matched by errors.Is on the sentinel too.
func errCode(t *testing.T, err error, want Code) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s, got no error", want)
	}
	e, ok := err.(*Error)
	if !ok || e.Code != want {
		t.Fatalf("expected %s, got %T %v", want, err, err)
	}
	return e
}

func mustSchema(t *testing.T, s string) *avroSchema {
	t.Helper()
	sc, err := parseSchema("test schema", s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
