"""Atheris fuzz target: the Python SPSC ring (`impulse_ring._ring.Ring`, spec/wire-format.md §4 and §5)
over arbitrary ring bytes, indices and frame headers included, in a private anonymous mapping. The
consumer (`read`) and the producer (`has_space_for`, `try_write`) raise only `Corrupt` or `TooLarge`,
and every payload read has the length its header claims. Run by `cargo ringctl fuzz`.
"""

from __future__ import annotations

import mmap
import sys

import atheris

with atheris.instrument_imports():
  from impulse_ring import _layout as L
  from impulse_ring._ring import Ring
  from impulse_ring._shm import RELAXED, Segment
  from impulse_ring.errors import Corrupt, TooLarge

CAPACITY = L.MIN_RING_CAPACITY
SIZE = L.RING_HEADER_SIZE + CAPACITY
SEGMENT = Segment("/fuzz", mmap.mmap(-1, SIZE), SIZE)
KINDS = (frozenset({L.FRAME_KIND_CONTROL}), frozenset({L.FRAME_KIND_CALL_OK, L.FRAME_KIND_CALL_ERROR}))


def test_one_input(data: bytes) -> None:
  if not data:
    return
  flags, body = data[0], data[1 : SIZE + 1]
  SEGMENT.view[: len(body)] = body
  SEGMENT.view[len(body) :] = bytes(SIZE - len(body))
  if not flags & 1:
    SEGMENT.region.store64(L.RING_CAPACITY, CAPACITY, RELAXED)
  try:
    ring = Ring(SEGMENT, 0, CAPACITY, KINDS[flags >> 1 & 1])
  except Corrupt:
    return
  try:
    for _ in range(64):
      ring.has_data()
      frame, _wake = ring.read()
      if frame is None:
        break
      if len(frame.payload) > L.max_payload(CAPACITY):
        raise AssertionError(f"a payload of {len(frame.payload)} bytes came out of a {CAPACITY}-byte ring")
  except Corrupt:
    pass
  length = (flags >> 2) * 97
  try:
    ring.has_space_for(length)
    ring.try_write(L.FRAME_KIND_CONTROL, 1, bytes(length))
  except (Corrupt, TooLarge):
    pass


if __name__ == "__main__":
  atheris.Setup(sys.argv, test_one_input)
  atheris.Fuzz()
