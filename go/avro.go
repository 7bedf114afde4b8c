// Avro glue: schemas parsed by github.com/twmb/avro (see README.md for why this library), and Single
// Object Encoding headers (spec/wire-format.md §9) written with the fingerprint the broker returned.

package ring

import (
	"encoding/binary"
	"strings"

	"github.com/twmb/avro"
)

// parseSchema parses schema JSON, or fails with InvalidSchema.
func parseSchema(what, schema string) (*avro.Schema, error) {
	s, err := avro.Parse(schema)
	if err != nil {
		msg := err.Error()
		if msg != "" {
			msg = strings.ToLower(msg[:1]) + msg[1:]
		}
		return nil, newError(CodeInvalidSchema, "%s is not a valid Avro schema: %s", what, msg)
	}
	return s, nil
}

// Fingerprint is the CRC-64-AVRO (Rabin) fingerprint of a schema's Parsing Canonical Form, the value
// the broker computes; it fails with InvalidSchema.
func Fingerprint(schema string) (uint64, error) {
	s, err := parseSchema("the schema", schema)
	if err != nil {
		return 0, err
	}
	h := avro.NewRabin()
	_, _ = h.Write(s.Canonical())
	return h.Sum64(), nil
}

// soeHeader is the 10-byte Single Object Encoding header for fingerprint f.
func soeHeader(f uint64) [soeHeaderLen]byte {
	var h [soeHeaderLen]byte
	h[0], h[1] = 0xC3, 0x01
	binary.LittleEndian.PutUint64(h[2:], f)
	return h
}

// checkSOE checks a payload's header against the expected fingerprint and returns the datum.
func checkSOE(what string, payload []byte, want uint64) ([]byte, error) {
	if len(payload) < soeHeaderLen {
		return nil, newError(CodeDecode, "%s of %d bytes is shorter than a single object header", what, len(payload))
	}
	if payload[0] != 0xC3 || payload[1] != 0x01 {
		return nil, newError(CodeDecode, "%s starts with %02x %02x, not the single object marker c3 01", what,
			payload[0], payload[1])
	}
	if got := binary.LittleEndian.Uint64(payload[2:10]); got != want {
		return nil, &Error{Code: CodeDecode, Message: what + " was written with fingerprint " + fp(got) +
			", expected " + fp(want), Expected: want, Presented: got}
	}
	return payload[soeHeaderLen:], nil
}

// decodeDatum decodes a whole datum into v; bytes left over are a Decode error too.
func decodeDatum(what string, s *avro.Schema, datum []byte, v any) error {
	rest, err := s.Decode(datum, v)
	if err != nil {
		return decodeError(what, err)
	}
	if len(rest) != 0 {
		return newError(CodeDecode, "%s has %d bytes left over after its datum", what, len(rest))
	}
	return nil
}

// avroSchema names the library's type for the tests.
type avroSchema = avro.Schema
