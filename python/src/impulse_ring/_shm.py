"""Shared memory segments: opening and checking a segment (spec/wire-format.md §2.1), atomic word
access through the native extension, and the process identity (pid + start time) that liveness
checks compare (spec/bootstrap.md §8).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os

from . import _layout as L
from ._native import Region, fence
from .errors import Corrupt, VersionMismatch

RELAXED = 0
ACQUIRE = 1
RELEASE = 2
ACQREL = 3
SEQCST = 4

U64 = (1 << 64) - 1

__all__ = ["ACQREL", "ACQUIRE", "RELAXED", "RELEASE", "SEQCST", "U64", "NotReady", "Segment", "fence"]


class NotReady(Exception):
  """The segment exists but its creator has not finished laying it out (version 0 or too small)."""


class Segment:
  """One mapped segment. `region` gives atomic access to its words, `view` plain access to its bytes.

  The mapping is pinned (a ctypes export keeps the `mmap` from being closed underneath the native
  region) until `close`, which the owner calls only once no thread uses the segment any more.
  """

  def __init__(self, name: str, mm: mmap.mmap, size: int) -> None:
    self.name = name
    self.size = size
    self._mm: mmap.mmap | None = mm
    self._anchor: ctypes.Array[ctypes.c_char] | None = (ctypes.c_char * size).from_buffer(mm)
    self.region = Region(ctypes.addressof(self._anchor), size)
    self.view = memoryview(mm)

  @classmethod
  def open(cls, name: str, kind: int) -> Segment:
    """Opens `name` (a `/impulse-ring.<ns>.<what>` object) and runs the checks of §2.1.

    Raises `FileNotFoundError` when the object does not exist, `NotReady`, `Corrupt` or
    `VersionMismatch`.
    """
    if not name.startswith("/") or "/" in name[1:] or name in ("/", "/.", "/.."):
      raise Corrupt(f"segment name {name!r} is not a shared memory object name")
    fd = os.open("/dev/shm" + name, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
      size = os.fstat(fd).st_size
      if size < L.SEG_HEADER_SIZE:
        raise NotReady(f"segment {name} is only {size} bytes")
      mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
      os.close(fd)
    segment = cls(name, mm, size)
    try:
      segment._check_header(kind)
    except BaseException:
      segment.close()
      raise
    return segment

  def _check_header(self, kind: int) -> None:
    r = self.region
    version = r.load32(L.SEG_VERSION, ACQUIRE)
    if version == 0:
      raise NotReady(f"segment {self.name} is not ready")
    magic = r.load32(L.SEG_MAGIC, RELAXED)
    if magic != L.MAGIC:
      raise Corrupt(f"segment {self.name} has magic {magic:#010x}, expected {L.MAGIC:#010x}")
    if version != L.SPEC_VERSION:
      raise VersionMismatch(f"segment {self.name} has version {version}, this connector speaks {L.SPEC_VERSION}")
    found = r.load32(L.SEG_KIND, RELAXED)
    if found != kind:
      raise Corrupt(f"segment {self.name} is of kind {found}, expected {kind}")
    stored = r.load64(L.SEG_SIZE, RELAXED)
    if stored != self.size:
      raise Corrupt(f"segment {self.name} says it is {stored} bytes but is {self.size}")

  def read(self, offset: int, length: int) -> bytes:
    """Copies `length` bytes at `offset`; the caller has validated both against the segment."""
    return self.view[offset : offset + length].tobytes()

  def close(self) -> None:
    """Unmaps the segment. Idempotent; every later access is a bug of the caller."""
    mm, self._mm = self._mm, None
    if mm is None:
      return
    self.view.release()
    self._anchor = None
    # Someone may still hold an export of the mapping: it is then unmapped when the last one goes.
    with contextlib.suppress(BufferError):
      mm.close()


def start_time(pid: int) -> int | None:
  """Field 22 of /proc/PID/stat (start time in clock ticks since boot), or None when the process is
  gone or a zombie."""
  try:
    with open(f"/proc/{pid}/stat", "rb") as f:
      stat = f.read()
  except OSError:
    return None
  # The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  fields = stat[stat.rfind(b")") + 1 :].split()
  if len(fields) < 20 or fields[0] in (b"Z", b"X"):
    return None
  try:
    return int(fields[19])
  except ValueError:
    return None


def alive(pid: int, start: int) -> bool:
  """Whether the process `pid` that started at `start` is still running (bootstrap.md §8.1)."""
  return pid > 0 and start_time(pid) == start


def own_start_time() -> int:
  return start_time(os.getpid()) or 0
