"""Byte offsets and constants of spec/wire-format.md and spec/bootstrap.md, one name per field.

Names follow the spec's `IR_*` constants without the prefix. A test checks every value against the
generated C header (rust/core/include/impulse_ring_wire.h), so the two cannot drift apart.
"""

from __future__ import annotations

SPEC_VERSION = 1
MAGIC = 0x474E5249
CACHE_LINE = 64
CONTROL_FINGERPRINT = 0x6F2C3FF8E4F65122

KIND_CONTROL = 1
KIND_CHANNEL = 2
KIND_LINK = 3

# Segment header (§2.1).
SEG_MAGIC = 0
SEG_VERSION = 4
SEG_KIND = 8
SEG_SIZE = 16
SEG_CREATOR_PID = 24
SEG_CREATOR_START = 32
SEG_HEADER_SIZE = 64

# Doorbell (§3), relative to the doorbell.
DOORBELL_SEQ = 0
DOORBELL_SLEEPERS = 4

# SPSC ring (§4), relative to the ring's base.
RING_TAIL = 0
RING_PRODUCER_WAITING = 8
RING_HEAD = 64
RING_CAPACITY = 128
RING_HEADER_SIZE = 192
MIN_RING_CAPACITY = 4096
MAX_RING_CAPACITY = 1 << 30

# Frames (§5).
FRAME_LEN = 0
FRAME_KIND = 4
FRAME_FLAGS = 6
FRAME_SEQ = 8
FRAME_HEADER_SIZE = 16
FRAME_ALIGN = 16
FRAME_KIND_DATA = 1
FRAME_KIND_PADDING = 2
FRAME_KIND_CONTROL = 3
FRAME_KIND_CALL_REQUEST = 4
FRAME_KIND_CALL_OK = 5
FRAME_KIND_CALL_ERROR = 6

# Control segment (bootstrap.md §3).
CTL_BROKER_PID = 64
CTL_MAX_APPS = 68
CTL_BROKER_START = 72
CTL_RING_CAPACITY = 80
CTL_SHUTTING_DOWN = 84
CTL_HEARTBEAT = 88
CTL_BROKER_DOORBELL = 128
CTL_SLOTS = 256
MAX_MAX_APPS = 4096

# App slot (bootstrap.md §3.1), relative to the slot.
SLOT_STATE = 0
SLOT_PID = 4
SLOT_START = 8
SLOT_GENERATION = 16
SLOT_DOORBELL = 64
SLOT_REQUEST_RING = 256
SLOT_FREE = 0
SLOT_CLAIMED = 1
SLOT_ACTIVE = 2
SLOT_CLOSING = 3
SLOT_FENCED = 4
DEFAULT_MAX_APPS = 64
DEFAULT_CONTROL_RING_CAPACITY = 64 * 1024

# Channel segment (§7).
CH_TAIL = 64
CH_NEXT_SEQ = 72
CH_MIN_VALID = 128
CH_DATA_DOORBELL = 192
CH_SPACE_DOORBELL = 256
CH_CLOSED = 320
CH_CAPACITY = 384
CH_CHANNEL_ID = 392
CH_FINGERPRINT = 400
CH_POLICY = 408
CH_MAX_SUBSCRIBERS = 412
CH_SUBSCRIBERS = 512
POLICY_BLOCK = 0
POLICY_LOSSY = 1
DEFAULT_MAX_SUBSCRIBERS = 32
MAX_MAX_SUBSCRIBERS = 4096
DEFAULT_CHANNEL_CAPACITY = 1 << 20

# Subscriber slot (§7.2), relative to the slot.
SUB_STATE = 0
SUB_OWNER = 4
SUB_POS = 8
SUB_MISSED = 16
SUB_SIZE = 64
SUB_FREE = 0
SUB_RESERVED = 1
SUB_ACTIVE = 2
SUB_JOINING = 3
# An observer (`ring tap`, wire-format.md §7.8): never gates the publisher; this connector does not
# join as one.
SUB_OBSERVING = 4

# Link segment (§8).
LINK_LINK_ID = 64
LINK_FUNCTION_ID = 72
LINK_CALLER = 80
LINK_PROVIDER = 84
LINK_CALLER_GONE = 88
LINK_PROVIDER_GONE = 92
LINK_REQUEST_FP = 96
LINK_RESPONSE_FP = 104
LINK_CALLS = 128
LINK_SERVED = 192
LINK_FAILED = 200
LINK_REQUEST_RING = 256
DEFAULT_LINK_CAPACITY = 256 * 1024

# Payloads (§9).
SOE_MAGIC = b"\xc3\x01"
SOE_HEADER_LEN = 10

# Waiting (§3.2).
MAX_SLEEP = 0.2

# Names (bootstrap.md §1-2, wire-format.md §10).
DEFAULT_NAMESPACE = "impulse"
MAX_NS_LEN = 64
MAX_NAME_LEN = 128
MAX_APP_NAME_LEN = 128


def valid_capacity(capacity: int) -> bool:
  """A capacity is a power of two from 4096 to 2^30 (§2.2)."""
  return MIN_RING_CAPACITY <= capacity <= MAX_RING_CAPACITY and capacity & (capacity - 1) == 0


def max_payload(capacity: int) -> int:
  """The largest payload a ring of `capacity` takes: half the ring less a frame header (§4.5)."""
  return capacity // 2 - FRAME_HEADER_SIZE


def record_size(length: int) -> int:
  """Bytes a record with `length` payload bytes occupies, header and filler included (§5.2)."""
  return (FRAME_HEADER_SIZE + length + FRAME_ALIGN - 1) & ~(FRAME_ALIGN - 1)


def control_slot_size(capacity: int) -> int:
  return SLOT_REQUEST_RING + 2 * (RING_HEADER_SIZE + capacity)


def control_segment_size(max_apps: int, capacity: int) -> int:
  return CTL_SLOTS + max_apps * control_slot_size(capacity)


def channel_data_offset(max_subscribers: int) -> int:
  return CH_SUBSCRIBERS + SUB_SIZE * max_subscribers


def link_response_ring(capacity: int) -> int:
  return LINK_REQUEST_RING + RING_HEADER_SIZE + capacity


def link_segment_size(capacity: int) -> int:
  return LINK_REQUEST_RING + 2 * (RING_HEADER_SIZE + capacity)
