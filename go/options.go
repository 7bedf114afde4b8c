// Functional options shared by every call that takes them; an option that does not apply to a call is
// ignored by it.

package ring

import "time"

// Option tunes Connect, PublishChannel, Subscribe, ExposeFunction or Call.
type Option func(*options)

type options struct {
	namespace   string
	key         *string
	capacity    uint64
	lossy       bool
	wait        WaitStrategy
	sendTimeout time.Duration
	reqSchema   string
	respSchema  string
}

func collect(opts []Option) options {
	o := options{sendTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithNamespace picks the namespace (Connect); else IMPULSE_RING_NS, else "impulse".
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithKey is the access key a channel or function requires (PublishChannel, ExposeFunction) or
// presents (Subscribe, Call). Without it, none. The key goes to the broker sealed with the
// connection's session secret, never in clear (bootstrap.md §5.5).
func WithKey(key string) Option { return func(o *options) { o.key = &key } }

// WithCapacity is a channel's ring capacity in bytes: a power of two from 4096 to 1 GiB; 0 (the
// default) takes the broker's default, 1 MiB.
func WithCapacity(bytes uint64) Option { return func(o *options) { o.capacity = bytes } }

// Lossy makes a channel lossy: the publisher never waits, a lagging subscriber gets ErrLagged with the
// number of messages it missed. The default is block: nothing is lost, the publisher waits.
func Lossy() Option { return func(o *options) { o.lossy = true } }

// WithWait sets how an endpoint waits (default Adaptive).
func WithWait(s WaitStrategy) Option { return func(o *options) { o.wait = s } }

// WithSendTimeout bounds how long Publish waits for space on a full block channel before failing with
// ErrTimeout (default 10 s); 0 fails at once with ErrWouldBlock, a negative value waits forever.
func WithSendTimeout(d time.Duration) Option { return func(o *options) { o.sendTimeout = d } }

// WithSchemas gives Call the request and response schema JSON of the function.
func WithSchemas(request, response string) Option {
	return func(o *options) { o.reqSchema, o.respSchema = request, response }
}
