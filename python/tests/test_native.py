"""The native extension alone: bounds and alignment are checked, orderings validated, and a futex
wait releases the GIL."""

from __future__ import annotations

import mmap
import threading
import time

import pytest

from impulse_ring import _shm
from impulse_ring._native import Region, fence


@pytest.fixture
def region() -> Region:
  mm = mmap.mmap(-1, 4096)
  seg = _shm.Segment("/anonymous", mm, 4096)
  yield seg.region
  seg.close()


def test_atomics_read_and_write_words(region: Region) -> None:
  region.store64(8, 0xFFFF_FFFF_FFFF_FFFF, _shm.RELEASE)
  assert region.load64(8, _shm.ACQUIRE) == 0xFFFF_FFFF_FFFF_FFFF
  assert region.fetch_add64(8, 1, _shm.SEQCST) == 0xFFFF_FFFF_FFFF_FFFF
  assert region.load64(8, _shm.RELAXED) == 0
  assert region.cas32(0, 0, 7, _shm.ACQREL) == 0
  assert region.cas32(0, 0, 9, _shm.ACQREL) == 7
  assert region.fetch_add32(0, -1, _shm.SEQCST) == 7
  assert region.load32(0, _shm.ACQUIRE) == 6
  fence(_shm.SEQCST)


def test_out_of_bounds_and_misaligned_offsets_are_refused(region: Region) -> None:
  with pytest.raises(ValueError, match="outside"):
    region.load64(4096, _shm.ACQUIRE)
  with pytest.raises(ValueError, match="outside"):
    region.load32(1 << 62, _shm.ACQUIRE)
  with pytest.raises(ValueError, match="aligned"):
    region.load64(4, _shm.ACQUIRE)
  with pytest.raises(ValueError, match="Release"):
    region.load32(0, _shm.RELEASE)
  with pytest.raises(ValueError, match="Acquire"):
    region.store32(0, 1, _shm.ACQUIRE)
  with pytest.raises(OverflowError):
    region.load32(-8, _shm.ACQUIRE)


def test_futex_wait_times_out_and_releases_the_gil(region: Region) -> None:
  ticks = []
  stop = threading.Event()

  def count() -> None:
    while not stop.is_set():
      ticks.append(1)
      time.sleep(0.001)

  t = threading.Thread(target=count)
  t.start()
  started = time.monotonic()
  region.futex_wait(0, region.load32(0, _shm.ACQUIRE), 0.2)
  stop.set()
  t.join()
  assert time.monotonic() - started >= 0.15
  assert len(ticks) > 20  # the other thread ran while this one slept


def test_futex_wake_wakes_a_sleeper(region: Region) -> None:
  woke = threading.Event()

  def sleeper() -> None:
    region.futex_wait(0, 0, 5.0)
    woke.set()

  t = threading.Thread(target=sleeper)
  t.start()
  time.sleep(0.05)
  region.store32(0, 1, _shm.RELEASE)
  region.futex_wake(0, 1)
  assert woke.wait(2)
  t.join()
