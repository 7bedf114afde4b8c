// Shared memory: POSIX shared memory objects under /dev/shm mapped whole, the segment header checks
// of spec/wire-format.md §2.1, and atomic access to the words inside a mapping. Offsets are checked
// against the mapping by the callers (every structure validates its own before use); the accessors
// here only turn an offset into an aligned word.

package ring

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// segment is one mapped shared memory object. Go pointers are never stored in it.
type segment struct {
	name string
	mem  []byte
}

// errNotReady says a segment exists but its creator has not finished laying it out.
var errNotReady = errors.New("segment not ready")

// errNotFound says no object of that name exists.
var errNotFound = errors.New("segment not found")

// openSegment opens and maps the object `name` (as the broker spells it, with its leading slash) and
// checks its header for `kind`. It returns errNotFound, errNotReady, or a *Error.
func openSegment(name string, kind uint32) (*segment, error) {
	if !strings.HasPrefix(name, "/") || strings.Contains(name[1:], "/") || len(name) < 2 || len(name) > 255 {
		return nil, corrupt("the broker named an invalid segment %q", name)
	}
	f, err := os.OpenFile("/dev/shm"+name, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNotFound
		}
		return nil, newError(CodeIo, "cannot open segment %s: %v", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, newError(CodeIo, "cannot stat segment %s: %v", name, err)
	}
	size := st.Size()
	if size < segHeaderSize {
		// The creator sizes the object right after creating it: smaller than a header is "not ready".
		return nil, errNotReady
	}
	if uint64(size) > 1<<40 {
		return nil, corrupt("segment %s is %d bytes, larger than any Ring segment", name, size)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, newError(CodeIo, "cannot map segment %s: %v", name, err)
	}
	s := &segment{name: name, mem: mem}
	if err := s.checkHeader(kind); err != nil {
		s.unmap()
		return nil, err
	}
	return s, nil
}

// checkHeader is steps 3 to 7 of "Opening a segment" (wire-format.md §2.1).
func (s *segment) checkHeader(kind uint32) error {
	// SYNC: observe segment layout (pairs with the creator's Release store of the version, last).
	version := s.load32(segVersion)
	if version == 0 {
		return errNotReady
	}
	if magic := s.load32(segMagic); magic != segMagicValue {
		return corrupt("segment %s has magic %#08x, expected %#08x", s.name, magic, segMagicValue)
	}
	if version != specVersion {
		return newError(CodeVersionMismatch, "segment %s has version %d, this connector speaks version %d",
			s.name, version, specVersion)
	}
	if k := s.load32(segKind); k != kind {
		return corrupt("segment %s has kind %d, expected %d", s.name, k, kind)
	}
	if size := s.load64(segSize); size != uint64(len(s.mem)) {
		return corrupt("segment %s says it is %d bytes but is %d", s.name, size, len(s.mem))
	}
	return nil
}

func (s *segment) unmap() {
	if s.mem != nil {
		_ = syscall.Munmap(s.mem)
		s.mem = nil
	}
}

func (s *segment) size() uint64 { return uint64(len(s.mem)) }

// word32 and word64 turn an offset into an atomic word; the offset must be in bounds and aligned, which
// every caller has checked (or which holds by the layout's constants).
func (s *segment) word32(off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&s.mem[off])) }
func (s *segment) word64(off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }

// Go's sync/atomic operations are sequentially consistent: each load is at least Acquire, each store
// at least Release, each read-modify-write SeqCst, as spec/ requires or more.
func (s *segment) load32(off uint64) uint32     { return atomic.LoadUint32(s.word32(off)) }
func (s *segment) load64(off uint64) uint64     { return atomic.LoadUint64(s.word64(off)) }
func (s *segment) store32(off uint64, v uint32) { atomic.StoreUint32(s.word32(off), v) }
func (s *segment) store64(off uint64, v uint64) { atomic.StoreUint64(s.word64(off), v) }

// startTime is field 22 of /proc/PID/stat (clock ticks since boot), or 0 when it cannot be read.
func startTime(pid int) uint64 {
	fields, ok := procStat(pid)
	if !ok || len(fields) < 20 {
		return 0
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// procStat returns the fields of /proc/PID/stat after the command name (field 3 onwards): the name
// may hold spaces and parentheses, so the split is at the last ')'.
func procStat(pid int) ([]string, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	text := string(data)
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(text[i+1:]), true
}

// alive says whether process pid with start time start runs (bootstrap.md §8.1): it exists, is not a
// zombie, and started when recorded (against pid reuse).
func alive(pid uint32, start uint64) bool {
	if pid == 0 {
		return false
	}
	fields, ok := procStat(int(pid))
	if !ok || len(fields) < 20 {
		return false
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return false
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	return err == nil && v == start
}
