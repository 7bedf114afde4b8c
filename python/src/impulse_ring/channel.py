"""The two ends of a channel as users see them: `Publisher` (publish, publish_raw) and `Subscriber`
(recv, recv_raw, iteration, `async for ... in subscriber.aiter()`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ._avro import Codec, check_header
from ._channel import ChannelReader, ChannelWriter, wait_data, wait_space
from ._layout import MAX_SLEEP, SOE_HEADER_LEN
from ._shm import Segment
from .errors import Closed, Lagged, Timeout, TooLarge, WouldBlock

if TYPE_CHECKING:
  from ._connection import Connection


class Publisher:
  """The publishing end of a channel; use it from one thread at a time. `close()` (or leaving a
  `with` block) closes the channel: subscribers read what is left, then get `Closed`."""

  def __init__(
    self,
    conn: Connection,
    name: str,
    channel_id: int,
    seg: Segment,
    writer: ChannelWriter,
    codec: Codec,
    wait: str,
    send_timeout: float | None,
  ) -> None:
    self.name = name
    self.channel_id = channel_id
    self.fingerprint = codec.fingerprint
    self._conn = conn
    self._seg = seg
    self._writer = writer
    self._codec = codec
    self._wait = wait
    self._send_timeout = send_timeout
    self._closed = False

  @property
  def max_datum(self) -> int:
    """The largest Avro datum (after the 10-byte SOE header) a message may carry."""
    return self._writer.g.max_payload - SOE_HEADER_LEN

  @property
  def lossy(self) -> bool:
    return self._writer.g.lossy

  @property
  def published(self) -> int:
    """Messages published so far."""
    return self._writer.published

  def publish(self, record: Any, *, block: bool = True, timeout: float | None = -1.0) -> None:
    """Encodes `record` with the channel's schema and publishes it.

    Under `block`, a full ring makes it wait up to `timeout` seconds (default: the channel's
    `send_timeout`; None waits forever) and then raise `Timeout`; with `block=False` it raises
    `WouldBlock` at once. Raises `InvalidRecord` (naming the field) and `TooLarge` before anything is
    written, and `Closed` after `close()`.
    """
    self._publish(self._codec.encode(record), block, timeout)

  def publish_raw(self, datum: bytes, *, block: bool = True, timeout: float | None = -1.0) -> None:
    """Publishes an Avro datum already encoded with the channel's schema (the SOE header is added)."""
    self._publish(self._codec.header + datum, block, timeout)

  def _publish(self, payload: bytes, block: bool, timeout: float | None) -> None:
    if self._closed:
      raise Closed(f"channel `{self.name}` is closed")
    w = self._writer
    if w.try_publish(payload):
      return
    if len(payload) > w.g.max_payload:
      raise TooLarge(f"payload of {len(payload)} bytes exceeds {w.g.max_payload}", len(payload), w.g.max_payload)
    if not block:
      raise WouldBlock(f"channel `{self.name}` is full")
    if timeout is not None and timeout < 0:
      timeout = self._send_timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
      until = time.monotonic() + MAX_SLEEP
      if deadline is not None:
        until = min(until, deadline)
      wait_space(w, len(payload), until, self._wait)
      if w.try_publish(payload):
        return
      if deadline is not None and time.monotonic() >= deadline:
        raise Timeout(f"channel `{self.name}` stayed full for {timeout} s")

  def close(self) -> None:
    """Closes the channel (`closed` word, data doorbell, then `CloseChannel`). Idempotent."""
    if self._closed:
      return
    self._closed = True
    self._writer.close()
    self._conn._control_request("CloseChannel", {"channel_id": self.channel_id})
    self._seg.close()

  def __enter__(self) -> Publisher:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()


class Subscriber:
  """The receiving end of a channel; use it from one thread (or one asyncio task) at a time.

  Iterating (`for record in subscriber`) yields records until the channel closes; messages a lossy
  subscriber missed are added to `missed` instead of raising `Lagged`.
  """

  def __init__(
    self,
    conn: Connection,
    name: str,
    channel_id: int,
    index: int,
    seg: Segment,
    reader: ChannelReader,
    codec: Codec,
    wait: str,
  ) -> None:
    self.name = name
    self.channel_id = channel_id
    self.fingerprint = codec.fingerprint
    self.missed = 0
    self._conn = conn
    self._index = index
    self._seg = seg
    self._reader = reader
    self._codec = codec
    self._wait = wait
    self._closed = False

  @property
  def lossy(self) -> bool:
    return self._reader.g.lossy

  def recv(self, timeout: float | None = None) -> Any | None:
    """The next record as a dict (or the schema's Python value), or None after `timeout` seconds
    (None waits forever, 0 only looks).

    Raises `Closed` once the channel is closed and drained, `Lagged` (with `missed`) when a lossy
    subscriber was lapped (the next call goes on), `Decode`, `Corrupt`, and `BrokerGone` when the
    broker is gone and nothing is left to read.
    """
    payload = self._next(timeout)
    return None if payload is None else self._codec.decode(payload)

  def recv_raw(self, timeout: float | None = None) -> bytes | None:
    """Like `recv`, but returns the Avro datum undecoded (its SOE header checked and removed)."""
    payload = self._next(timeout)
    if payload is None:
      return None
    check_header(payload, self._codec.fingerprint)
    return payload[SOE_HEADER_LEN:]

  def _next(self, timeout: float | None) -> bytes | None:
    if self._closed:
      raise Closed(f"the subscription to `{self.name}` is closed")
    reader = self._reader
    payload = reader.try_recv()
    if payload is not None:
      return payload
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
      if self._conn._gone is not None:
        raise self._conn._gone
      now = time.monotonic()
      if deadline is not None and now >= deadline:
        return None
      until = now + MAX_SLEEP if deadline is None else min(deadline, now + MAX_SLEEP)
      wait_data(reader, until, self._wait)
      payload = reader.try_recv()
      if payload is not None:
        return payload

  def __iter__(self) -> Iterator[Any]:
    while True:
      try:
        record = self.recv()
      except Closed:
        return
      except Lagged as e:
        self.missed += e.missed
        continue
      yield record

  async def aiter(self) -> AsyncIterator[Any]:
    """Records for `async for`, until the channel closes. While nothing arrives it waits on a worker
    thread asleep on the channel's doorbell, so an idle subscriber costs no CPU and never blocks the
    event loop."""
    loop = asyncio.get_running_loop()
    while True:
      try:
        record = self.recv(0)
        if record is None:
          record = await loop.run_in_executor(None, self.recv, MAX_SLEEP)
      except Closed:
        return
      except Lagged as e:
        self.missed += e.missed
        continue
      if record is not None:
        yield record

  def close(self) -> None:
    """Leaves the channel (frees the slot, rings the publisher, then `Unsubscribe`). Idempotent."""
    if self._closed:
      return
    self._closed = True
    self._reader.leave()
    self._conn._control_request("Unsubscribe", {"channel_id": self.channel_id, "subscriber_index": self._index})
    self._seg.close()

  def __enter__(self) -> Subscriber:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()
