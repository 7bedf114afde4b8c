// Errors of the Go connector: one Code per row of spec/wire-format.md §11 (the vocabulary every
// connector shares), a sentinel per code for errors.Is, and *Error, reached with errors.As, which
// carries the details: the namespace, both fingerprints of a mismatch, the missed count of a lag.

package ring

import (
	"fmt"
	"strings"
)

// Code is an error code of spec/wire-format.md §11; the number travels on the wire.
type Code int32

// The error codes. They are never renumbered; new ones are appended.
const (
	CodeNoBroker        Code = 1
	CodeBrokerGone      Code = 2
	CodeUnknownChannel  Code = 3
	CodeUnknownFunction Code = 4
	CodeWrongKey        Code = 5
	CodeSchemaMismatch  Code = 6
	CodeInvalidSchema   Code = 7
	CodeTimeout         Code = 8
	CodePeerGone        Code = 9
	CodeTooLarge        Code = 10
	CodeClosed          Code = 11
	CodeWouldBlock      Code = 12
	CodeNameTaken       Code = 13
	CodeLimitReached    Code = 14
	CodeCorrupt         Code = 15
	CodeVersionMismatch Code = 16
	CodeHandlerError    Code = 17
	CodeInvalidArgument Code = 18
	CodeDecode          Code = 19
	CodeAlreadyRunning  Code = 20
	CodeIo              Code = 21
	CodeLagged          Code = 22
	CodeProtocol        Code = 23
)

var codeNames = [...]string{
	CodeNoBroker:        "NoBroker",
	CodeBrokerGone:      "BrokerGone",
	CodeUnknownChannel:  "UnknownChannel",
	CodeUnknownFunction: "UnknownFunction",
	CodeWrongKey:        "WrongKey",
	CodeSchemaMismatch:  "SchemaMismatch",
	CodeInvalidSchema:   "InvalidSchema",
	CodeTimeout:         "Timeout",
	CodePeerGone:        "PeerGone",
	CodeTooLarge:        "TooLarge",
	CodeClosed:          "Closed",
	CodeWouldBlock:      "WouldBlock",
	CodeNameTaken:       "NameTaken",
	CodeLimitReached:    "LimitReached",
	CodeCorrupt:         "Corrupt",
	CodeVersionMismatch: "VersionMismatch",
	CodeHandlerError:    "HandlerError",
	CodeInvalidArgument: "InvalidArgument",
	CodeDecode:          "Decode",
	CodeAlreadyRunning:  "AlreadyRunning",
	CodeIo:              "Io",
	CodeLagged:          "Lagged",
	CodeProtocol:        "Protocol",
}

var codeMeanings = [...]string{
	CodeNoBroker:        "no broker is running",
	CodeBrokerGone:      "the broker is gone",
	CodeUnknownChannel:  "unknown channel",
	CodeUnknownFunction: "unknown function",
	CodeWrongKey:        "wrong access key",
	CodeSchemaMismatch:  "schema mismatch",
	CodeInvalidSchema:   "invalid schema",
	CodeTimeout:         "timed out",
	CodePeerGone:        "the peer is gone",
	CodeTooLarge:        "payload too large",
	CodeClosed:          "closed",
	CodeWouldBlock:      "the ring is full",
	CodeNameTaken:       "name already taken",
	CodeLimitReached:    "limit reached",
	CodeCorrupt:         "shared memory is corrupt",
	CodeVersionMismatch: "version mismatch",
	CodeHandlerError:    "the handler failed",
	CodeInvalidArgument: "invalid argument",
	CodeDecode:          "payload does not decode with its schema",
	CodeAlreadyRunning:  "a broker is already running in this namespace",
	CodeIo:              "i/o error",
	CodeLagged:          "the subscriber lagged and missed messages",
	CodeProtocol:        "control protocol violation",
}

// codeOf maps a code read from the wire to a Code; one this connector does not know is Protocol.
func codeOf(n int32) Code {
	if n <= 0 || int(n) >= len(codeNames) {
		return CodeProtocol
	}
	return Code(n)
}

// String is the code's name, as every connector spells it ("SchemaMismatch").
func (c Code) String() string {
	if c <= 0 || int(c) >= len(codeNames) {
		return fmt.Sprintf("Code(%d)", int32(c))
	}
	return codeNames[c]
}

// Meaning is the short description of spec/wire-format.md §11 ("schema mismatch").
func (c Code) Meaning() string {
	if c <= 0 || int(c) >= len(codeMeanings) {
		return "unknown error"
	}
	return codeMeanings[c]
}

// Error is every error the connector returns. errors.Is(err, ErrX) matches by code; errors.As gives
// the details.
type Error struct {
	// Code says what went wrong.
	Code Code
	// Message says it in words, for a person: what was wrong and, when possible, what to do.
	Message string
	// Namespace is the namespace looked in (NoBroker, BrokerGone), else empty.
	Namespace string
	// Expected and Presented are the registered and the presented fingerprints of a SchemaMismatch
	// (or of a Decode of a payload written with another schema), else 0.
	Expected, Presented uint64
	// Missed is how many messages a lagging subscriber missed (Lagged), else 0.
	Missed   uint64
	sentinel bool
	cause    error
}

// Unwrap gives the cause, when there is one (context.DeadlineExceeded behind a Timeout).
func (e *Error) Unwrap() error { return e.cause }

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.Meaning()
	}
	return e.Message
}

// Is makes errors.Is(err, ErrSchemaMismatch) true for every *Error of that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel && t.Code == e.Code
}

func sentinel(c Code) *Error { return &Error{Code: c, sentinel: true} }

// Sentinel errors, one per code, for errors.Is. Returned errors are *Error values with details.
var (
	ErrNoBroker        = sentinel(CodeNoBroker)
	ErrBrokerGone      = sentinel(CodeBrokerGone)
	ErrUnknownChannel  = sentinel(CodeUnknownChannel)
	ErrUnknownFunction = sentinel(CodeUnknownFunction)
	ErrWrongKey        = sentinel(CodeWrongKey)
	ErrSchemaMismatch  = sentinel(CodeSchemaMismatch)
	ErrInvalidSchema   = sentinel(CodeInvalidSchema)
	ErrTimeout         = sentinel(CodeTimeout)
	ErrPeerGone        = sentinel(CodePeerGone)
	ErrTooLarge        = sentinel(CodeTooLarge)
	ErrClosed          = sentinel(CodeClosed)
	ErrWouldBlock      = sentinel(CodeWouldBlock)
	ErrNameTaken       = sentinel(CodeNameTaken)
	ErrLimitReached    = sentinel(CodeLimitReached)
	ErrCorrupt         = sentinel(CodeCorrupt)
	ErrVersionMismatch = sentinel(CodeVersionMismatch)
	ErrHandlerError    = sentinel(CodeHandlerError)
	ErrInvalidArgument = sentinel(CodeInvalidArgument)
	ErrDecode          = sentinel(CodeDecode)
	ErrAlreadyRunning  = sentinel(CodeAlreadyRunning)
	ErrIo              = sentinel(CodeIo)
	ErrLagged          = sentinel(CodeLagged)
	ErrProtocol        = sentinel(CodeProtocol)
)

func newError(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

func corrupt(format string, args ...any) *Error { return newError(CodeCorrupt, format, args...) }

// decodeError reports a payload that does not decode; a wrapped library error is lower-cased.
func decodeError(what string, err error) *Error {
	msg := err.Error()
	if msg != "" {
		msg = strings.ToLower(msg[:1]) + msg[1:]
	}
	return newError(CodeDecode, "%s does not decode: %s", what, msg)
}

func fp(f uint64) string { return fmt.Sprintf("%016x", f) }
