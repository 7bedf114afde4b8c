// Doorbells (spec/wire-format.md §3): a futex word and a sleeper count, so a consumer can sleep until
// a producer has news and a producer pays no system call when nobody sleeps. Futexes are shared
// between processes: FUTEX_WAIT and FUTEX_WAKE without FUTEX_PRIVATE_FLAG.

package ring

import (
	"math"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	futexWait = 0
	futexWake = 1
	// maxSleep bounds one futex sleep, so conditions nobody rings for are re-checked (§3.2).
	maxSleep = 200 * time.Millisecond
)

// WaitStrategy says how an endpoint waits (wire-format.md §3.4).
type WaitStrategy int

const (
	// Adaptive spins, then yields, then sleeps on the futex: the default.
	Adaptive WaitStrategy = iota
	// BusySpin evaluates the condition in a loop: lowest latency, one core busy.
	BusySpin
	// Blocking sleeps on the futex at once.
	Blocking
)

// spinFor and yieldFor are the adaptive strategy's windows, longer than one futex wake-up on a VM.
const (
	spinFor  = 50 * time.Microsecond
	yieldFor = 50 * time.Microsecond
)

// doorbell is a doorbell inside a mapped segment.
type doorbell struct {
	seq      *uint32
	sleepers *uint32
}

func doorbellAt(s *segment, off uint64) doorbell {
	return doorbell{seq: s.word32(off + doorbellSeq), sleepers: s.word32(off + doorbellSleepers)}
}

// ring wakes every sleeper, if any (§3.1). The caller has published its news with an atomic store;
// Go's atomics are sequentially consistent, so that store and the load of sleepers below stand for
// the spec's SeqCst fence.
func (d doorbell) ring() {
	if atomic.LoadUint32(d.sleepers) == 0 {
		return
	}
	d.wakeAll()
}

// wakeAll wakes every sleeper whether or not one is counted (to interrupt our own waits).
func (d doorbell) wakeAll() {
	atomic.AddUint32(d.seq, 1)
	// The futex word's address is in a shared mapping, never in the Go heap.
	_, _, _ = syscall.Syscall6(sysFutex, uintptr(unsafe.Pointer(d.seq)), futexWake, math.MaxInt32, 0, 0, 0)
}

// wait returns once cond is true, or deadline passes (zero: never), or stop() is true; cond and stop
// are pure checks with no side effect. It reports whether cond was true.
func (d doorbell) wait(strategy WaitStrategy, deadline time.Time, cond func() bool, stop func() bool) bool {
	if cond() {
		return true
	}
	start := time.Now()
	if strategy != Blocking {
		for i := 0; ; i++ {
			if cond() {
				return true
			}
			if i&63 == 63 {
				now := time.Now()
				if stop() || (!deadline.IsZero() && now.After(deadline)) {
					return false
				}
				if strategy == Adaptive && now.Sub(start) > spinFor+yieldFor {
					break
				}
				if strategy == Adaptive && now.Sub(start) > spinFor {
					runtime.Gosched()
				}
			}
		}
	}
	for {
		if stop() {
			return cond()
		}
		timeout := maxSleep
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left < timeout {
				timeout = left
			}
		}
		s := atomic.LoadUint32(d.seq)
		atomic.AddUint32(d.sleepers, 1)
		if !cond() && timeout > 0 {
			ts := syscall.NsecToTimespec(int64(timeout))
			// Syscall6, not RawSyscall: the scheduler hands this thread's other goroutines elsewhere.
			_, _, _ = syscall.Syscall6(sysFutex, uintptr(unsafe.Pointer(d.seq)), futexWait, uintptr(s),
				uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
		atomic.AddUint32(d.sleepers, ^uint32(0))
		if cond() {
			return true
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return false
		}
	}
}
