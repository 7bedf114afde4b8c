// Tests against spec/: the layout constants against the generated C header, the error vocabulary
// against spec/wire-format.md §11 (or spec/vectors/errors.txt), control records against
// spec/vectors/control.txt, schema fingerprints against spec/vectors/fingerprints.txt, and X25519,
// the session secret and sealed keys against spec/vectors/sealing.txt.

package ring

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestLayoutConstantsMatchTheGeneratedHeader(t *testing.T) {
	ours := map[string]uint64{
		"IR_CONTROL_FINGERPRINT": controlFingerprint, "IR_SPEC_VERSION": uint64(specVersion),
		"IR_MAGIC": uint64(segMagicValue), "IR_CACHE_LINE": cacheLine, "IR_KIND_CONTROL": uint64(kindControl),
		"IR_KIND_CHANNEL": uint64(kindChannel), "IR_KIND_LINK": uint64(kindLink), "IR_SEG_MAGIC": segMagic,
		"IR_SEG_VERSION": segVersion, "IR_SEG_KIND": segKind, "IR_SEG_SIZE": segSize,
		"IR_SEG_CREATOR_PID": segCreatorPid, "IR_SEG_CREATOR_START": segCreatorStart,
		"IR_SEG_HEADER_SIZE": segHeaderSize, "IR_DOORBELL_SEQ": doorbellSeq, "IR_DOORBELL_SLEEPERS": doorbellSleepers,
		"IR_RING_TAIL": ringTail, "IR_RING_PRODUCER_WAITING": ringProducerWaiting, "IR_RING_HEAD": ringHead,
		"IR_RING_CAPACITY": ringCapacity, "IR_RING_HEADER_SIZE": ringHeaderSize,
		"IR_MIN_RING_CAPACITY": minRingCapacity, "IR_MAX_RING_CAPACITY": maxRingCapacity, "IR_FRAME_LEN": frameLen,
		"IR_FRAME_KIND": frameKind, "IR_FRAME_FLAGS": frameFlags, "IR_FRAME_SEQ": frameSeq,
		"IR_FRAME_HEADER_SIZE": frameHeaderSize, "IR_FRAME_ALIGN": frameAlign,
		"IR_FRAME_KIND_DATA": uint64(frameKindData), "IR_FRAME_KIND_PADDING": uint64(frameKindPadding),
		"IR_FRAME_KIND_CONTROL": uint64(frameKindControl), "IR_FRAME_KIND_CALL_REQUEST": uint64(frameKindCallRequest),
		"IR_FRAME_KIND_CALL_OK": uint64(frameKindCallOK), "IR_FRAME_KIND_CALL_ERROR": uint64(frameKindCallError),
		"IR_CTL_BROKER_PID": ctlBrokerPid, "IR_CTL_MAX_APPS": ctlMaxApps, "IR_CTL_BROKER_START": ctlBrokerStart,
		"IR_CTL_RING_CAPACITY": ctlRingCapacity, "IR_CTL_SHUTTING_DOWN": ctlShuttingDown,
		"IR_CTL_HEARTBEAT": ctlHeartbeat, "IR_CTL_BROKER_DOORBELL": ctlBrokerDoorbell, "IR_CTL_SLOTS": ctlSlots,
		"IR_SLOT_STATE": slotState, "IR_SLOT_PID": slotPid, "IR_SLOT_START": slotStart,
		"IR_SLOT_GENERATION": slotGeneration, "IR_SLOT_DOORBELL": slotDoorbell, "IR_SLOT_REQUEST_RING": slotRequestRing,
		"IR_SLOT_FREE": uint64(slotFree), "IR_SLOT_CLAIMED": uint64(slotClaimed), "IR_SLOT_ACTIVE": uint64(slotActive),
		"IR_SLOT_CLOSING": uint64(slotClosing), "IR_SLOT_FENCED": uint64(slotFenced), "IR_DEFAULT_MAX_APPS": defaultMaxApps,
		"IR_DEFAULT_CONTROL_RING_CAPACITY": defaultControlRingCapacity, "IR_CH_TAIL": chTail,
		"IR_CH_NEXT_SEQ": chNextSeq, "IR_CH_MIN_VALID": chMinValid, "IR_CH_DATA_DOORBELL": chDataDoorbell,
		"IR_CH_SPACE_DOORBELL": chSpaceDoorbell, "IR_CH_CLOSED": chClosed, "IR_CH_CAPACITY": chCapacity,
		"IR_CH_CHANNEL_ID": chChannelID, "IR_CH_FINGERPRINT": chFingerprint, "IR_CH_POLICY": chPolicy,
		"IR_CH_MAX_SUBSCRIBERS": chMaxSubscribers, "IR_CH_SUBSCRIBERS": chSubscribers,
		"IR_POLICY_BLOCK": uint64(policyBlock), "IR_POLICY_LOSSY": uint64(policyLossy),
		"IR_DEFAULT_MAX_SUBSCRIBERS": defaultMaxSubscribers, "IR_DEFAULT_CHANNEL_CAPACITY": defaultChannelCapacity,
		"IR_SUB_STATE": subState, "IR_SUB_OWNER": subOwner, "IR_SUB_POS": subPos, "IR_SUB_MISSED": subMissed, "IR_SUB_SIZE": subSize,
		"IR_SUB_FREE": uint64(subFree), "IR_SUB_RESERVED": uint64(subReserved), "IR_SUB_ACTIVE": uint64(subActive),
		"IR_SUB_JOINING": uint64(subJoining), "IR_SUB_OBSERVING": uint64(subObserving), "IR_LINK_LINK_ID": linkLinkID, "IR_LINK_FUNCTION_ID": linkFunctionID,
		"IR_LINK_CALLER": linkCaller, "IR_LINK_PROVIDER": linkProvider, "IR_LINK_CALLER_GONE": linkCallerGone,
		"IR_LINK_PROVIDER_GONE": linkProviderGone, "IR_LINK_REQUEST_FP": linkRequestFP,
		"IR_LINK_RESPONSE_FP": linkResponseFP, "IR_LINK_CALLS": linkCalls, "IR_LINK_SERVED": linkServed,
		"IR_LINK_FAILED": linkFailed, "IR_LINK_REQUEST_RING": linkRequestRing,
		"IR_DEFAULT_LINK_CAPACITY": defaultLinkCapacity,
	}
	data, err := os.ReadFile("../rust/core/include/impulse_ring_wire.h")
	if err != nil {
		t.Fatal(err)
	}
	// Values are decimal, or (A << B) and (A * B) of decimals.
	define := regexp.MustCompile(`(?m)^#define (IR_[A-Z0-9_]+) (?:(\d+)(?:ull|u)?|\((\d+) (<<|\*) (\d+)\))$`)
	seen := 0
	for _, m := range define.FindAllStringSubmatch(string(data), -1) {
		want, err := strconv.ParseUint(m[2], 10, 64)
		if m[2] == "" {
			a, _ := strconv.ParseUint(m[3], 10, 64)
			b, _ := strconv.ParseUint(m[5], 10, 64)
			want, err = a*b, nil
			if m[4] == "<<" {
				want = a << b
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ours[m[1]]
		if !ok {
			t.Errorf("%s = %d is not known to the Go connector", m[1], want)
			continue
		}
		seen++
		if got != want {
			t.Errorf("%s: Go has %d, the header %d", m[1], got, want)
		}
	}
	if seen != len(ours) {
		t.Errorf("the header defines %d of the Go connector's %d constants", seen, len(ours))
	}
	// Frame header words are u64s at 8-aligned offsets, doorbells on lines of their own.
	if unsafe.Sizeof(uint64(0)) != 8 || frameSeq%8 != 0 || chDataDoorbell%cacheLine != 0 || chSpaceDoorbell%cacheLine != 0 {
		t.Error("layout alignment broken")
	}
	if controlSegmentSize(64, 65536) != 8429824 || channelSegmentSize(32, 1<<20) != 1051136 ||
		linkSegmentSize(256*1024) != 524928 || maxPayload(256*1024) != 131056 || recordSize(64) != 80 {
		t.Error("derived sizes differ from spec/wire-format.md §10")
	}
}

// vocabulary reads the shared error vocabulary: spec/vectors/errors.txt (code, name, description) when
// present, else the table of spec/wire-format.md §11.
func vocabulary(t *testing.T) map[int32][2]string {
	out := map[int32][2]string{}
	if data, err := os.ReadFile("../spec/vectors/errors.txt"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			f := strings.SplitN(line, " ", 3)
			if len(f) < 2 {
				f = strings.SplitN(line, "\t", 3)
			}
			n, err := strconv.Atoi(f[0])
			if err != nil || len(f) < 3 {
				t.Fatalf("errors.txt: cannot read %q", line)
			}
			out[int32(n)] = [2]string{f[1], strings.TrimSpace(f[2])}
		}
		return out
	}
	data, err := os.ReadFile("../spec/wire-format.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| +(\\d+) \\| `([A-Za-z]+)` \\| ([^|]+) \\|")
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		n, _ := strconv.Atoi(m[1])
		out[int32(n)] = [2]string{m[2], strings.TrimSpace(m[3])}
	}
	return out
}

func TestErrorCodesMatchTheSharedVocabulary(t *testing.T) {
	vocab := vocabulary(t)
	if len(vocab) < 23 {
		t.Fatalf("read only %d error codes from spec/", len(vocab))
	}
	for n, v := range vocab {
		c := Code(n)
		if c.String() != v[0] {
			t.Errorf("code %d: Go calls it %s, spec/ %s", n, c, v[0])
		}
		if c.Meaning() != v[1] {
			t.Errorf("code %d (%s): Go means %q, spec/ %q", n, v[0], c.Meaning(), v[1])
		}
		if !errors.Is(&Error{Code: c, Message: "x"}, sentinel(c)) {
			t.Errorf("errors.Is does not match code %d", n)
		}
	}
	if len(codeNames)-1 != len(vocab) {
		t.Errorf("Go knows %d codes, spec/ %d", len(codeNames)-1, len(vocab))
	}
	if codeOf(0) != CodeProtocol || codeOf(999) != CodeProtocol {
		t.Error("an unknown code must read as Protocol")
	}
	if errors.Is(&Error{Code: CodeClosed}, ErrTimeout) {
		t.Error("errors.Is matched another code")
	}
}

// vectorCases reads a line-oriented vector file into its cases: `# N title` then `key: value` lines.
func vectorCases(t *testing.T, path string) []map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	header := regexp.MustCompile(`^# \d+ `)
	for sc.Scan() {
		line := sc.Text()
		if header.MatchString(line) {
			cases = append(cases, map[string]string{"title": line[2:]})
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok && len(cases) > 0 && !strings.HasPrefix(line, "#") {
			cases[len(cases)-1][k] = v
		}
	}
	return cases
}

func TestControlRecordsMatchTheVectors(t *testing.T) {
	cases := vectorCases(t, "../spec/vectors/control.txt")
	if len(cases) < 23 {
		t.Fatalf("only %d control vectors", len(cases))
	}
	byName := map[string]reflect.Type{}
	for _, r := range ctlRecords {
		byName[reflect.TypeOf(r).Name()[3:]] = reflect.TypeOf(r)
	}
	for _, c := range cases {
		name, body, _ := strings.Cut(c["message"], " ")
		typ, ok := byName[name]
		if !ok {
			t.Errorf("%s: no Go record %s", c["title"], name)
			continue
		}
		want, err := hex.DecodeString(c["bytes"])
		if err != nil {
			t.Fatal(err)
		}
		v := reflect.New(typ)
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v.Interface()); err != nil {
			t.Errorf("%s: %v", c["title"], err)
			continue
		}
		rec := v.Elem().Interface()
		if got := encodeControl(nil, rec); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: encodes to %x, expected %x", c["title"], got, want)
		}
		back, err := decodeControl(want)
		if err != nil {
			t.Errorf("%s: %v", c["title"], err)
			continue
		}
		if !reflect.DeepEqual(normalize(back), normalize(rec)) {
			t.Errorf("%s: decodes to %+v, expected %+v", c["title"], back, rec)
		}
		// Every truncation and a byte more are Decode errors, never a panic.
		for n := 0; n < len(want); n++ {
			if _, err := decodeControl(want[:n]); err == nil {
				t.Errorf("%s: %d of %d bytes decoded", c["title"], n, len(want))
			} else {
				errCode(t, err, CodeDecode)
			}
		}
		_, err = decodeControl(append(append([]byte(nil), want...), 0))
		errCode(t, err, CodeDecode)
	}
}

// normalize treats nil and empty slices alike (JSON [] decodes to an empty slice, Avro to nil).
func normalize(v any) string {
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), "null", "[]")
}

func TestControlRecordFieldsFollowControlAvscInOrder(t *testing.T) {
	data, err := os.ReadFile("../spec/schemas/control.avsc")
	if err != nil {
		t.Fatal(err)
	}
	type field struct {
		Name string          `json:"name"`
		Type json.RawMessage `json:"type"`
	}
	var schema []struct {
		Name   string  `json:"name"`
		Fields []field `json:"fields"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if len(schema) != len(ctlRecords) {
		t.Fatalf("control.avsc has %d records, Go %d", len(schema), len(ctlRecords))
	}
	for i, rec := range schema {
		typ := reflect.TypeOf(ctlRecords[i])
		if typ.Name()[3:] != rec.Name {
			t.Errorf("opcode %d: control.avsc has %s, Go %s", i, rec.Name, typ.Name())
			continue
		}
		if typ.NumField() != len(rec.Fields) {
			t.Errorf("%s: %d fields in control.avsc, %d in Go", rec.Name, len(rec.Fields), typ.NumField())
			continue
		}
		for j, f := range rec.Fields {
			if tag := typ.Field(j).Tag.Get("json"); tag != f.Name {
				t.Errorf("%s field %d: control.avsc has %s, Go %s", rec.Name, j, f.Name, tag)
			}
		}
	}
	f, err := Fingerprint(string(data))
	if err != nil || f != controlFingerprint {
		t.Errorf("control.avsc has fingerprint %016x (%v), expected %016x", f, err, controlFingerprint)
	}
}

func TestFingerprintsMatchTheVectors(t *testing.T) {
	cases := vectorCases(t, "../spec/vectors/fingerprints.txt")
	if len(cases) < 30 {
		t.Fatalf("only %d fingerprint vectors", len(cases))
	}
	for _, c := range cases {
		got, err := Fingerprint(c["schema"])
		if err != nil {
			t.Errorf("%s: %v", c["title"], err)
			continue
		}
		if fp(got) != c["fingerprint"] {
			t.Errorf("%s: fingerprint %s, expected %s", c["title"], fp(got), c["fingerprint"])
		}
	}
	_, err := Fingerprint(`{"type":"record","name":"Broken","fields":[{"name":"x","type":`)
	errCode(t, err, CodeInvalidSchema)
}

// control.txt has no vectors for the records appended after BrokerShutdown yet: round-trip them.
func TestNewerControlRecordsRoundTrip(t *testing.T) {
	records := []any{
		ctlDescribe{RequestID: 5, Name: "metrics", ID: 0},
		ctlDescription{RequestID: 5, Channels: []ChannelDescription{{ChannelID: 7, Name: "metrics", Schema: `"long"`,
			Fingerprint: -3434872931120570953, OwnerAppName: "sensor", OwnerPid: 4242, KeyGated: true, Capacity: 65536,
			Published: 12, PublishedBytes: 480, Subscribers: []SubscriberDescription{{Index: 1, AppID: 2,
				AppName: "ring", Pid: 4300, Position: 320, Lag: 4, Missed: 9}}}},
			Functions: []FunctionDescription{{FunctionID: 1, Name: "add", RequestSchema: `"int"`,
				ResponseSchema: `"long"`, Links: 2, Calls: 10, Errors: 1, InFlight: 3}}},
		ctlMonitor{RequestID: 6},
		ctlMonitorEvent{TimeNs: 123, Kind: "app-joined", AppID: 3, AppName: "x", Pid: 9, Subject: "", Detail: "d"},
	}
	for _, rec := range records {
		b := encodeControl(nil, rec)
		back, err := decodeControl(b)
		if err != nil || !reflect.DeepEqual(back, rec) {
			t.Errorf("%T: decodes to %+v (%v)", rec, back, err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := decodeControl(b[:n]); err == nil {
				t.Errorf("%T: %d of %d bytes decoded", rec, n, len(b))
			}
		}
	}
}

// sealingVectors is spec/vectors/sealing.txt: its `name: hex` values, `seal` lines and `refuse` lines.
type sealingVectors struct {
	values  map[string][]byte
	seals   [][3]string // request id, key, sealed ("-" for null)
	refuses [][]byte
}

func readSealingVectors(t *testing.T) sealingVectors {
	data, err := os.ReadFile("../spec/vectors/sealing.txt")
	if err != nil {
		t.Fatal(err)
	}
	v := sealingVectors{values: map[string][]byte{}}
	unhex := func(line, s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("sealing.txt: %q: %v", line, err)
		}
		return b
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "seal" && len(f) == 4:
			v.seals = append(v.seals, [3]string{f[1], f[2], f[3]})
		case f[0] == "refuse" && len(f) == 2:
			v.refuses = append(v.refuses, unhex(line, f[1]))
		case len(f) == 2 && strings.HasSuffix(f[0], ":"):
			v.values[strings.TrimSuffix(f[0], ":")] = unhex(line, f[1])
		default:
			t.Fatalf("sealing.txt: cannot read %q", line)
		}
	}
	return v
}

// field reads a key field of sealing.txt: `-` is null.
func (v sealingVectors) field(t *testing.T, s string) *[]byte {
	if s == "-" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("sealing.txt: %q: %v", s, err)
	}
	return &b
}

func TestSessionAndSealedKeysMatchTheVectors(t *testing.T) {
	v := readSealingVectors(t)
	if len(v.seals) < 5 || len(v.refuses) < 2 {
		t.Fatalf("only %d seal and %d refuse lines in sealing.txt", len(v.seals), len(v.refuses))
	}
	keys := map[string]*ecdh.PrivateKey{}
	for _, who := range []string{"app", "broker"} {
		priv, err := ecdh.X25519().NewPrivateKey(v.values[who+"_private"])
		if err != nil {
			t.Fatalf("%s_private: %v", who, err)
		}
		if got := priv.PublicKey().Bytes(); !bytes.Equal(got, v.values[who+"_public"]) {
			t.Errorf("%s_public is %x, expected %x", who, got, v.values[who+"_public"])
		}
		keys[who] = priv
	}
	s, err := openSession(keys["app"], v.values["broker_public"])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s[:], v.values["session"]) {
		t.Fatalf("session is %x, expected %x", s[:], v.values["session"])
	}
	// The broker's side of X25519 reaches the same shared secret.
	appPublic, _ := ecdh.X25519().NewPublicKey(v.values["app_public"])
	brokerPublic, _ := ecdh.X25519().NewPublicKey(v.values["broker_public"])
	a, errA := keys["app"].ECDH(brokerPublic)
	b, errB := keys["broker"].ECDH(appPublic)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("X25519 is not symmetric: %x (%v) and %x (%v)", a, errA, b, errB)
	}
	for _, c := range v.seals {
		id, err := strconv.ParseInt(c[0], 10, 64)
		if err != nil {
			t.Fatalf("seal %v: %v", c, err)
		}
		key, want := v.field(t, c[1]), v.field(t, c[2])
		got := s.sealField(id, key)
		if (got == nil) != (want == nil) || got != nil && !bytes.Equal(*got, *want) {
			t.Errorf("seal %s %s: got %s, expected %s", c[0], c[1], fieldHex(got), c[2])
			continue
		}
		// Unsealing is the same XOR.
		if back := s.sealField(id, want); (back == nil) != (key == nil) || back != nil && !bytes.Equal(*back, *key) {
			t.Errorf("seal %s %s: unseals to %s", c[0], c[1], fieldHex(back))
		}
	}
	// u = 1 is of order 4, another point of small order; and one byte too many.
	refuses := append(v.refuses, append([]byte{1}, make([]byte, 31)...), make([]byte, 33))
	for _, pub := range refuses {
		_, err := openSession(keys["app"], pub)
		e := errCode(t, err, CodeProtocol)
		want := "a point of small order"
		if len(pub) != publicKeyLen {
			want = fmt.Sprintf("is %d bytes, expected 32", len(pub))
		}
		if !strings.Contains(e.Message, want) {
			t.Errorf("refusing %x: %q does not say %q", pub, e.Message, want)
		}
	}
}

func fieldHex(b *[]byte) string {
	if b == nil {
		return "-"
	}
	return hex.EncodeToString(*b)
}
