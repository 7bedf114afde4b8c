"""Doorbells (spec/wire-format.md §3): ringing costs a fence and a load when nobody sleeps; a sleeper
announces itself, re-checks its condition and sleeps on the futex for at most 200 ms at a time.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from . import _layout as L
from ._native import Region, fence
from ._shm import ACQUIRE, RELAXED, RELEASE, SEQCST

SPIN = "spin"
ADAPTIVE = "adaptive"
BLOCKING = "blocking"
STRATEGIES = (SPIN, ADAPTIVE, BLOCKING)

# The adaptive strategy spins, then yields, for this long each before it sleeps (§3.4): longer than
# one futex wake-up on a VM. Python's loop is slower than native code, so the windows are in time.
SPIN_FOR = 50e-6
YIELD_FOR = 50e-6

_INT_MAX = 0x7FFFFFFF


def ring(region: Region, doorbell: int) -> None:
  """Wakes every sleeper of the doorbell at `doorbell`, after the caller's Release store (§3.1)."""
  # SYNC: Dekker with the sleeper's SeqCst increment of `sleepers` (§3.2).
  fence(SEQCST)
  if region.load32(doorbell + L.DOORBELL_SLEEPERS, RELAXED) != 0:
    region.fetch_add32(doorbell + L.DOORBELL_SEQ, 1, RELEASE)
    region.futex_wake(doorbell + L.DOORBELL_SEQ, _INT_MAX)


def wait(
  region: Region,
  doorbell: int,
  condition: Callable[[], object],
  deadline: float | None,
  strategy: str = ADAPTIVE,
  share_gil: bool = False,
) -> bool:
  """Waits until `condition()` (a pure check, no side effect) is true or `deadline` (a
  `time.monotonic()` value, None for never) passes; returns the last value of the condition.

  `share_gil` makes the spin phase yield the processor (and with it the GIL) on every turn, and end
  after the adaptive window: a background thread that spun holding the GIL would stall the threads
  it has just handed work to.
  """
  if condition():
    return True
  if strategy != BLOCKING:
    spin_until = None if strategy == SPIN and not share_gil else time.monotonic() + SPIN_FOR
    while True:
      if condition():
        return True
      if share_gil:
        os.sched_yield()
      now = time.monotonic()
      if deadline is not None and now >= deadline:
        return False
      if spin_until is not None and now >= spin_until:
        break
    yield_until = time.monotonic() + YIELD_FOR
    while time.monotonic() < yield_until:
      os.sched_yield()
      if condition():
        return True
  return sleep(region, doorbell, condition, deadline)


def sleep(region: Region, doorbell: int, condition: Callable[[], object], deadline: float | None) -> bool:
  """The sleeper's loop of §3.2."""
  seq = doorbell + L.DOORBELL_SEQ
  sleepers = doorbell + L.DOORBELL_SLEEPERS
  while True:
    s = region.load32(seq, ACQUIRE)
    region.fetch_add32(sleepers, 1, SEQCST)
    try:
      # A SeqCst read-modify-write is not a full barrier before a later Acquire load everywhere
      # (arm64 LDAPR): the explicit fence makes the Dekker pair hold on every platform (§3.2).
      fence(SEQCST)
      if not condition():
        timeout = L.MAX_SLEEP if deadline is None else min(L.MAX_SLEEP, deadline - time.monotonic())
        if timeout > 0:
          region.futex_wait(seq, s, timeout)
    finally:
      region.fetch_add32(sleepers, -1, SEQCST)
    if condition():
      return True
    if deadline is not None and time.monotonic() >= deadline:
      return False
