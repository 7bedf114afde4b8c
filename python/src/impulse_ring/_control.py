"""Control records and the request/reply plumbing of an app slot (spec/bootstrap.md §4-6).

Everything that encodes or decodes a control record, or sends a request and waits for its reply,
lives here: a strict codec for the control union (`control.avsc`, bundled with the package and
checked against spec/ by the tests), the `key_bytes` rule, and `ControlLink`, which owns the slot's
two rings and seals every access key it sends (§5.5). Lengths and counts read from a payload are
bounded by the bytes left.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from importlib import resources
from typing import Any, Callable, Union

from . import _doorbell, _seal
from . import _layout as L
from ._ring import Ring
from ._shm import ACQUIRE, Segment
from .errors import BrokerGone, Decode, Protocol, RingError, SchemaMismatch, Timeout, error_for_code

CONTROL_TIMEOUT = 10.0
"""How long a control request waits for its reply (bootstrap.md §5)."""

Schema = Union[str, list, dict]
Fields = dict[str, Any]

_RECORDS: list[dict[str, Any]] = json.loads(resources.files(__package__).joinpath("control.avsc").read_text("utf-8"))
OPCODES: dict[str, int] = {r["name"]: i for i, r in enumerate(_RECORDS)}
NAMES: list[str] = [r["name"] for r in _RECORDS]
_SOE = L.SOE_MAGIC + struct.pack("<Q", L.CONTROL_FINGERPRINT)


def key_bytes(key: str | bytes | None) -> bytes | None:
  """The bytes of an access key as the user gave it: a `str` as UTF-8, `bytes` as they are, `None`
  for no key. `ControlLink.request` seals them into the record's `key` field (bootstrap.md §5.5)."""
  if key is None or isinstance(key, bytes):
    return key
  if isinstance(key, str):
    return key.encode("utf-8")
  raise TypeError(f"an access key is a str or bytes, not {type(key).__name__}")


# ---- codec ----


def _put_long(out: bytearray, value: int) -> None:
  n = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)


def _encode(out: bytearray, schema: Schema, value: Any, where: str) -> None:
  if isinstance(schema, str):
    if schema in ("long", "int"):
      if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where} must be an int")
      bits = 63 if schema == "long" else 31
      if not -(1 << bits) <= value < 1 << bits:
        raise ValueError(f"{where} = {value} does not fit an Avro {schema}")
      _put_long(out, value)
    elif schema == "boolean":
      out.append(1 if value else 0)
    elif schema == "string":
      data = value.encode("utf-8")
      _put_long(out, len(data))
      out += data
    elif schema == "bytes":
      if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{where} must be bytes")
      _put_long(out, len(value))
      out += value
    elif schema == "null":
      if value is not None:
        raise TypeError(f"{where} must be None")
    else:
      raise ValueError(f"the control codec has no type {schema}")
  elif isinstance(schema, list):
    branch = 0 if value is None else 1  # every union of control.avsc is ["null", X]
    _put_long(out, branch)
    _encode(out, schema[branch], value, where)
  elif schema["type"] == "array":
    if value:
      _put_long(out, len(value))
      for item in value:
        _encode(out, schema["items"], item, where)
    _put_long(out, 0)
  elif schema["type"] == "record":
    for field in schema["fields"]:
      _encode(out, field["type"], value[field["name"]], f"{where}.{field['name']}")
  else:
    raise ValueError(f"the control codec has no type {schema['type']}")


def encode(name: str, fields: Fields) -> bytes:
  """The SOE payload of control record `name` (the union branch is its opcode)."""
  opcode = OPCODES[name]
  out = bytearray(_SOE)
  _put_long(out, opcode)
  _encode(out, _RECORDS[opcode], fields, name)
  return bytes(out)


class _Reader:
  __slots__ = ("data", "pos")

  def __init__(self, data: bytes, pos: int) -> None:
    self.data = data
    self.pos = pos

  def long(self) -> int:
    shift = 0
    n = 0
    while True:
      if self.pos >= len(self.data):
        raise Decode("control record ends inside a varint")
      b = self.data[self.pos]
      self.pos += 1
      n |= (b & 0x7F) << shift
      if not b & 0x80:
        break
      shift += 7
      if shift >= 70:
        raise Decode("control record has a varint longer than 10 bytes")
    if n >> 64:
      raise Decode("control record has a varint beyond 64 bits")
    return (n >> 1) ^ -(n & 1)

  def take(self, n: int) -> bytes:
    if n < 0 or n > len(self.data) - self.pos:
      raise Decode(f"control record claims {n} bytes where {len(self.data) - self.pos} are left")
    chunk = self.data[self.pos : self.pos + n]
    self.pos += n
    return chunk


def _decode(r: _Reader, schema: Schema) -> Any:
  if isinstance(schema, str):
    if schema == "long":
      return r.long()
    if schema == "int":
      v = r.long()
      if not -(1 << 31) <= v < 1 << 31:
        raise Decode(f"control record has int {v} out of range")
      return v
    if schema == "boolean":
      b = r.take(1)[0]
      if b > 1:
        raise Decode(f"control record has boolean byte {b}")
      return b == 1
    if schema == "string":
      try:
        return r.take(r.long()).decode("utf-8")
      except UnicodeDecodeError as e:
        raise Decode(f"control record has a string that is not UTF-8: {e}") from None
    if schema == "bytes":
      return bytes(r.take(r.long()))
    if schema == "null":
      return None
    raise Decode(f"the control codec has no type {schema}")
  if isinstance(schema, list):
    branch = r.long()
    if not 0 <= branch < len(schema):
      raise Decode(f"control record has union branch {branch}")
    return _decode(r, schema[branch])
  if schema["type"] == "array":
    items: list[Any] = []
    while True:
      count = r.long()
      if count == 0:
        return items
      if count < 0:
        count = -count
        r.long()  # the block's size in bytes, which we do not need
      if count > len(r.data) - r.pos:
        raise Decode(f"control record claims {count} array items where {len(r.data) - r.pos} bytes are left")
      for _ in range(count):
        items.append(_decode(r, schema["items"]))
  if schema["type"] == "record":
    return {f["name"]: _decode(r, f["type"]) for f in schema["fields"]}
  raise Decode(f"the control codec has no type {schema['type']}")


def decode(payload: bytes) -> tuple[str, Fields]:
  """Decodes a control payload: magic, control fingerprint, opcode, record, no byte left over."""
  if payload[:2] != L.SOE_MAGIC:
    raise Decode(f"control record has magic {payload[:2].hex()}, expected c301")
  if len(payload) < L.SOE_HEADER_LEN:
    raise Decode("control record is shorter than its header")
  fp = struct.unpack_from("<Q", payload, 2)[0]
  if fp != L.CONTROL_FINGERPRINT:
    raise Decode(f"control record has fingerprint {fp:016x}, expected {L.CONTROL_FINGERPRINT:016x}")
  r = _Reader(payload, L.SOE_HEADER_LEN)
  opcode = r.long()
  if not 0 <= opcode < len(_RECORDS):
    raise Decode(f"control record has opcode {opcode}")
  fields = _decode(r, _RECORDS[opcode])
  if r.pos != len(payload):
    raise Decode(f"control record {NAMES[opcode]} has {len(payload) - r.pos} bytes left over")
  return NAMES[opcode], fields


def unsigned(fp: int) -> int:
  """A fingerprint travels as an Avro long; as a u64 it is the same 64 bits."""
  return fp & 0xFFFFFFFFFFFFFFFF


def failure(fields: Fields) -> RingError:
  """The error a `Failed` reply stands for."""
  code, message = fields["code"], fields["message"]
  if code == SchemaMismatch.code:
    return SchemaMismatch(message, unsigned(fields["expected_fingerprint"]), unsigned(fields["presented_fingerprint"]))
  return error_for_code(code, message)


# ---- request/reply plumbing ----

_REPLIES = frozenset(
  {
    "Registered",
    "ChannelPublished",
    "Subscribed",
    "FunctionExposed",
    "FunctionResolved",
    "Listing",
    "Description",
    "Done",
    "Failed",
  }
)


class _Pending:
  __slots__ = ("done", "error", "on_reply", "reply")

  def __init__(self, on_reply: Callable[[str, Fields], None] | None) -> None:
    self.done = threading.Event()
    self.reply: tuple[str, Fields] | None = None
    self.error: RingError | None = None
    self.on_reply = on_reply


class ControlLink:
  """The app's end of its slot: writes requests into the request ring (one writer at a time), and
  lets the reactor hand replies to the threads waiting for them. Events are returned to the reactor."""

  def __init__(self, control: Segment, slot: int, capacity: int, doorbell: int, namespace: str) -> None:
    self.control = control
    self.namespace = namespace
    self.requests = Ring(control, slot + L.SLOT_REQUEST_RING, capacity, frozenset({L.FRAME_KIND_CONTROL}))
    self.replies = Ring(
      control, slot + L.SLOT_REQUEST_RING + L.RING_HEADER_SIZE + capacity, capacity, frozenset({L.FRAME_KIND_CONTROL})
    )
    self.doorbell = doorbell
    self._slot = slot
    # The slot's generation at the claim; once it moves the broker has fenced us off the slot
    # (bootstrap.md §3.2). Stable until then: the claim's CAS saw the broker's last bump.
    self._generation = control.region.load32(slot + L.SLOT_GENERATION, ACQUIRE)
    self._lock = threading.Lock()  # guards _pending and _next_id
    self._write_lock = threading.Lock()  # the request ring has one producer
    self._pending: dict[int, _Pending] = {}
    self._next_id = 1
    self.gone: RingError | None = None
    self.reactor: threading.Thread | None = None  # the thread that normally drains the reply ring
    self.deferred: list[tuple[str, Fields]] = []  # events drained by a request made on the reactor
    # The session secret of this registration (bootstrap.md §5.5), set once `Registered` is checked.
    self.session: bytes | None = None

  def fenced(self) -> bool:
    """Whether the broker dropped this app and fenced its slot: nothing of the slot is ours any more."""
    region = self.control.region
    # SYNC: observe fence (pairs with the broker's Release store of FENCED).
    return (
      region.load32(self._slot + L.SLOT_STATE, ACQUIRE) == L.SLOT_FENCED
      or region.load32(self._slot + L.SLOT_GENERATION, ACQUIRE) != self._generation
    )

  def _write(self, name: str, fields: Fields, deadline: float) -> None:
    if self.gone is None and self.fenced():
      self.fail_all(broker_gone(self.namespace, FENCED))
    if self.gone is not None:
      raise self.gone
    payload = encode(name, fields)
    ring = self.requests
    region = self.control.region
    if not ring.try_write(L.FRAME_KIND_CONTROL, 0, payload):
      ring.set_producer_waiting(True)
      try:
        while not ring.try_write(L.FRAME_KIND_CONTROL, 0, payload):
          if self.gone is None and self.fenced():
            self.fail_all(broker_gone(self.namespace, FENCED))
          if self.gone is not None:
            raise self.gone
          if time.monotonic() >= deadline:
            raise Timeout(f"the broker did not read {name} within {CONTROL_TIMEOUT:.0f} s")
          _doorbell.wait(
            region,
            self.doorbell,
            lambda: ring.has_space_for(len(payload)),
            min(deadline, time.monotonic() + L.MAX_SLEEP),
          )
      finally:
        ring.set_producer_waiting(False)
    _doorbell.ring(region, L.CTL_BROKER_DOORBELL)

  def request(
    self,
    name: str,
    fields: Fields,
    timeout: float = CONTROL_TIMEOUT,
    on_reply: Callable[[str, Fields], None] | None = None,
  ) -> tuple[str, Fields]:
    """Sends request `name` (its `request_id` is filled in) and waits for its reply. `Failed` raises
    the error it carries; `on_reply` runs on the reactor as the reply is taken, before later records.

    A `key` field holds the key's clear bytes (`key_bytes`) or None; it is sealed here with the
    request id it travels under, so the key never reaches shared memory in clear (§5.5)."""
    deadline = time.monotonic() + timeout
    pending = _Pending(on_reply)
    with self._lock:
      if self.gone is not None:
        raise self.gone
      request_id = self._next_id
      self._next_id += 1
      self._pending[request_id] = pending
    try:
      record = {**fields, "request_id": request_id}
      if record.get("key") is not None:
        record["key"] = self._seal(request_id, record["key"])
      with self._write_lock:
        self._write(name, record, deadline)
    except BaseException:
      with self._lock:
        self._pending.pop(request_id, None)
      raise
    if threading.current_thread() is self.reactor:
      self._await_on_reactor(pending, deadline)
    if not pending.done.wait(max(0.0, deadline - time.monotonic())):
      with self._lock:
        self._pending.pop(request_id, None)
      if pending.done.is_set():
        pass
      elif self.gone is not None:
        raise self.gone
      else:
        raise Timeout(f"the broker did not answer {name} within {timeout:.0f} s")
    if pending.error is not None:
      raise pending.error
    assert pending.reply is not None
    reply, reply_fields = pending.reply
    if reply == "Failed":
      raise failure(reply_fields)
    return pending.reply

  def _seal(self, request_id: int, key: bytes) -> bytes:
    if self.session is None:
      raise Protocol("an access key cannot be sent before the broker's Registered set up the session")
    return _seal.seal(self.session, request_id, key)

  def _await_on_reactor(self, pending: _Pending, deadline: float) -> None:
    """A request made by the reactor itself (a handler that subscribes, or resolves a function it
    calls): nobody else reads the reply ring, so it reads it here, keeping events for the reactor."""
    region = self.control.region
    while not pending.done.is_set() and self.gone is None and time.monotonic() < deadline:
      self.deferred.extend(self.drain())
      if not pending.done.is_set():
        _doorbell.wait(region, self.doorbell, self.replies.has_data, min(deadline, time.monotonic() + L.MAX_SLEEP))

  def post(self, name: str, fields: Fields) -> None:
    """Sends a request that has no reply (`Unregister`)."""
    with self._lock:
      request_id = self._next_id
      self._next_id += 1
    with self._write_lock:
      self._write(name, {**fields, "request_id": request_id}, time.monotonic() + 1.0)

  def drain(self, limit: int = 64) -> list[tuple[str, Fields]]:
    """Reactor only: reads up to `limit` records of the reply ring, completes the requests they answer
    and returns the events. A corrupt reply ring or record means the broker is gone (§8.2)."""
    events = []
    for _ in range(limit):
      frame, producer_waiting = self.replies.read()
      if producer_waiting:
        _doorbell.ring(self.control.region, L.CTL_BROKER_DOORBELL)
      if frame is None:
        break
      try:
        name, fields = decode(frame.payload)
      except Decode as e:
        # §4.1: a reply the app cannot decode fails every outstanding request at once.
        self.fail_outstanding(Protocol(f"undecodable control record from the broker: {e.message}"))
        continue
      if name not in _REPLIES:
        events.append((name, fields))
        continue
      if name == "Failed" and fields["request_id"] == 0:
        # §4.1: the broker could not tell which request failed, so all of them did.
        self.fail_outstanding(failure(fields))
        continue
      with self._lock:
        pending = self._pending.pop(fields["request_id"], None)
      if pending is None:
        continue  # a reply to a request that timed out
      if pending.on_reply is not None and name != "Failed":
        try:
          pending.on_reply(name, fields)
        except RingError as e:
          pending.error = e
      pending.reply = (name, fields)
      pending.done.set()
    return events

  def fail_all(self, error: RingError) -> None:
    """Marks the broker gone: every waiting and later request fails with `error`."""
    self.gone = error
    self.fail_outstanding(error)

  def fail_outstanding(self, error: RingError) -> None:
    """Fails every request waiting for a reply with `error`; later requests go on as usual."""
    with self._lock:
      pending, self._pending = self._pending, {}
    for p in pending.values():
      p.error = error
      p.done.set()


FENCED = "it dropped this app and fenced its slot (the app broke the protocol); connect again"


def broker_gone(namespace: str, why: str) -> BrokerGone:
  return BrokerGone(f"the broker of namespace `{namespace}` is gone: {why}")


def protocol(message: str) -> Protocol:
  return Protocol(message)
