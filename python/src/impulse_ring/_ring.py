"""SPSC rings (spec/wire-format.md §4) and frames (§5): the producer and consumer algorithms, and the
one routine (`check_record`) that validates a frame header for every ring reader, channels included.
"""

from __future__ import annotations

from typing import NamedTuple

from . import _layout as L
from ._shm import ACQUIRE, RELAXED, RELEASE, SEQCST, U64, Segment, fence
from .errors import Corrupt, TooLarge

_LEN_MASK = 0xFFFFFFFF


class Frame(NamedTuple):
  kind: int
  seq: int
  payload: bytes


def header_word(length: int, kind: int) -> int:
  """The first 8 bytes of a frame as one u64: `len | kind << 32`, flags 0 (§5)."""
  return length | kind << 32


def check_record(word: int, to_end: int, available: int, capacity: int, allowed: frozenset[int]) -> int:
  """Validates a frame header read at a position with `to_end` bytes to the ring's end and
  `available` published bytes (§4.3 step 4); returns the bytes the record occupies."""
  length = word & _LEN_MASK
  kind = (word >> 32) & 0xFFFF
  if kind == L.FRAME_KIND_PADDING:
    if length + L.FRAME_HEADER_SIZE != to_end or to_end > available:
      raise Corrupt(f"padding of {length} bytes does not fill the {to_end} bytes to the end of the ring")
    return to_end
  if kind not in allowed:
    raise Corrupt(f"frame kind {kind} is not allowed in this ring")
  if length > L.max_payload(capacity):
    raise Corrupt(f"frame length {length} exceeds the ring's max payload {L.max_payload(capacity)}")
  size = L.record_size(length)
  if size > to_end or size > available:
    raise Corrupt(f"a record of {size} bytes does not fit the {min(to_end, available)} bytes left")
  return size


class Ring:
  """One end of an SPSC ring at `base` in `segment`; an object is used as a producer or as a consumer,
  never both. The producer keeps `tail` privately and the consumer `head` (§1, untrusted memory)."""

  def __init__(self, segment: Segment, base: int, capacity: int, allowed: frozenset[int]) -> None:
    if base + L.RING_HEADER_SIZE > segment.size:
      raise Corrupt(f"ring at {base} lies outside segment {segment.name}")
    found = segment.region.load64(base + L.RING_CAPACITY, RELAXED)
    if found != capacity or not L.valid_capacity(found) or base + L.RING_HEADER_SIZE + found > segment.size:
      raise Corrupt(f"ring at {base} of segment {segment.name} has capacity {found}, expected {capacity}")
    self.segment = segment
    self.region = segment.region
    self.base = base
    self.data = base + L.RING_HEADER_SIZE
    self.capacity = capacity
    self.mask = capacity - 1
    self.max_payload = L.max_payload(capacity)
    self.allowed = allowed
    self._tail = self.region.load64(base + L.RING_TAIL, RELAXED)
    self._head = self.region.load64(base + L.RING_HEAD, RELAXED)

  # ---- producer (§4.2) ----

  def try_write(self, kind: int, seq: int, payload: bytes) -> bool:
    """Writes one record; False when the ring is full (nothing written). The caller rings the
    consumer's doorbell after a success."""
    length = len(payload)
    if length > self.max_payload:
      raise TooLarge(
        f"payload of {length} bytes exceeds the ring's max payload {self.max_payload}", length, self.max_payload
      )
    r = self.region
    tail = self._tail
    # SYNC: observe release (the consumer is done with the bytes before `head`).
    head = r.load64(self.base + L.RING_HEAD, ACQUIRE)
    used = (tail - head) & U64
    if used > self.capacity or tail % L.FRAME_ALIGN:
      raise Corrupt(f"ring head {head} and tail {tail} are inconsistent")
    size = L.record_size(length)
    offset = tail & self.mask
    to_end = self.capacity - offset
    pad = to_end if to_end < size else 0
    if self.capacity - used < pad + size:
      return False
    if pad:
      r.store64(self.data + offset, header_word(pad - L.FRAME_HEADER_SIZE, L.FRAME_KIND_PADDING), RELAXED)
      r.store64(self.data + offset + 8, 0, RELAXED)
      offset = 0
    at = self.data + offset
    r.store64(at, header_word(length, kind), RELAXED)
    r.store64(at + 8, seq, RELAXED)
    self.segment.view[at + L.FRAME_HEADER_SIZE : at + L.FRAME_HEADER_SIZE + length] = payload
    self._tail = (tail + pad + size) & U64
    # SYNC: publish record.
    r.store64(self.base + L.RING_TAIL, self._tail, RELEASE)
    return True

  def set_producer_waiting(self, waiting: bool) -> None:
    """§4.4: the producer announces (SeqCst) that it waits for space, and withdraws afterwards."""
    self.region.store32(self.base + L.RING_PRODUCER_WAITING, 1 if waiting else 0, SEQCST)
    if waiting:
      fence(SEQCST)

  def has_space_for(self, length: int) -> bool:
    """Whether a record of `length` payload bytes would fit now (a pure check, for wait conditions)."""
    head = self.region.load64(self.base + L.RING_HEAD, ACQUIRE)
    used = (self._tail - head) & U64
    if used > self.capacity:
      return True  # corrupt: let the write report it
    size = L.record_size(length)
    to_end = self.capacity - (self._tail & self.mask)
    pad = to_end if to_end < size else 0
    return self.capacity - used >= pad + size

  # ---- consumer (§4.3) ----

  def has_data(self) -> bool:
    """Whether the producer has published something unread (a pure check)."""
    return self.region.load64(self.base + L.RING_TAIL, ACQUIRE) != self._head

  def read(self) -> tuple[Frame | None, bool]:
    """Reads and releases the next record: (frame or None when empty, whether the producer waits and
    must be rung). Raises `Corrupt`; a corrupt ring cannot be trusted any more."""
    r = self.region
    head = self._head
    # SYNC: observe record.
    tail = r.load64(self.base + L.RING_TAIL, ACQUIRE)
    moved = False
    while head != tail:
      available = (tail - head) & U64
      if available > self.capacity or head % L.FRAME_ALIGN:
        raise Corrupt(f"ring head {head} and tail {tail} are inconsistent")
      offset = head & self.mask
      to_end = self.capacity - offset
      at = self.data + offset
      word = r.load64(at, RELAXED)
      size = check_record(word, to_end, available, self.capacity, self.allowed)
      if (word >> 32) & 0xFFFF == L.FRAME_KIND_PADDING:
        head = (head + size) & U64
        moved = True
        continue
      seq = r.load64(at + 8, RELAXED)
      payload = self.segment.read(at + L.FRAME_HEADER_SIZE, word & _LEN_MASK)
      self._head = (head + size) & U64
      return Frame((word >> 32) & 0xFFFF, seq, payload), self._release()
    if moved:
      self._head = head
      return None, self._release()
    return None, False

  def _release(self) -> bool:
    r = self.region
    # SYNC: publish release (pairs with the producer's Acquire load of head).
    r.store64(self.base + L.RING_HEAD, self._head, RELEASE)
    fence(SEQCST)
    return r.load32(self.base + L.RING_PRODUCER_WAITING, RELAXED) != 0
