// The check values of spec/testee.md §3, and the option rules of §1.

package main

import (
	"bytes"
	"testing"
)

func TestMessageContentsMatchTheContractsCheckValues(t *testing.T) {
	cases := []struct {
		seq      int64
		len      int
		starts   []byte
		checksum int64
	}{
		{0, 0, nil, 590684067820433389},
		{1, 1207, []byte{0x1f, 0x3e, 0x5d, 0x7c}, 8571947702623170026},
		{2, 413, []byte{0x3e, 0x5d, 0x7c, 0x9b}, -2000780879586199215},
		{1000, 397, []byte{0x1f, 0x30, 0x51, 0x72}, -6594530319833675456},
	}
	for _, c := range cases {
		b := body(c.seq)
		if len(b) != c.len || !bytes.HasPrefix(b, c.starts) || checksum(c.seq, b) != c.checksum {
			t.Errorf("message %d: %d bytes starting % x, checksum %d", c.seq, len(b), b[:min(4, len(b))],
				checksum(c.seq, b))
		}
	}
}

func TestOptionsARoleDoesNotTakeAreUsageErrors(t *testing.T) {
	bad := [][]string{
		{"publisher", "--function", "f"},
		{"caller", "--count"},
		{"caller", "--count", "+3"},
		{"subscriber", "--schema", "mine"},
		{"provider", "stray"},
		{"nobody"},
	}
	for _, argv := range bad {
		if _, f := parse(argv[0], argv[1:]); f == nil || f.usage == "" {
			t.Errorf("%v was accepted", argv)
		}
	}
	a, f := parse("caller", []string{"--count", "5", "--count", "-7", "--keep-going"})
	if f != nil || a.number("--count", 0) != -7 || !a.flag("--keep-going") {
		t.Errorf("the last --count did not count: %v %v", a, f)
	}
}
