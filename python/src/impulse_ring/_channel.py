"""Channel segments (spec/wire-format.md §7): the publisher's gating, retiring and commit, and the
subscriber's join, receive (block and lossy, with the seqlock-style re-checks) and leave.
"""

from __future__ import annotations

import time

from . import _doorbell
from . import _layout as L
from ._ring import check_record, header_word
from ._shm import ACQUIRE, RELAXED, RELEASE, SEQCST, U64, NotReady, Segment, fence
from .errors import Closed, Corrupt, Lagged, TooLarge

_DATA = frozenset({L.FRAME_KIND_DATA})
_LEN_MASK = 0xFFFFFFFF
_HALF = 1 << 63


def open_channel(name: str, channel_id: int, fingerprint: int) -> Segment:
  """Opens a channel segment the broker named, with the checks of §7.1."""
  try:
    seg = Segment.open(name, L.KIND_CHANNEL)
  except NotReady as e:
    raise Corrupt(f"channel segment {name} is not laid out: {e}") from None
  try:
    r = seg.region
    if seg.size < L.CH_SUBSCRIBERS:
      raise Corrupt(f"channel segment {name} is only {seg.size} bytes")
    capacity = r.load64(L.CH_CAPACITY, RELAXED)
    policy = r.load32(L.CH_POLICY, RELAXED)
    subs = r.load32(L.CH_MAX_SUBSCRIBERS, RELAXED)
    if not L.valid_capacity(capacity):
      raise Corrupt(f"channel segment {name} has capacity {capacity}")
    if policy not in (L.POLICY_BLOCK, L.POLICY_LOSSY):
      raise Corrupt(f"channel segment {name} has policy {policy}")
    if not 1 <= subs <= L.MAX_MAX_SUBSCRIBERS or L.channel_data_offset(subs) + capacity != seg.size:
      raise Corrupt(f"channel segment {name} has {subs} subscriber slots and capacity {capacity}: not {seg.size} bytes")
    found_id = r.load64(L.CH_CHANNEL_ID, RELAXED)
    found_fp = r.load64(L.CH_FINGERPRINT, RELAXED)
    if found_id != channel_id or found_fp != fingerprint:
      raise Corrupt(
        f"channel segment {name} holds channel {found_id} ({found_fp:016x}), "
        f"the broker said {channel_id} ({fingerprint:016x})"
      )
  except BaseException:
    seg.close()
    raise
  return seg


class ChannelGeometry:
  """The immutable words of a checked channel segment."""

  def __init__(self, seg: Segment) -> None:
    r = seg.region
    self.seg = seg
    self.region = r
    self.capacity: int = r.load64(L.CH_CAPACITY, RELAXED)
    self.mask = self.capacity - 1
    self.lossy = r.load32(L.CH_POLICY, RELAXED) == L.POLICY_LOSSY
    self.max_subscribers: int = r.load32(L.CH_MAX_SUBSCRIBERS, RELAXED)
    self.data = L.channel_data_offset(self.max_subscribers)
    self.max_payload = L.max_payload(self.capacity)


class ChannelWriter:
  """The publisher's algorithm (§7.3-7.4), with private copies of tail, next_seq and min_valid."""

  def __init__(self, seg: Segment) -> None:
    g = self.g = ChannelGeometry(seg)
    r = g.region
    self._tail = r.load64(L.CH_TAIL, RELAXED)
    self._next_seq = r.load64(L.CH_NEXT_SEQ, RELAXED)
    self._min_valid = r.load64(L.CH_MIN_VALID, RELAXED)
    if self._tail % L.FRAME_ALIGN or self._min_valid % L.FRAME_ALIGN or self._min_valid > self._tail:
      raise Corrupt(f"channel segment {seg.name} has tail {self._tail} and min_valid {self._min_valid}")
    self._cached_min = self._tail

  def slowest(self) -> int:
    g = self.g
    r = g.region
    tail = self._tail
    # SYNC: Dekker with the joining subscriber's fence (§7.6).
    fence(SEQCST)
    low = tail
    for i in range(g.max_subscribers):
      slot = L.CH_SUBSCRIBERS + i * L.SUB_SIZE
      state = r.load32(slot + L.SUB_STATE, ACQUIRE)
      if state == L.SUB_ACTIVE or state == L.SUB_JOINING:
        # SYNC: observe cursor.
        pos = r.load64(slot + L.SUB_POS, ACQUIRE)
        if pos <= tail and tail - pos <= g.capacity:
          low = min(low, pos)
        elif state == L.SUB_JOINING and pos <= tail:
          # Caught mid-join with the position of its first tail load (§7.6): its settled position is
          # not visible yet and may be one we would overwrite. Gate completely until it settles.
          low = min(low, max(tail - g.capacity, 0))
    return low

  def has_space_for(self, length: int) -> bool:
    """Whether a publish of `length` bytes would pass the gate now (a pure check for the space wait)."""
    g = self.g
    end = self._end(length)
    return end - self.slowest() <= g.capacity

  def _end(self, length: int) -> int:
    size = L.record_size(length)
    to_end = self.g.capacity - (self._tail & self.g.mask)
    pad = to_end if to_end < size else 0
    return self._tail + pad + size

  def try_publish(self, payload: bytes) -> bool:
    """Publishes one SOE payload; False when a `block` channel is full (nothing written)."""
    g = self.g
    r = g.region
    length = len(payload)
    if length > g.max_payload:
      raise TooLarge(
        f"payload of {length} bytes exceeds the channel's max payload {g.max_payload}", length, g.max_payload
      )
    seq = self._next_seq
    size = L.record_size(length)
    tail = self._tail
    offset = tail & g.mask
    to_end = g.capacity - offset
    pad = to_end if to_end < size else 0
    end = tail + pad + size
    if not g.lossy and end - self._cached_min > g.capacity:
      self._cached_min = self.slowest()
      if end - self._cached_min > g.capacity:
        return False
    if end > g.capacity:
      self._retire_until(end - g.capacity)
    if pad:
      r.store64(g.data + offset, header_word(pad - L.FRAME_HEADER_SIZE, L.FRAME_KIND_PADDING), RELAXED)
      r.store64(g.data + offset + 8, seq, RELAXED)
      offset = 0
    at = g.data + offset
    r.store64(at, header_word(length, L.FRAME_KIND_DATA), RELAXED)
    r.store64(at + 8, seq, RELAXED)
    g.seg.view[at + L.FRAME_HEADER_SIZE : at + L.FRAME_HEADER_SIZE + length] = payload
    self._next_seq = seq + 1
    self._tail = end
    r.store64(L.CH_NEXT_SEQ, seq + 1, RELAXED)
    # SYNC: publish record.
    r.store64(L.CH_TAIL, end, RELEASE)
    _doorbell.ring(r, L.CH_DATA_DOORBELL)
    return True

  def _retire_until(self, target: int) -> None:
    g = self.g
    r = g.region
    m = self._min_valid
    if m >= target:
      return
    while m < target:
      offset = m & g.mask
      to_end = g.capacity - offset
      word = r.load64(g.data + offset, RELAXED)
      size = to_end if (word >> 32) & 0xFFFF == L.FRAME_KIND_PADDING else L.record_size(word & _LEN_MASK)
      if size == 0 or size > to_end or m % L.FRAME_ALIGN:
        m = target  # our own records were overwritten by someone else; readers will see Corrupt
        break
      m += size
    self._min_valid = m
    r.store64(L.CH_MIN_VALID, m, RELAXED)
    # SYNC: retire before overwrite (pairs with the subscriber's Acquire fence, §7.4).
    fence(RELEASE)

  def close(self) -> None:
    r = self.g.region
    r.store32(L.CH_CLOSED, 1, RELEASE)
    _doorbell.ring(r, L.CH_DATA_DOORBELL)

  @property
  def published(self) -> int:
    return self._next_seq


class ChannelReader:
  """The subscriber's algorithm (§7.5-7.7) on subscriber slot `index`."""

  def __init__(self, seg: Segment, index: int) -> None:
    g = self.g = ChannelGeometry(seg)
    if not 0 <= index < g.max_subscribers:
      raise Corrupt(f"subscriber index {index} is outside the channel's {g.max_subscribers} slots")
    self.slot = L.CH_SUBSCRIBERS + index * L.SUB_SIZE
    r = g.region
    # Join (§7.6).
    t1 = r.load64(L.CH_TAIL, ACQUIRE)
    r.store64(self.slot + L.SUB_POS, t1, RELAXED)
    r.store32(self.slot + L.SUB_STATE, L.SUB_JOINING, RELEASE)
    fence(SEQCST)
    t2 = r.load64(L.CH_TAIL, ACQUIRE)
    self._next_seq = r.load64(L.CH_NEXT_SEQ, RELAXED)
    r.store64(self.slot + L.SUB_POS, t2, RELEASE)
    self._pos = t2
    r.store32(self.slot + L.SUB_STATE, L.SUB_ACTIVE, RELEASE)
    self._tail = t2
    self._rang_at = t2
    self._ring_every = g.capacity // 8
    self._missed = 0  # private copy of IR_SUB_MISSED, a figure for Describe

  def _lagged(self, missed: int) -> Lagged:
    self._missed += missed
    self.g.region.store64(self.slot + L.SUB_MISSED, self._missed & U64, RELAXED)
    return Lagged(f"the subscriber lagged and missed {missed} messages", missed)

  def has_news(self) -> bool:
    """Something to read, or the channel closed (a pure check, for the data doorbell's sleeper)."""
    r = self.g.region
    return r.load64(L.CH_TAIL, ACQUIRE) != self._pos or r.load32(L.CH_CLOSED, ACQUIRE) != 0

  def try_recv(self) -> bytes | None:
    """One receive: a payload, or None when nothing is ready. Raises `Closed`, `Lagged`, `Corrupt`."""
    g = self.g
    r = g.region
    while True:
      pos = self._pos
      if g.lossy or pos == self._tail:
        # SYNC: observe record.
        self._tail = r.load64(L.CH_TAIL, ACQUIRE)
      tail = self._tail
      if pos == tail:
        if r.load32(L.CH_CLOSED, ACQUIRE) != 0 and r.load64(L.CH_TAIL, ACQUIRE) == pos:
          raise Closed("the channel is closed and every message has been read")
        return None
      available = (tail - pos) & U64
      if g.lossy and (available > g.capacity or pos < r.load64(L.CH_MIN_VALID, ACQUIRE)):
        self._skip_to_oldest(tail)
      if available > g.capacity or pos % L.FRAME_ALIGN:
        raise Corrupt(f"subscriber position {pos} and tail {tail} are inconsistent")
      offset = pos & g.mask
      to_end = g.capacity - offset
      at = g.data + offset
      word = r.load64(at, RELAXED)
      seq = r.load64(at + 8, RELAXED)
      try:
        size = check_record(word, to_end, available, g.capacity, _DATA)
        invalid = None
      except Corrupt as e:
        size, invalid = 0, e
      if g.lossy:
        fence(ACQUIRE)
        if pos < r.load64(L.CH_MIN_VALID, RELAXED):
          continue  # the header may be torn: start over
      if invalid is not None:
        raise invalid
      if (word >> 32) & 0xFFFF == L.FRAME_KIND_PADDING:
        self._pos = pos + size
        r.store64(self.slot + L.SUB_POS, self._pos, RELEASE)
        continue
      payload = g.seg.read(at + L.FRAME_HEADER_SIZE, word & _LEN_MASK)
      if g.lossy:
        fence(ACQUIRE)
        if pos < r.load64(L.CH_MIN_VALID, RELAXED):
          continue  # the copy may be torn: discard it
        missed = (seq - self._next_seq) & U64
        if missed and missed < _HALF:
          self._next_seq = seq
          raise self._lagged(missed)
      self._next_seq = (seq + 1) & U64
      self._pos = pos + size
      # SYNC: publish cursor (pairs with the publisher's Acquire load in `slowest`).
      r.store64(self.slot + L.SUB_POS, self._pos, RELEASE)
      if self._pos == tail or self._pos - self._rang_at >= self._ring_every:
        self._rang_at = self._pos
        _doorbell.ring(r, L.CH_SPACE_DOORBELL)
      return payload

  def _skip_to_oldest(self, tail: int) -> None:
    r = self.g.region
    m = r.load64(L.CH_MIN_VALID, ACQUIRE)
    # The tail read before min_valid may be older than it: compare with a fresh one.
    tail = r.load64(L.CH_TAIL, ACQUIRE)
    if m > tail or m % L.FRAME_ALIGN:
      raise Corrupt(f"min_valid {m} is beyond the tail {tail} or misaligned")
    self._pos = m
    seq = r.load64(self.g.data + (m & self.g.mask) + 8, RELAXED)
    fence(ACQUIRE)
    missed = 0
    if r.load64(L.CH_MIN_VALID, RELAXED) <= m:
      missed = (seq - self._next_seq) & U64
      if missed >= _HALF:
        missed = 0
    self._next_seq = (self._next_seq + missed) & U64
    r.store64(self.slot + L.SUB_POS, m, RELEASE)
    raise self._lagged(missed)

  def leave(self) -> None:
    r = self.g.region
    r.store32(self.slot + L.SUB_STATE, L.SUB_FREE, RELEASE)
    _doorbell.ring(r, L.CH_SPACE_DOORBELL)


def wait_space(writer: ChannelWriter, length: int, deadline: float | None, strategy: str) -> bool:
  return _doorbell.wait(writer.g.region, L.CH_SPACE_DOORBELL, lambda: writer.has_space_for(length), deadline, strategy)


def wait_data(reader: ChannelReader, deadline: float | None, strategy: str) -> bool:
  return _doorbell.wait(reader.g.region, L.CH_DATA_DOORBELL, reader.has_news, deadline, strategy)


def now() -> float:
  return time.monotonic()
