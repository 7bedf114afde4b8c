"""Call links (spec/wire-format.md §8): opening and checking a link segment, and the two ends of it.

`CallerLink` numbers requests, writes them into the request ring and matches responses by `seq`;
`ProviderLink` reads requests and writes responses. Both are driven by the connection's reactor
(responses, requests) and by calling threads (requests).
"""

from __future__ import annotations

import struct
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

from . import _control, _doorbell
from . import _layout as L
from ._avro import Codec
from ._ring import Ring
from ._shm import ACQUIRE, RELAXED, NotReady, Segment
from .errors import Corrupt, Decode, HandlerError, PeerGone, Protocol, RingError, TooLarge, error_for_code

_REQUEST = frozenset({L.FRAME_KIND_CALL_REQUEST})
_RESPONSE = frozenset({L.FRAME_KIND_CALL_OK, L.FRAME_KIND_CALL_ERROR})
PROVIDER_RESPONSE_PATIENCE = 5.0
"""How long a provider waits for space for one response before dropping it (§8.3)."""


class LinkSegment:
  """A checked link segment and its two rings."""

  def __init__(self, name: str, max_apps: int) -> None:
    try:
      seg = Segment.open(name, L.KIND_LINK)
    except NotReady as e:
      raise Corrupt(f"link segment {name} is not laid out: {e}") from None
    try:
      r = seg.region
      if seg.size < L.LINK_REQUEST_RING + L.RING_HEADER_SIZE:
        raise Corrupt(f"link segment {name} is only {seg.size} bytes")
      capacity = r.load64(L.LINK_REQUEST_RING + L.RING_CAPACITY, RELAXED)
      if not L.valid_capacity(capacity) or L.link_segment_size(capacity) != seg.size:
        raise Corrupt(f"link segment {name} has capacity {capacity} for {seg.size} bytes")
      self.requests = Ring(seg, L.LINK_REQUEST_RING, capacity, _REQUEST)
      self.responses = Ring(seg, L.link_response_ring(capacity), capacity, _RESPONSE)
      self.link_id = r.load64(L.LINK_LINK_ID, RELAXED)
      self.function_id = r.load64(L.LINK_FUNCTION_ID, RELAXED)
      self.caller = r.load32(L.LINK_CALLER, RELAXED)
      self.provider = r.load32(L.LINK_PROVIDER, RELAXED)
      self.request_fp = r.load64(L.LINK_REQUEST_FP, RELAXED)
      self.response_fp = r.load64(L.LINK_RESPONSE_FP, RELAXED)
      if self.caller >= max_apps or self.provider >= max_apps:
        raise Corrupt(f"link segment {name} names apps {self.caller} and {self.provider} of {max_apps}")
    except BaseException:
      seg.close()
      raise
    self.seg = seg
    self.max_payload = L.max_payload(capacity)

  def provider_gone(self) -> bool:
    return self.seg.region.load32(L.LINK_PROVIDER_GONE, ACQUIRE) != 0

  def caller_gone(self) -> bool:
    return self.seg.region.load32(L.LINK_CALLER_GONE, ACQUIRE) != 0


class CallerLink:
  """The caller's end: pending calls by correlation id."""

  def __init__(
    self,
    link: LinkSegment,
    request: Codec,
    response: Codec,
    control: Segment,
    own_doorbell: int,
    peer_doorbell: int,
    name: str,
  ) -> None:
    self.link = link
    self.request = request
    self.response = response
    self.control = control
    self.own_doorbell = own_doorbell
    self.peer_doorbell = peer_doorbell
    self.name = name
    self._lock = threading.Lock()  # guards the request ring's producer side and _pending
    # The response ring has one consumer at a time: the reactor, or a thread in a blocking call that
    # reads its own response. Held while the segment is touched, so it is unmapped only under it.
    self.read_lock = threading.Lock()
    self._pending: dict[int, Future[Any]] = {}
    self._next_seq = 1
    self._calls = 0  # private copy of IR_LINK_CALLS, a figure for Describe
    self.closed: RingError | None = None

  def start(self, record: Any, deadline: float | None) -> Future[Any]:
    """Encodes and writes one request; the future completes on the reactor with the decoded response."""
    payload = self.request.encode(record)
    if len(payload) > self.link.max_payload:
      raise TooLarge(
        f"request of {len(payload)} bytes exceeds the link's max payload {self.link.max_payload}",
        len(payload),
        self.link.max_payload,
      )
    future: Future[Any] = Future()
    ring = self.link.requests
    with self._lock:
      if self.closed is not None:
        raise self.closed
      seq = self._next_seq
      self._next_seq += 1
      self._pending[seq] = future
      try:
        if not ring.try_write(L.FRAME_KIND_CALL_REQUEST, seq, payload):
          self._wait_space(seq, payload, deadline)
      except BaseException:
        self._pending.pop(seq, None)
        raise
      self._calls += 1
      self.link.seg.region.store64(L.LINK_CALLS, self._calls, RELAXED)
    _doorbell.ring(self.control.region, self.peer_doorbell)
    return future

  def _wait_space(self, seq: int, payload: bytes, deadline: float | None) -> None:
    ring = self.link.requests
    ring.set_producer_waiting(True)
    try:
      while not ring.try_write(L.FRAME_KIND_CALL_REQUEST, seq, payload):
        if self.link.provider_gone():
          raise PeerGone(f"the provider of `{self.name}` is gone")
        if deadline is not None and time.monotonic() >= deadline:
          from .errors import Timeout

          raise Timeout(f"no room for a call to `{self.name}` in time")
        until = time.monotonic() + L.MAX_SLEEP
        if deadline is not None:
          until = min(until, deadline)
        _doorbell.wait(
          self.control.region,
          self.own_doorbell,
          lambda: ring.has_space_for(len(payload)) or self.link.provider_gone(),
          until,
        )
    finally:
      ring.set_producer_waiting(False)

  def forget(self, seq_future: Future[Any]) -> None:
    """Drops a pending call that timed out or was cancelled; its response, if any, is dropped."""
    with self._lock:
      for seq, f in list(self._pending.items()):
        if f is seq_future:
          del self._pending[seq]

  def has_news(self) -> bool:
    with self.read_lock:
      if self.closed is not None:
        return False
      return self.link.responses.has_data() or self.link.provider_gone()

  def serve(self, limit: int = 256) -> bool:
    """Takes the responses that arrived, unless another thread is at it; returns whether it did
    anything. Fails every pending call once the provider is gone or the ring is corrupt."""
    if not self.read_lock.acquire(blocking=False):
      return False
    try:
      if self.closed is not None:
        return False
      return self._serve(limit)
    finally:
      self.read_lock.release()

  def _serve(self, limit: int) -> bool:
    did = False
    try:
      for _ in range(limit):
        frame, producer_waiting = self.link.responses.read()
        if producer_waiting:
          _doorbell.ring(self.control.region, self.peer_doorbell)
        if frame is None:
          break
        did = True
        with self._lock:
          future = self._pending.pop(frame.seq, None)
        if future is None or future.done():
          continue
        self._complete(future, frame.kind, frame.payload)
    except Corrupt as e:
      self.close(e)
      return True
    if self.closed is None and self.link.provider_gone():
      self.close(PeerGone(f"the provider of `{self.name}` is gone"))
      did = True
    return did

  def _complete(self, future: Future[Any], kind: int, payload: bytes) -> None:
    try:
      if kind == L.FRAME_KIND_CALL_OK:
        result = self.response.decode(payload)
      else:
        name, fields = _control.decode(payload)
        if name != "CallError":
          raise Protocol(f"a call error carries {name}, not CallError")
        code = fields["code"]
        raise error_for_code(code, fields["message"])
    except RingError as e:
      future.set_exception(e)
      return
    future.set_result(result)

  def close(self, error: RingError) -> None:
    """Fails every pending call with `error`; later calls resolve the function again."""
    with self._lock:
      if self.closed is None:
        self.closed = error
      pending, self._pending = self._pending, {}
    for f in pending.values():
      if not f.done():
        f.set_exception(error)


Handler = Callable[[Any], Any]


class ProviderLink:
  """The provider's end: each request runs the handler and gets a response or a `CallError`."""

  def __init__(self, link: LinkSegment, control: Segment, own_doorbell: int, peer_doorbell: int) -> None:
    self.link = link
    self.control = control
    self.own_doorbell = own_doorbell
    self.peer_doorbell = peer_doorbell
    self.dead = False
    self._served = 0  # private copies of IR_LINK_SERVED and IR_LINK_FAILED, figures for Describe
    self._failed = 0

  def has_news(self) -> bool:
    return self.link.requests.has_data() or self.link.caller_gone()

  def serve(self, function: Any, limit: int = 64) -> bool:
    """Reactor: answers up to `limit` requests with `function` (an `_Exposed`)."""
    did = False
    for _ in range(limit):
      if self.link.caller_gone():
        self.dead = True
        return True
      try:
        frame, producer_waiting = self.link.requests.read()
      except Corrupt:
        self.dead = True
        return True
      if producer_waiting:
        _doorbell.ring(self.control.region, self.peer_doorbell)
      if frame is None:
        break
      did = True
      kind, payload = self._answer(function, frame.payload)
      self._respond(frame.seq, kind, payload)
    return did

  def _answer(self, function: Any, payload: bytes) -> tuple[int, bytes]:
    try:
      request = function.request.decode(payload)
    except Decode as e:
      return _call_error(Decode.code, e.message)
    try:
      response = function.handler(request)
    except Exception as e:
      return _call_error(HandlerError.code, str(e) or type(e).__name__)
    try:
      body = function.response.encode(response)
    except RingError as e:
      return _call_error(HandlerError.code, f"the handler's response does not match its schema: {e.message}")
    if len(body) > self.link.max_payload:
      return _call_error(
        TooLarge.code, f"response of {len(body)} bytes exceeds the link's max payload {self.link.max_payload}"
      )
    return L.FRAME_KIND_CALL_OK, body

  def _respond(self, seq: int, kind: int, payload: bytes) -> None:
    ring = self.link.responses
    if not ring.try_write(kind, seq, payload):
      deadline = time.monotonic() + PROVIDER_RESPONSE_PATIENCE
      ring.set_producer_waiting(True)
      try:
        while not ring.try_write(kind, seq, payload):
          if self.link.caller_gone() or time.monotonic() >= deadline:
            return  # dropped: the caller times out
          _doorbell.wait(
            self.control.region,
            self.own_doorbell,
            lambda: ring.has_space_for(len(payload)) or self.link.caller_gone(),
            min(deadline, time.monotonic() + L.MAX_SLEEP),
          )
      finally:
        ring.set_producer_waiting(False)
    region = self.link.seg.region
    self._served += 1
    region.store64(L.LINK_SERVED, self._served, RELAXED)
    if kind == L.FRAME_KIND_CALL_ERROR:
      self._failed += 1
      region.store64(L.LINK_FAILED, self._failed, RELAXED)
    _doorbell.ring(self.control.region, self.peer_doorbell)


def _call_error(code: int, message: str) -> tuple[int, bytes]:
  return L.FRAME_KIND_CALL_ERROR, _control.encode("CallError", {"code": code, "message": message})


def fingerprint_of(payload: bytes) -> int:
  return struct.unpack_from("<Q", payload, 2)[0] if len(payload) >= 10 else 0
