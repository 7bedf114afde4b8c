"""`Connection`: an app's registration with the broker of a namespace (spec/bootstrap.md §5), and the
reactor thread that reads its reply ring, serves the links of the functions it exposes, collects the
responses of its calls and watches the broker's liveness (§8.2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Awaitable
from typing import Any, Callable

from . import _doorbell
from . import _layout as L
from ._avro import Codec, SchemaLike, schema_text
from ._channel import ChannelReader, ChannelWriter, open_channel
from ._control import FENCED, ControlLink, Fields, broker_gone, key_bytes, unsigned
from ._link import CallerLink, Handler, LinkSegment, ProviderLink
from ._seal import KeyPair
from ._shm import ACQREL, RELAXED, RELEASE, NotReady, Segment, alive, own_start_time
from .channel import Publisher, Subscriber
from .errors import (
  BrokerGone,
  Corrupt,
  Decode,
  InvalidArgument,
  LimitReached,
  NoBroker,
  Protocol,
  RingError,
  Timeout,
)

_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_CALL_TIMEOUT = 30.0
_HEALTH_EVERY = 0.2


def resolve_namespace(namespace: str | None) -> str:
  """An explicit namespace, else `IMPULSE_RING_NS` (empty counts as unset), else `impulse` (§1)."""
  ns = namespace or os.environ.get("IMPULSE_RING_NS") or L.DEFAULT_NAMESPACE
  if not _NAMESPACE.fullmatch(ns):
    raise InvalidArgument(f"invalid namespace {ns!r}: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")
  return ns


class Function:
  """A function this app exposes; `withdraw()` (or leaving a `with` block) takes it off the bus."""

  def __init__(self, conn: Connection, name: str, function_id: int, request: Codec, response: Codec, handler: Handler):
    self.name = name
    self.function_id = function_id
    self.request = request
    self.response = response
    self.handler = handler
    self._conn = conn
    self._withdrawn = False

  def withdraw(self) -> None:
    """Withdraws the function (`WithdrawFunction`); its callers get `PeerGone`. Idempotent; blocks for
    the broker's reply (10 s at most) and ignores a broker that is gone."""
    if self._withdrawn:
      return
    self._withdrawn = True
    self._conn._withdraw(self)

  def __enter__(self) -> Function:
    return self

  def __exit__(self, *exc: object) -> None:
    self.withdraw()


class Monitor:
  """The control plane's events, from `Connection.monitor()`: each a dict with `time_ns`, `kind`
  (`app-joined`, `app-left`, `app-died`, `app-dropped`, `channel-published`, `channel-closed`,
  `subscribed`, `unsubscribed`, `function-exposed`, `function-withdrawn`, `function-resolved`,
  `refused`), `app_id`, `app_name`, `pid`, `subject` and `detail`."""

  def __init__(self, events: queue.SimpleQueue[dict[str, Any]]) -> None:
    self._events = events

  def next(self, timeout: float | None = None) -> dict[str, Any] | None:
    """The next event, waiting up to `timeout` seconds (`None`: forever); `None` when none came."""
    try:
      return self._events.get(timeout=timeout)
    except queue.Empty:
      return None


class Connection:
  """An app's connection to the broker of its namespace. Use `Connection.connect(app_name)`, ideally
  as a context manager; every method may be called from any thread. An access key (`key=`) is a
  `str` (its UTF-8 bytes) or `bytes`, and travels sealed for the request that carries it (§5.5)."""

  def __init__(self) -> None:
    raise TypeError("use Connection.connect(app_name)")

  @classmethod
  def connect(cls, app_name: str, namespace: str | None = None, *, wait: str = _doorbell.ADAPTIVE) -> Connection:
    """Claims an app slot in the namespace's control segment and registers as `app_name`.

    Blocks up to about 10 s for the broker's reply. Raises `NoBroker` (with the namespace),
    `LimitReached` (no free slot), `InvalidArgument`, `Corrupt`, `VersionMismatch`, `Protocol` (the
    broker's public key is unusable, bootstrap.md §5.5).
    """
    if wait not in _doorbell.STRATEGIES:
      raise InvalidArgument(f"unknown wait strategy {wait!r}: use one of {', '.join(_doorbell.STRATEGIES)}")
    self = object.__new__(cls)
    self._setup(app_name, resolve_namespace(namespace), wait)
    return self

  # ---- connect and register ----

  def _setup(self, app_name: str, ns: str, wait: str) -> None:
    self.namespace = ns
    self.app_name = app_name
    self._wait = wait
    control = _open_control(ns)
    self._control = control
    r = control.region
    try:
      self._max_apps = r.load32(L.CTL_MAX_APPS, RELAXED)
      capacity = r.load32(L.CTL_RING_CAPACITY, RELAXED)
      if not 1 <= self._max_apps <= L.MAX_MAX_APPS or not L.valid_capacity(capacity):
        raise Corrupt(f"control segment of `{ns}` has {self._max_apps} slots of capacity {capacity}")
      if L.control_segment_size(self._max_apps, capacity) != control.size:
        raise Corrupt(f"control segment of `{ns}` is {control.size} bytes, not what its header describes")
      self._broker_pid = r.load32(L.CTL_BROKER_PID, RELAXED)
      self._broker_start = r.load64(L.CTL_BROKER_START, RELAXED)
      if not alive(self._broker_pid, self._broker_start) or r.load32(L.CTL_SHUTTING_DOWN, 1) != 0:
        raise NoBroker(f"no broker is running in namespace `{ns}`", ns)
      self._slot_size = L.control_slot_size(capacity)
      app_id = self._claim_slot()
    except BaseException:
      control.close()
      raise
    self.app_id = app_id
    slot = L.CTL_SLOTS + app_id * self._slot_size
    self._doorbell = slot + L.SLOT_DOORBELL
    r.store32(slot + L.SLOT_PID, os.getpid(), RELAXED)
    r.store64(slot + L.SLOT_START, own_start_time(), RELEASE)
    self._ctl = ControlLink(control, slot, capacity, self._doorbell, ns)
    self._lock = threading.Lock()
    self._callers: dict[int, CallerLink] = {}
    self._callers_by_key: dict[tuple[str, str, str], CallerLink] = {}
    self._providers: dict[int, ProviderLink] = {}
    self._functions: dict[int, Function] = {}
    self._gone: BrokerGone | None = None
    # MonitorEvents, once `monitor()` asked for them.
    self._monitor_events: queue.SimpleQueue[dict[str, Any]] | None = None
    self._stop = False
    self._closed = False
    self._reactor = threading.Thread(target=self._run_reactor, name=f"impulse-ring reactor ({app_name})", daemon=True)
    self._ctl.reactor = self._reactor
    self._reactor.start()
    # A fresh key pair for every registration (§5.5); the private key lives only until the session
    # secret is derived from the broker's public key.
    pair = KeyPair()
    try:
      _, reply = self._ctl.request(
        "Register",
        {"app_name": app_name, "pid": os.getpid(), "start_time": own_start_time(), "public_key": pair.public},
      )
    except Timeout:
      self._abandon()
      if not alive(self._broker_pid, self._broker_start):
        raise NoBroker(f"no broker is running in namespace `{ns}`", ns) from None
      raise
    except RingError:
      self._abandon()
      raise
    if reply["app_id"] != app_id:
      self._abandon()
      raise Corrupt(f"the broker registered app id {reply['app_id']} on slot {app_id}")
    try:
      self._ctl.session = pair.session(reply["public_key"])
    except Protocol:
      self._abandon()
      raise

  def _claim_slot(self) -> int:
    r = self._control.region
    for i in range(self._max_apps):
      # SYNC: observe free slot (pairs with the broker's Release store of FREE).
      if r.cas32(L.CTL_SLOTS + i * self._slot_size + L.SLOT_STATE, L.SLOT_FREE, L.SLOT_CLAIMED, ACQREL) == L.SLOT_FREE:
        return i
    raise LimitReached(f"all {self._max_apps} app slots of namespace `{self.namespace}` are taken")

  def _abandon(self) -> None:
    """After a failed Register: stop the reactor, tell the broker, unmap."""
    self._stop_reactor()
    with contextlib.suppress(RingError):
      self._ctl.post("Unregister", {})
    self._control.close()
    self._closed = True

  # ---- state ----

  @property
  def broker_gone(self) -> bool:
    """True once the broker died, shut down or corrupted the reply ring."""
    return self._gone is not None

  def _check_gone(self) -> None:
    if self._gone is not None:
      raise self._gone
    if self._closed:
      raise BrokerGone(f"the connection to namespace `{self.namespace}` is closed")

  def _slot_doorbell(self, app_id: int) -> int:
    return L.CTL_SLOTS + app_id * self._slot_size + L.SLOT_DOORBELL

  # ---- channels ----

  def publish_channel(
    self,
    name: str,
    schema: SchemaLike,
    key: str | bytes | None = None,
    *,
    capacity: int = 0,
    policy: str = "block",
    wait: str | None = None,
    send_timeout: float | None = 10.0,
  ) -> Publisher:
    """Publishes channel `name` with `schema` (JSON text or its Python form) and an optional access key.

    `capacity` is the ring size in bytes (a power of two from 4096 to 1 GiB; 0 = 1 MiB). `policy`
    `"block"` loses nothing (a full ring makes `publish` wait up to `send_timeout`, None = forever);
    `"lossy"` never waits. Blocks for the broker's reply. Raises `InvalidSchema`, `NameTaken`,
    `InvalidArgument`, `BrokerGone`, `Timeout`.
    """
    if policy not in ("block", "lossy"):
      raise InvalidArgument(f'unknown policy {policy!r}: use "block" or "lossy"')
    strategy = self._strategy(wait)
    text = schema_text(schema)
    Codec(schema, 0)  # an invalid schema fails here, before the broker is asked
    self._check_gone()
    _, reply = self._ctl.request(
      "PublishChannel",
      {"name": name, "schema": text, "key": key_bytes(key), "capacity": capacity, "lossy": policy == "lossy"},
    )
    fingerprint = unsigned(reply["fingerprint"])
    seg = open_channel(reply["segment"], reply["channel_id"], fingerprint)
    try:
      writer = ChannelWriter(seg)
    except BaseException:
      seg.close()
      raise
    return Publisher(self, name, reply["channel_id"], seg, writer, Codec(schema, fingerprint), strategy, send_timeout)

  def subscribe(
    self, name: str, schema: SchemaLike, key: str | bytes | None = None, *, wait: str | None = None
  ) -> Subscriber:
    """Subscribes to channel `name`, presenting `schema` and the access key.

    Blocks for the broker's reply. Raises `UnknownChannel`, `WrongKey`, `SchemaMismatch` (with both
    fingerprints), `InvalidSchema`, `LimitReached`, `BrokerGone`, `Timeout`.
    """
    strategy = self._strategy(wait)
    Codec(schema, 0)
    self._check_gone()
    _, reply = self._ctl.request("Subscribe", {"name": name, "schema": schema_text(schema), "key": key_bytes(key)})
    fingerprint = unsigned(reply["fingerprint"])
    seg = open_channel(reply["segment"], reply["channel_id"], fingerprint)
    try:
      reader = ChannelReader(seg, reply["subscriber_index"])
    except BaseException:
      seg.close()
      raise
    return Subscriber(
      self, name, reply["channel_id"], reply["subscriber_index"], seg, reader, Codec(schema, fingerprint), strategy
    )

  def _strategy(self, wait: str | None) -> str:
    strategy = wait or self._wait
    if strategy not in _doorbell.STRATEGIES:
      raise InvalidArgument(f"unknown wait strategy {strategy!r}: use one of {', '.join(_doorbell.STRATEGIES)}")
    return strategy

  def _control_request(self, name: str, fields: Fields) -> None:
    """A request whose reply (`Done`) carries nothing; ignored once the broker or connection is gone."""
    if self._gone is not None or self._closed:
      return
    with contextlib.suppress(BrokerGone, Timeout):
      self._ctl.request(name, fields)

  # ---- functions ----

  def expose_function(
    self,
    name: str,
    request_schema: SchemaLike,
    response_schema: SchemaLike,
    handler: Callable[[Any], Any],
    key: str | bytes | None = None,
  ) -> Function:
    """Exposes function `name`: `handler(request)` returns the response record, or raises (the caller
    then gets `HandlerError` with the exception's message). The handler runs on the connection's
    reactor thread, one request at a time. Blocks for the broker's reply. Raises `InvalidSchema`,
    `NameTaken`, `InvalidArgument`, `BrokerGone`, `Timeout`.
    """
    Codec(request_schema, 0)
    Codec(response_schema, 0)
    self._check_gone()
    holder: list[Function] = []

    def register(_: str, reply: Fields) -> None:
      # Runs on the reactor as it takes the reply, so a LinkOpened right behind it finds the handler.
      request = Codec(request_schema, unsigned(reply["request_fingerprint"]))
      response = Codec(response_schema, unsigned(reply["response_fingerprint"]))
      function = Function(self, name, reply["function_id"], request, response, handler)
      with self._lock:
        self._functions[function.function_id] = function
      holder.append(function)

    self._ctl.request(
      "ExposeFunction",
      {
        "name": name,
        "request_schema": schema_text(request_schema),
        "response_schema": schema_text(response_schema),
        "key": key_bytes(key),
      },
      on_reply=register,
    )
    return holder[0]

  def _withdraw(self, function: Function) -> None:
    with self._lock:
      self._functions.pop(function.function_id, None)
    self._control_request("WithdrawFunction", {"function_id": function.function_id})

  def call(
    self,
    name: str,
    request: Any,
    request_schema: SchemaLike,
    response_schema: SchemaLike,
    key: str | bytes | None = None,
    timeout: float | None = DEFAULT_CALL_TIMEOUT,
  ) -> Any:
    """Calls function `name` and blocks until its response (a record) arrives or `timeout` passes.

    Raises `UnknownFunction`, `WrongKey`, `SchemaMismatch`, `HandlerError`, `PeerGone` (the provider
    died or withdrew: at once, not at the timeout), `TooLarge`, `Timeout`, `BrokerGone`,
    `InvalidRecord` (before anything is sent).
    """
    link, future = self._start_call(name, request, request_schema, response_schema, key, timeout)
    # This thread reads the response ring itself (whoever gets there first, it or the reactor, takes
    # the response), so the answer needs no hand-over between threads.
    deadline = None if timeout is None else time.monotonic() + timeout
    region = self._control.region
    ready = lambda: future.done() or link.has_news()  # noqa: E731
    while not future.done():
      link.serve()
      if future.done():
        break
      now = time.monotonic()
      if deadline is not None and now >= deadline:
        link.forget(future)
        if future.done():
          break
        raise Timeout(f"call to `{name}` timed out after {timeout} s")
      until = now + L.MAX_SLEEP if deadline is None else min(deadline, now + L.MAX_SLEEP)
      _doorbell.wait(region, self._doorbell, ready, until, self._wait)
    return future.result()

  def call_async(
    self,
    name: str,
    request: Any,
    request_schema: SchemaLike,
    response_schema: SchemaLike,
    key: str | bytes | None = None,
    timeout: float | None = DEFAULT_CALL_TIMEOUT,
  ) -> Awaitable[Any]:
    """Sends the call now and returns an awaitable of its response, for asyncio; errors as `call`.

    Resolving the function the first time blocks for the broker's reply; later calls only write the
    request (blocking only while the link's request ring is full).
    """
    link, future = self._start_call(name, request, request_schema, response_schema, key, timeout)
    return _await_call(link, future, name, timeout)

  def _start_call(
    self,
    name: str,
    request: Any,
    request_schema: SchemaLike,
    response_schema: SchemaLike,
    key: str | bytes | None,
    timeout: float | None,
  ) -> tuple[CallerLink, concurrent.futures.Future[Any]]:
    self._check_gone()
    deadline = None if timeout is None else time.monotonic() + timeout
    link = self._caller_link(name, request_schema, response_schema, key)
    return link, link.start(request, deadline)

  def _caller_link(
    self, name: str, request_schema: SchemaLike, response_schema: SchemaLike, key: str | bytes | None
  ) -> CallerLink:
    cache = (name, schema_text(request_schema), schema_text(response_schema))
    with self._lock:
      link = self._callers_by_key.get(cache)
      if link is not None and link.closed is None:
        return link
    request, response = Codec(request_schema, 0), Codec(response_schema, 0)
    _, reply = self._ctl.request(
      "ResolveFunction",
      {"name": name, "request_schema": cache[1], "response_schema": cache[2], "key": key_bytes(key)},
    )
    segment = LinkSegment(reply["segment"], self._max_apps)
    request.fingerprint = unsigned(reply["request_fingerprint"])
    request.header = _soe(request.fingerprint)
    response.fingerprint = unsigned(reply["response_fingerprint"])
    response.header = _soe(response.fingerprint)
    if (
      segment.caller != self.app_id
      or segment.link_id != reply["link_id"]
      or segment.request_fp != request.fingerprint
      or segment.response_fp != response.fingerprint
    ):
      segment.seg.close()
      raise Corrupt(f"link segment {reply['segment']} does not match the broker's FunctionResolved")
    link = CallerLink(
      segment, request, response, self._control, self._doorbell, self._slot_doorbell(segment.provider), name
    )
    with self._lock:
      self._callers[segment.link_id] = link
      self._callers_by_key[cache] = link
    return link

  # ---- listing ----

  def list(self) -> dict[str, Any]:
    """What is on the bus: `{"apps": [...], "channels": [...], "functions": [...]}` (fingerprints as
    unsigned ints). Blocks for the broker's reply."""
    self._check_gone()
    _, reply = self._ctl.request("List", {})
    for channel in reply["channels"]:
      channel["fingerprint"] = unsigned(channel["fingerprint"])
    for function in reply["functions"]:
      function["request_fingerprint"] = unsigned(function["request_fingerprint"])
      function["response_fingerprint"] = unsigned(function["response_fingerprint"])
    return {k: reply[k] for k in ("apps", "channels", "functions")}

  def describe(self, target: str | int) -> dict[str, Any]:
    """The broker's schema registry entry for the channel and the function named `target` (an `int`:
    the one with that id): `{"channels": [...], "functions": [...]}`, at most one of each, with the
    schema texts as their owners presented them, fingerprints as unsigned ints, owner, whether a key
    is needed (never the key) and live figures (bootstrap.md §5.3). Raises `UnknownChannel` when
    nothing matches."""
    self._check_gone()
    fields = {"name": "", "id": target} if isinstance(target, int) else {"name": target, "id": 0}
    _, reply = self._ctl.request("Describe", fields)
    for channel in reply["channels"]:
      channel["fingerprint"] = unsigned(channel["fingerprint"])
    for function in reply["functions"]:
      function["request_fingerprint"] = unsigned(function["request_fingerprint"])
      function["response_fingerprint"] = unsigned(function["response_fingerprint"])
    return {k: reply[k] for k in ("channels", "functions")}

  def monitor(self) -> Monitor:
    """Asks the broker for a `MonitorEvent` for everything that happens on the control plane from now
    on (apps joining, leaving, dying; channels, functions, subscriptions, refusals) and returns the
    `Monitor` that hands them out."""
    self._check_gone()
    with self._lock:
      if self._monitor_events is None:
        self._monitor_events = queue.SimpleQueue()
      events = self._monitor_events
    self._ctl.request("Monitor", {})
    return Monitor(events)

  # ---- the reactor ----

  def _run_reactor(self) -> None:
    last_health = time.monotonic()
    while not self._stop:
      try:
        last_health = self._turn(last_health)
      except Exception as e:
        # A bug here must not silently stop every reply and call of the connection: report and go on.
        print(f"impulse_ring: reactor of {self.app_name!r}: {type(e).__name__}: {e}", file=sys.stderr)
        time.sleep(0.01)

  def _turn(self, last_health: float) -> float:
    """One turn of the reactor; returns when the broker's health was last checked."""
    did = False
    if self._gone is None and self._ctl.fenced():
      self._mark_gone(FENCED)
    if self._gone is None:
      try:
        events, self._ctl.deferred = self._ctl.deferred + self._ctl.drain(), []
      except (Corrupt, Decode) as e:
        self._mark_gone(f"its reply ring is corrupt: {e.message}")
        events = []
      for name, fields in events:
        did = True
        self._on_event(name, fields)
    with self._lock:
      callers = list(self._callers.values())
      providers = [(p, self._functions.get(p.link.function_id)) for p in self._providers.values()]
    for link in callers:
      did |= link.serve()
      if link.closed is not None:
        self._drop_caller(link)
    for plink, function in providers:
      if function is None:
        # Its function was withdrawn (the broker closed the link as "provider gone").
        self._drop_provider(plink)
        continue
      did |= plink.serve(function)
      if plink.dead:
        self._drop_provider(plink)
    now = time.monotonic()
    if now - last_health >= _HEALTH_EVERY:
      last_health = now
      self._check_broker()
    if not did:
      _doorbell.wait(
        self._control.region, self._doorbell, self._has_news, now + L.MAX_SLEEP, self._wait, share_gil=True
      )
    return last_health

  def _has_news(self) -> bool:
    if self._stop or (self._gone is None and (self._ctl.replies.has_data() or self._ctl.fenced())):
      return True
    for link in tuple(self._callers.values()):
      if link.has_news():
        return True
    functions = self._functions
    return any(p.link.function_id in functions and p.has_news() for p in tuple(self._providers.values()))

  def _on_event(self, name: str, fields: Fields) -> None:
    if name == "LinkOpened":
      try:
        segment = LinkSegment(fields["segment"], self._max_apps)
      except (RingError, OSError):
        return  # a link we cannot open is one we do not serve; its caller times out
      if segment.provider != self.app_id or segment.function_id != fields["function_id"]:
        segment.seg.close()
        return
      plink = ProviderLink(segment, self._control, self._doorbell, self._slot_doorbell(segment.caller))
      with self._lock:
        self._providers[segment.link_id] = plink
    elif name == "LinkClosed":
      with self._lock:
        caller = self._callers.get(fields["link_id"])
        provider = self._providers.get(fields["link_id"])
      if caller is not None:
        from .errors import error_for_code

        caller.close(error_for_code(fields["code"], fields["message"]))
        self._drop_caller(caller)
      if provider is not None:
        self._drop_provider(provider)
    elif name == "BrokerShutdown":
      self._mark_gone(fields["reason"])
    elif name == "MonitorEvent" and self._monitor_events is not None:
      self._monitor_events.put(dict(fields))

  def _drop_caller(self, link: CallerLink) -> None:
    with self._lock:
      if self._callers.get(link.link.link_id) is link:
        del self._callers[link.link.link_id]
      for k, v in list(self._callers_by_key.items()):
        if v is link:
          del self._callers_by_key[k]
    # Calling threads touch the segment only under one of the link's locks, after checking `closed`.
    with link.read_lock, link._lock:
      link.link.seg.close()

  def _drop_provider(self, plink: ProviderLink) -> None:
    with self._lock:
      self._providers.pop(plink.link.link_id, None)
    plink.link.seg.close()

  def _check_broker(self) -> None:
    if self._gone is not None:
      return
    if self._control.region.load32(L.CTL_SHUTTING_DOWN, 1) != 0:
      self._mark_gone("it is shutting down")
    elif not alive(self._broker_pid, self._broker_start):
      self._mark_gone(f"its process {self._broker_pid} died")

  def _mark_gone(self, why: str) -> None:
    if self._gone is not None:
      return
    error = broker_gone(self.namespace, why)
    self._gone = error
    self._ctl.fail_all(error)
    with self._lock:
      callers = list(self._callers.values())
    for link in callers:
      link.close(error)

  def _stop_reactor(self) -> None:
    self._stop = True
    _doorbell.ring(self._control.region, self._doorbell)
    if self._reactor is not threading.current_thread():
      self._reactor.join()

  # ---- closing ----

  def close(self) -> None:
    """Unregisters and unmaps everything. Publishers, subscribers and functions of this connection
    must not be used afterwards. Idempotent."""
    if self._closed:
      return
    self._stop_reactor()
    if self._gone is None:
      with contextlib.suppress(RingError):
        self._ctl.post("Unregister", {})
    self._closed = True
    with self._lock:
      links = [c.link for c in self._callers.values()] + [p.link for p in self._providers.values()]
      self._callers.clear()
      self._callers_by_key.clear()
      self._providers.clear()
    for link in links:
      link.seg.close()
    self._control.close()

  def __enter__(self) -> Connection:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()

  def __repr__(self) -> str:
    return f"<Connection {self.app_name!r} app {self.app_id} in namespace {self.namespace!r}>"


def _soe(fingerprint: int) -> bytes:
  from ._avro import header

  return header(fingerprint)


def _open_control(ns: str) -> Segment:
  name = f"/impulse-ring.{ns}.ctl"
  patience = time.monotonic() + 1.0
  while True:
    try:
      return Segment.open(name, L.KIND_CONTROL)
    except FileNotFoundError:
      raise NoBroker(f"no broker is running in namespace `{ns}`", ns) from None
    except NotReady:
      if time.monotonic() >= patience:
        raise NoBroker(f"no broker is running in namespace `{ns}` (its control segment is not ready)", ns) from None
      time.sleep(0.005)


async def _await_call(
  link: CallerLink, future: concurrent.futures.Future[Any], name: str, timeout: float | None
) -> Any:
  try:
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
  except asyncio.TimeoutError:
    link.forget(future)
    raise Timeout(f"call to `{name}` timed out after {timeout} s") from None
