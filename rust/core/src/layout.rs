//! The byte layout of every shared segment: one named constant per field offset, the single source
//! that `spec/wire-format.md` describes and the generated C header (`impulse_ring_wire.h`) exports.
//! All words are little-endian and naturally aligned; offsets are from the start of the segment
//! unless a constant says it is relative to a slot, ring or record.

/// CRC-64-AVRO fingerprint of the control union (`spec/schemas/control.avsc`), carried by every
/// control frame. A test checks it against the schema the Rust types generate.
pub const IR_CONTROL_FINGERPRINT: u64 = 0x6f2c_3ff8_e4f6_5122;

/// Version of the wire format described by `spec/`; stored in every segment header.
pub const IR_SPEC_VERSION: u32 = 1;
/// Segment magic: the bytes `I R N G` read as a little-endian u32.
pub const IR_MAGIC: u32 = 0x474E_5249;
/// Cache-line size used to separate words written by different processes.
pub const IR_CACHE_LINE: usize = 64;

/// Kind of segment: the namespace's control segment, owned by the broker.
pub const IR_KIND_CONTROL: u32 = 1;
/// Kind of segment: one data channel (single publisher, many subscribers).
pub const IR_KIND_CHANNEL: u32 = 2;
/// Kind of segment: one call link (one caller, one function).
pub const IR_KIND_LINK: u32 = 3;

// ---- Segment header: the first 64 bytes of every segment ----

/// u32: [`IR_MAGIC`].
pub const IR_SEG_MAGIC: usize = 0;
/// u32: [`IR_SPEC_VERSION`], stored last by the creator with Release; 0 means "not ready yet".
pub const IR_SEG_VERSION: usize = 4;
/// u32: one of the `IR_KIND_*` values.
pub const IR_SEG_KIND: usize = 8;
/// u64: total size of the segment in bytes, equal to the size of the shared memory object.
pub const IR_SEG_SIZE: usize = 16;
/// u32: pid of the creating process (the broker, for every segment).
pub const IR_SEG_CREATOR_PID: usize = 24;
/// u64: start time of the creating process, in clock ticks since boot.
pub const IR_SEG_CREATOR_START: usize = 32;
/// Size of the segment header.
pub const IR_SEG_HEADER_SIZE: usize = 64;

// ---- Doorbell: a futex word and a sleeper count, at the start of its own cache line ----

/// u32 futex word: incremented (Release) by a waker before `FUTEX_WAKE`; sleepers wait on it.
pub const IR_DOORBELL_SEQ: usize = 0;
/// u32: number of threads between "about to sleep" and "awake"; a waker skips the syscall when 0.
pub const IR_DOORBELL_SLEEPERS: usize = 4;

// ---- SPSC ring: a header followed by `capacity` data bytes ----

/// u64 (producer): bytes ever written; the next record starts at `tail % capacity`.
pub const IR_RING_TAIL: usize = 0;
/// u32 (producer): 1 while the producer waits for space; the consumer then rings the producer's doorbell.
pub const IR_RING_PRODUCER_WAITING: usize = 8;
/// u64 (consumer): bytes ever consumed; `tail - head` is the number of unread bytes.
pub const IR_RING_HEAD: usize = 64;
/// u64 (creator, immutable): data capacity in bytes, a power of two ≥ [`IR_MIN_RING_CAPACITY`].
pub const IR_RING_CAPACITY: usize = 128;
/// Size of the ring header; the data follows it.
pub const IR_RING_HEADER_SIZE: usize = 192;
/// The smallest ring capacity.
pub const IR_MIN_RING_CAPACITY: u64 = 4096;
/// The largest ring capacity (1 GiB).
pub const IR_MAX_RING_CAPACITY: u64 = 1 << 30;

// ---- Frame: every record in every ring ----

/// u32: payload length in bytes (header and padding excluded).
pub const IR_FRAME_LEN: usize = 0;
/// u16: one of the `IR_FRAME_KIND_*` values.
pub const IR_FRAME_KIND: usize = 4;
/// u16: reserved, 0.
pub const IR_FRAME_FLAGS: usize = 6;
/// u64: message sequence number (channels) or correlation id (calls); 0 for control records.
pub const IR_FRAME_SEQ: usize = 8;
/// Size of the frame header; the payload follows.
pub const IR_FRAME_HEADER_SIZE: usize = 16;
/// Records start at multiples of this alignment; a record occupies `align(16 + len, 16)` bytes.
pub const IR_FRAME_ALIGN: usize = 16;

/// A channel message: Single Object Encoding of the channel's schema.
pub const IR_FRAME_KIND_DATA: u16 = 1;
/// Filler from its position to the end of the ring; the reader continues at the ring's start.
pub const IR_FRAME_KIND_PADDING: u16 = 2;
/// A control record: Single Object Encoding of the control union (`spec/schemas/control.avsc`).
pub const IR_FRAME_KIND_CONTROL: u16 = 3;
/// A call request: Single Object Encoding of the function's request schema; seq = correlation id.
pub const IR_FRAME_KIND_CALL_REQUEST: u16 = 4;
/// A successful call response: Single Object Encoding of the response schema; seq = correlation id.
pub const IR_FRAME_KIND_CALL_OK: u16 = 5;
/// A failed call: Single Object Encoding of the control union holding a `CallError`; seq = correlation id.
pub const IR_FRAME_KIND_CALL_ERROR: u16 = 6;

// ---- Control segment `/impulse-ring.<ns>.ctl` ----

/// u32: pid of the broker.
pub const IR_CTL_BROKER_PID: usize = 64;
/// u32 (immutable): number of app slots.
pub const IR_CTL_MAX_APPS: usize = 68;
/// u64: start time of the broker process, in clock ticks since boot.
pub const IR_CTL_BROKER_START: usize = 72;
/// u32 (immutable): capacity of each slot's two rings.
pub const IR_CTL_RING_CAPACITY: usize = 80;
/// u32: 1 once the broker has begun shutting down.
pub const IR_CTL_SHUTTING_DOWN: usize = 84;
/// u64: `CLOCK_MONOTONIC` milliseconds, stored by the broker about once a second; informational (apps judge liveness by pid and start time).
pub const IR_CTL_HEARTBEAT: usize = 88;
/// Doorbell the broker sleeps on; apps ring it after writing a request.
pub const IR_CTL_BROKER_DOORBELL: usize = 128;
/// Offset of app slot 0; slot `i` starts at `IR_CTL_SLOTS + i * slot_size`.
pub const IR_CTL_SLOTS: usize = 256;

// Offsets relative to an app slot:

/// u32: slot state, one of `IR_SLOT_*`; an app claims a free slot with a CAS 0 → 1.
pub const IR_SLOT_STATE: usize = 0;
/// u32: pid of the app holding the slot.
pub const IR_SLOT_PID: usize = 4;
/// u64: start time of the app holding the slot.
pub const IR_SLOT_START: usize = 8;
/// u32: incremented by the broker each time it frees or fences the slot; an app reads it after its
/// claim and is fenced off the slot once it changes (bootstrap.md §3.2).
pub const IR_SLOT_GENERATION: usize = 16;
/// Doorbell the app sleeps on: control replies, call requests and call responses all ring it.
pub const IR_SLOT_DOORBELL: usize = 64;
/// The request ring (app → broker).
pub const IR_SLOT_REQUEST_RING: usize = 256;
/// Slot state: free for any app to claim.
pub const IR_SLOT_FREE: u32 = 0;
/// Claimed by an app that is writing its pid and `Register` request.
pub const IR_SLOT_CLAIMED: u32 = 1;
/// Registered: the broker has accepted the app.
pub const IR_SLOT_ACTIVE: u32 = 2;
/// The broker is collecting a dead or departed app's resources.
pub const IR_SLOT_CLOSING: u32 = 3;
/// The broker dropped a live app: nobody may use the slot until that process has exited.
pub const IR_SLOT_FENCED: u32 = 4;
/// Default number of app slots.
pub const IR_DEFAULT_MAX_APPS: u32 = 64;
/// Default capacity of a control ring.
pub const IR_DEFAULT_CONTROL_RING_CAPACITY: u32 = 64 * 1024;

// ---- Channel segment `/impulse-ring.<ns>.ch.<channel_id>` ----

/// u64 (publisher): bytes ever written to the data area.
pub const IR_CH_TAIL: usize = 64;
/// u64 (publisher): sequence number the next message will carry (= messages published).
pub const IR_CH_NEXT_SEQ: usize = 72;
/// u64 (publisher): oldest position whose record is still intact; the publisher advances it before
/// overwriting a record.
pub const IR_CH_MIN_VALID: usize = 128;
/// Doorbell subscribers sleep on; the publisher rings it after publishing.
pub const IR_CH_DATA_DOORBELL: usize = 192;
/// Doorbell the publisher sleeps on when the ring is full (`block` policy); subscribers ring it.
pub const IR_CH_SPACE_DOORBELL: usize = 256;
/// u32: 1 once the channel is closed (publisher gone or closed); set by the broker or the publisher.
pub const IR_CH_CLOSED: usize = 320;
/// u64 (immutable): data capacity in bytes, a power of two.
pub const IR_CH_CAPACITY: usize = 384;
/// u64 (immutable): channel id.
pub const IR_CH_CHANNEL_ID: usize = 392;
/// u64 (immutable): CRC-64-AVRO fingerprint of the channel's schema.
pub const IR_CH_FINGERPRINT: usize = 400;
/// u32 (immutable): overflow policy, [`IR_POLICY_BLOCK`] or [`IR_POLICY_LOSSY`].
pub const IR_CH_POLICY: usize = 408;
/// u32 (immutable): number of subscriber slots.
pub const IR_CH_MAX_SUBSCRIBERS: usize = 412;
/// Offset of subscriber slot 0; each is [`IR_SUB_SIZE`] bytes.
pub const IR_CH_SUBSCRIBERS: usize = 512;
/// Overflow policy: the publisher waits (or gets `WouldBlock`) rather than overwrite unread messages.
pub const IR_POLICY_BLOCK: u32 = 0;
/// Overflow policy: the publisher overwrites; a lagging subscriber learns how many it missed.
pub const IR_POLICY_LOSSY: u32 = 1;
/// Default number of subscriber slots per channel.
pub const IR_DEFAULT_MAX_SUBSCRIBERS: u32 = 32;
/// Default channel capacity.
pub const IR_DEFAULT_CHANNEL_CAPACITY: u64 = 1 << 20;

// Offsets relative to a subscriber slot:

/// u32: one of `IR_SUB_*`.
pub const IR_SUB_STATE: usize = 0;
/// u32: app id (slot index) of the subscriber.
pub const IR_SUB_OWNER: usize = 4;
/// u64 (subscriber): position of the next record to read.
pub const IR_SUB_POS: usize = 8;
/// u64 (subscriber, Relaxed): messages this subscriber has missed so far (lossy); a figure only.
pub const IR_SUB_MISSED: usize = 16;
/// Size of a subscriber slot.
pub const IR_SUB_SIZE: usize = 64;
/// Subscriber slot state: free.
pub const IR_SUB_FREE: u32 = 0;
/// Reserved by the broker for a subscriber that has not joined yet.
pub const IR_SUB_RESERVED: u32 = 1;
/// Joined: the publisher must not overwrite records at or after its position (`block` policy), and
/// the subscriber sees every message published from now on. Listings count these.
pub const IR_SUB_ACTIVE: u32 = 2;
/// Joining: the publisher already gates on its position, which is not settled yet.
pub const IR_SUB_JOINING: u32 = 3;
/// Joined as an observer (`ring tap`): reads like a lossy subscriber and never gates the publisher,
/// whatever the channel's policy (wire-format.md §7.8).
pub const IR_SUB_OBSERVING: u32 = 4;

// ---- Link segment `/impulse-ring.<ns>.ln.<link_id>` ----

/// u64 (immutable): link id.
pub const IR_LINK_LINK_ID: usize = 64;
/// u64 (immutable): function id.
pub const IR_LINK_FUNCTION_ID: usize = 72;
/// u32 (immutable): app id of the caller.
pub const IR_LINK_CALLER: usize = 80;
/// u32 (immutable): app id of the provider.
pub const IR_LINK_PROVIDER: usize = 84;
/// u32: 1 once the caller is gone.
pub const IR_LINK_CALLER_GONE: usize = 88;
/// u32: 1 once the provider is gone.
pub const IR_LINK_PROVIDER_GONE: usize = 92;
/// u64 (immutable): CRC-64-AVRO fingerprint of the request schema.
pub const IR_LINK_REQUEST_FP: usize = 96;
/// u64 (immutable): CRC-64-AVRO fingerprint of the response schema.
pub const IR_LINK_RESPONSE_FP: usize = 104;
/// u64 (caller, Relaxed): requests the caller has written to the link; a figure only.
pub const IR_LINK_CALLS: usize = 128;
/// u64 (provider, Relaxed): responses (ok or error) the provider has written; a figure only.
pub const IR_LINK_SERVED: usize = 192;
/// u64 (provider, Relaxed): error responses (`CALL_ERROR` frames) among them; a figure only.
pub const IR_LINK_FAILED: usize = 200;
/// The request ring (caller → provider); its consumer's doorbell is the provider's slot doorbell.
pub const IR_LINK_REQUEST_RING: usize = 256;
/// Default capacity of each of a link's two rings.
pub const IR_DEFAULT_LINK_CAPACITY: u64 = 256 * 1024;

/// Size of an app slot in the control segment for a given ring capacity.
pub const fn control_slot_size(ring_capacity: usize) -> usize {
  IR_SLOT_REQUEST_RING + 2 * (IR_RING_HEADER_SIZE + ring_capacity)
}

/// Size of the control segment.
pub const fn control_segment_size(max_apps: usize, ring_capacity: usize) -> usize {
  IR_CTL_SLOTS + max_apps * control_slot_size(ring_capacity)
}

/// Offset of a channel's data area.
pub const fn channel_data_offset(max_subscribers: usize) -> usize {
  IR_CH_SUBSCRIBERS + max_subscribers * IR_SUB_SIZE
}

/// Size of a channel segment.
pub const fn channel_segment_size(max_subscribers: usize, capacity: usize) -> usize {
  channel_data_offset(max_subscribers) + capacity
}

/// Offset of a link's response ring (provider → caller).
pub const fn link_response_ring(capacity: usize) -> usize {
  IR_LINK_REQUEST_RING + IR_RING_HEADER_SIZE + capacity
}

/// Size of a link segment.
pub const fn link_segment_size(capacity: usize) -> usize {
  IR_LINK_REQUEST_RING + 2 * (IR_RING_HEADER_SIZE + capacity)
}

/// Bytes a record with `len` payload bytes occupies in a ring.
pub const fn record_size(len: usize) -> usize {
  (IR_FRAME_HEADER_SIZE + len + IR_FRAME_ALIGN - 1) & !(IR_FRAME_ALIGN - 1)
}

/// The largest payload a ring of `capacity` bytes accepts: a record may take at most half the ring,
/// so that a record and the padding before it always fit in an empty ring.
pub const fn max_payload(capacity: usize) -> usize {
  capacity / 2 - IR_FRAME_HEADER_SIZE
}

// Words written by different parties never share a cache line.
const _: () = assert!(IR_RING_HEAD - IR_RING_TAIL >= IR_CACHE_LINE);
const _: () = assert!(IR_RING_CAPACITY - IR_RING_HEAD >= IR_CACHE_LINE);
const _: () = assert!(IR_CH_MIN_VALID - IR_CH_TAIL >= IR_CACHE_LINE);
const _: () = assert!(IR_CH_SPACE_DOORBELL - IR_CH_DATA_DOORBELL >= IR_CACHE_LINE);
const _: () = assert!(IR_CH_CLOSED - IR_CH_SPACE_DOORBELL >= IR_CACHE_LINE);
const _: () = assert!(IR_SUB_SIZE >= IR_CACHE_LINE && IR_SUB_MISSED + 8 <= IR_SUB_SIZE);
// The caller's counter and the provider's two share no line with each other or with the broker's words.
const _: () = assert!(IR_LINK_CALLS % IR_CACHE_LINE == 0 && IR_LINK_SERVED % IR_CACHE_LINE == 0);
const _: () = assert!(IR_LINK_CALLS >= IR_LINK_RESPONSE_FP + 8 && IR_LINK_SERVED >= IR_LINK_CALLS + IR_CACHE_LINE);
const _: () =
  assert!(IR_LINK_FAILED + 8 <= IR_LINK_SERVED + IR_CACHE_LINE && IR_LINK_REQUEST_RING >= IR_LINK_FAILED + 8);
const _: () = assert!(IR_SLOT_DOORBELL >= IR_CACHE_LINE && IR_SLOT_REQUEST_RING - IR_SLOT_DOORBELL >= IR_CACHE_LINE);
const _: () = assert!(IR_RING_HEADER_SIZE % IR_CACHE_LINE == 0 && IR_CTL_SLOTS % IR_CACHE_LINE == 0);
const _: () = assert!(control_slot_size(IR_DEFAULT_CONTROL_RING_CAPACITY as usize) % IR_CACHE_LINE == 0);
const _: () = assert!(IR_FRAME_HEADER_SIZE % IR_FRAME_ALIGN == 0);
const _: () = assert!(record_size(0) == 16 && record_size(1) == 32 && record_size(64) == 80);
