// Fuzz targets for the decoders that read untrusted bytes: control records from the broker and the SPSC
// ring over arbitrary segment bytes. `go test -run '^$' -fuzz '^FuzzControlDecode$' -fuzztime 10s`
// runs one (`cargo ringctl fuzz` runs them all); a plain `go test` runs each over its seed corpus,
// which comes from spec/vectors/control.txt and from rings this package's own producer wrote.

package ring

import (
	"bufio"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// controlVectors are the payloads of spec/vectors/control.txt.
func controlVectors(f *testing.F) [][]byte {
	file, err := os.Open("../spec/vectors/control.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	var out [][]byte
	scan := bufio.NewScanner(file)
	scan.Buffer(make([]byte, 1<<20), 1<<20)
	for scan.Scan() {
		if hexText, ok := strings.CutPrefix(scan.Text(), "bytes: "); ok {
			b, err := hex.DecodeString(hexText)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// FuzzControlDecode: decodeControl never panics; whatever decodes re-encodes to a payload that decodes
// to an equal record. The input is tried as it is and behind a valid SOE header.
func FuzzControlDecode(f *testing.F) {
	for _, b := range controlVectors(f) {
		f.Add(b)
	}
	check := func(t *testing.T, b []byte) {
		rec, err := decodeControl(b)
		if err != nil {
			return
		}
		again, err := decodeControl(encodeControl(nil, rec))
		if err != nil {
			t.Fatalf("a decoded %T does not decode after encoding: %v", rec, err)
		}
		if !reflect.DeepEqual(again, rec) {
			t.Fatalf("control record changed through encode and decode: %#v became %#v", rec, again)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		header := soeHeader(controlFingerprint)
		check(t, append(header[:], b...))
	})
}

const fuzzCapacity = minRingCapacity

// fuzzSegment is a segment of `size` bytes in 8-byte aligned private memory (as a mapping is), holding
// `b` from its start and zeroes after it.
func fuzzSegment(size uint64, b []byte) *segment {
	words := make([]uint64, (size+7)/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)
	copy(mem, b)
	return &segment{name: "/fuzz", mem: mem}
}

// FuzzRingRead: the consumer (peek, release) and the producer (hasSpace, write) of the SPSC ring over
// ring bytes from the fuzzer, indices and frame headers included. Never panics or slices outside the
// segment; every payload handed out lies inside the ring's data area.
func FuzzRingRead(f *testing.F) {
	// Seeds: rings our own producer wrote, with a wrap (padding) in one of them.
	for _, n := range []int{0, 1, 3, 40} {
		seg := fuzzSegment(ringHeaderSize+fuzzCapacity, nil)
		seg.store64(ringCapacity, fuzzCapacity)
		r, err := openRing(seg, 0, fuzzCapacity, frameKindControl)
		if err != nil {
			f.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := r.write(frameKindControl, uint64(i), make([]byte, 100+i)); err != nil {
				r.head = r.tail // consume everything so the ring wraps
				seg.store64(ringHead, r.head)
				_ = r.write(frameKindControl, uint64(i), make([]byte, 100+i))
			}
		}
		f.Add(byte(0), uint16(7), append([]byte(nil), seg.mem...))
	}
	f.Fuzz(func(t *testing.T, flags byte, writeLen uint16, b []byte) {
		seg := fuzzSegment(ringHeaderSize+fuzzCapacity, b)
		if flags&1 == 0 {
			seg.store64(ringCapacity, fuzzCapacity)
		}
		allowed := []uint16{frameKindControl}
		if flags&2 != 0 {
			allowed = []uint16{frameKindCallOK, frameKindCallError}
		}
		r, err := openRing(seg, 0, fuzzCapacity, allowed...)
		if err != nil {
			return
		}
		dataStart := uintptr(unsafe.Pointer(&seg.mem[ringHeaderSize]))
		for i := 0; i < 64; i++ {
			_ = r.hasData()
			rec, ok, err := r.peek()
			if err != nil || !ok {
				break
			}
			if n := len(rec.payload); n > 0 {
				start := uintptr(unsafe.Pointer(&rec.payload[0]))
				if start < dataStart || start+uintptr(n) > dataStart+fuzzCapacity {
					t.Fatalf("payload of %d bytes at %#x lies outside the ring data at %#x", n, start, dataStart)
				}
			}
			r.release(rec)
		}
		_ = r.hasSpace(int(writeLen))
		_ = r.write(frameKindControl, 1, make([]byte, int(writeLen)%(2*fuzzCapacity)))
	})
}
