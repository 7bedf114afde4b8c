"""Untrusted shared memory: a segment corrupted by another process raises `Corrupt` (or the error
spec/ names), never an IndexError, a crash or a hang."""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import time

import pytest
from conftest import unique_ns

from impulse_ring import Connection, Corrupt, NoBroker, VersionMismatch
from impulse_ring import _layout as L

SCHEMA = '"long"'


def poke(segment: str, offset: int, fmt: str, value: int) -> None:
  """Writes into a segment as a hostile process would."""
  fd = os.open("/dev/shm" + segment, os.O_RDWR)
  try:
    with mmap.mmap(fd, 0) as mm:
      struct.pack_into(fmt, mm, offset, value)
  finally:
    os.close(fd)


def channel(conn: Connection, name: str):
  pub = conn.publish_channel(name, SCHEMA, capacity=4096)
  sub = conn.subscribe(name, SCHEMA)
  pub.publish(1)
  return pub, sub, pub._seg.name, L.channel_data_offset(L.DEFAULT_MAX_SUBSCRIBERS)


@pytest.mark.parametrize(
  ("what", "offset", "fmt", "value"),
  [
    ("a length beyond the ring's max payload", 0, "<I", 1 << 20),
    ("an unknown frame kind", 4, "<H", 99),
    ("a control frame in a channel", 4, "<H", L.FRAME_KIND_CONTROL),
    ("padding that does not reach the end", 4, "<H", L.FRAME_KIND_PADDING),
  ],
)
def test_a_corrupt_frame_header_is_reported_as_corrupt(ns: str, what: str, offset: int, fmt: str, value: int) -> None:
  with Connection.connect("victim") as conn:
    pub, sub, segment, data = channel(conn, "c")
    poke(segment, data + offset, fmt, value)
    with pytest.raises(Corrupt):
      sub.recv(1)
    pub.close()
    sub.close()


def test_a_tail_beyond_the_ring_is_reported_as_corrupt(ns: str) -> None:
  with Connection.connect("victim") as conn:
    pub, sub, segment, _ = channel(conn, "t")
    poke(segment, L.CH_TAIL, "<Q", 1 << 40)
    with pytest.raises(Corrupt):
      sub.recv(1)
    poke(segment, L.CH_TAIL, "<Q", 24)  # misaligned
    with pytest.raises(Corrupt):
      sub.recv(1)
    pub.close()
    sub.close()


def test_a_corrupt_response_ring_fails_the_pending_call(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("f", SCHEMA, SCHEMA, lambda x: time.sleep(0.5) or x)
    assert c.call("f", 1, SCHEMA, SCHEMA) == 1
    (link,) = c._callers.values()

    async def main() -> None:
      pending = c.call_async("f", 2, SCHEMA, SCHEMA, timeout=5)
      await asyncio.sleep(0.1)
      # While the provider sleeps, a hostile process moves the response ring's tail out of range.
      poke(link.link.seg.name, L.link_response_ring(L.DEFAULT_LINK_CAPACITY) + L.RING_TAIL, "<Q", 1 << 40)
      await pending

    with pytest.raises(Corrupt):
      asyncio.run(main())
    # The corrupt link is dropped; the next call resolves a fresh one.
    assert c.call("f", 3, SCHEMA, SCHEMA) == 3


def fake_control(ns: str, size: int, fill) -> str:
  path = f"/dev/shm/impulse-ring.{ns}.ctl"
  fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
  try:
    os.ftruncate(fd, size)
    if size >= 64:
      with mmap.mmap(fd, size) as mm:
        fill(mm)
  finally:
    os.close(fd)
  return path


def header(magic: int, version: int, kind: int, size: int):
  def fill(mm: mmap.mmap) -> None:
    struct.pack_into("<IIIIQ", mm, 0, magic, version, kind, 0, size)

  return fill


@pytest.mark.parametrize(
  ("case", "size", "fill", "error"),
  [
    ("bad magic", 4096, header(0xDEADBEEF, 1, L.KIND_CONTROL, 4096), Corrupt),
    ("another version", 4096, header(L.MAGIC, 2, L.KIND_CONTROL, 4096), VersionMismatch),
    ("wrong kind", 4096, header(L.MAGIC, 1, L.KIND_CHANNEL, 4096), Corrupt),
    ("wrong size", 4096, header(L.MAGIC, 1, L.KIND_CONTROL, 8192), Corrupt),
    ("no slots", 4096, header(L.MAGIC, 1, L.KIND_CONTROL, 4096), Corrupt),
    ("smaller than a header", 16, None, NoBroker),
    ("never ready", 4096, header(L.MAGIC, 0, L.KIND_CONTROL, 4096), NoBroker),
  ],
)
def test_a_corrupt_control_segment_is_refused(case: str, size: int, fill, error: type) -> None:
  ns = unique_ns(case)
  path = fake_control(ns, size, fill)
  try:
    started = time.monotonic()
    with pytest.raises(error):
      Connection.connect("app", namespace=ns)
    assert time.monotonic() - started < 3
  finally:
    os.unlink(path)


def test_a_dropped_app_that_lives_on_is_fenced_and_fails_at_once(ns: str) -> None:
  """bootstrap.md §3.2: we break our own request ring; the request behind the bad record fails with
  BrokerGone naming the fence (not a 10 s Timeout), so do later ones, and while we live the slot stays
  FENCED and a newcomer is served on another slot."""
  from impulse_ring import BrokerGone
  from impulse_ring._shm import ACQUIRE

  with Connection.connect("stale") as stale:
    region = stale._control.region
    slot = L.CTL_SLOTS + stale.app_id * stale._slot_size
    generation = region.load32(slot + L.SLOT_GENERATION, ACQUIRE)
    with stale._ctl._write_lock:
      assert stale._ctl.requests.try_write(L.FRAME_KIND_DATA, 0, b"not a control record")
    with pytest.raises(BrokerGone, match="fenced"):
      stale.list()
    with pytest.raises(BrokerGone):
      stale.list()
    assert region.load32(slot + L.SLOT_STATE, ACQUIRE) == L.SLOT_FENCED
    assert region.load32(slot + L.SLOT_GENERATION, ACQUIRE) == generation + 1
    with Connection.connect("newcomer") as newcomer:
      assert newcomer.app_id != stale.app_id
      assert [a["name"] for a in newcomer.list()["apps"]] == ["newcomer"]
