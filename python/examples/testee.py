"""The Python connector's testee: one role per run (publisher, subscriber, provider, caller), options
on the command line, results on stdout, as spec/testee.md defines, so ringctl's
matrix pairs Python with every other connector. A Ring error prints `error <Name>: <message>` and
exits with 10 + its code; a verification failure prints `mismatch ...` and exits with 2.

    testee.py publisher  [--channel C] [--key K] [--count N] [--lossy] [--capacity B] [--wait-subscribers K]
                         [--wait-go] [--raw] [--hold-ms T] [--probe-too-large] [--probe-invalid-schema]
    testee.py subscriber [--channel C] [--key K] [--count N] [--expect-closed] [--stall-ms T] [--schema other]
                         [--probe-invalid-schema]
    testee.py provider   [--function F] [--key K] [--fail-on X] [--sleep-ms T]
    testee.py caller     [--function F] [--key K] [--count N] [--in-flight C] [--threads T] [--timeout-ms T]
                         [--base A] [--keep-going]
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import sys
import threading
import time
from typing import Any, NoReturn

from impulse_ring import BrokerGone, Closed, Connection, Lagged, RingError, UnknownChannel

MESSAGE = (
  '{"type":"record","name":"Message","namespace":"e2e","fields":['
  '{"name":"seq","type":"long"},{"name":"body","type":"bytes"},{"name":"checksum","type":"long"}]}'
)
# Same field names, another type for `body`: another fingerprint.
OTHER_MESSAGE = MESSAGE.replace('"bytes"', '"string"')
MALFORMED = '{"type":"record","name":"Broken","fields":[{"name":"x","type":'
ADD_REQUEST = (
  '{"type":"record","name":"AddRequest","namespace":"e2e",'
  '"fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}'
)
ADD_RESPONSE = '{"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]}'

OPTIONS = {
  "publisher": {"--channel", "--key", "--count", "--capacity", "--wait-subscribers", "--hold-ms"},
  "subscriber": {"--channel", "--key", "--count", "--stall-ms", "--schema"},
  "provider": {"--function", "--key", "--fail-on", "--sleep-ms"},
  "caller": {"--function", "--key", "--count", "--base", "--in-flight", "--threads", "--timeout-ms"},
}
ROLE_FLAGS = {
  "publisher": {"--lossy", "--wait-go", "--raw", "--probe-too-large", "--probe-invalid-schema"},
  "subscriber": {"--expect-closed", "--probe-invalid-schema"},
  "provider": set(),
  "caller": {"--keep-going"},
}
M64 = (1 << 64) - 1
PATTERN = bytes(((i * 31) ^ (i >> 7)) & 0xFF for i in range(4096))


class Mismatch(Exception):
  pass


class Usage(Exception):
  pass


def body(seq: int) -> bytes:
  """The body of message `seq`: 0 to 2000 bytes cut from the pattern at an offset that depends on `seq`."""
  length = ((seq * 2_654_435_761) & M64) % 2001
  start = seq % 1999
  return PATTERN[start : start + length]


def checksum(seq: int, data: bytes) -> int:
  """FNV-1a over `seq` and the body, 8 bytes at a time (the tail zero-padded), as a signed i64."""
  h = 0xCBF29CE484222325
  full = len(data) // 8 * 8
  words = [
    seq & M64,
    *struct.unpack_from(f"<{full // 8}Q", data),
    int.from_bytes(data[full:].ljust(8, b"\0"), "little"),
  ]
  for w in words:
    h = ((h ^ w) * 0x100000001B3) & M64
  return h - (1 << 64) if h >= 1 << 63 else h


def put_long(out: bytearray, value: int) -> None:
  n = ((value << 1) ^ (value >> 63)) & M64
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)


def raw_datum(seq: int) -> bytes:
  data = body(seq)
  out = bytearray()
  put_long(out, seq)
  put_long(out, len(data))
  out += data
  put_long(out, checksum(seq, data))
  return bytes(out)


class Args:
  def __init__(self, role: str, argv: list[str]) -> None:
    self.pairs: list[tuple[str, str | None]] = []
    it = iter(argv)
    for arg in it:
      if not arg.startswith("--"):
        raise Usage(f"unexpected argument `{arg}`")
      if arg in ROLE_FLAGS[role]:
        self.pairs.append((arg, None))
      elif arg not in OPTIONS[role]:
        raise Usage(f"unknown option `{arg}` for the {role}")
      else:
        value = next(it, None)
        if value is None:
          raise Usage(f"`{arg}` needs a value")
        self.pairs.append((arg, value))

  def flag(self, name: str) -> bool:
    return any(n == name for n, _ in self.pairs)

  def text(self, name: str, default: str | None = None) -> str | None:
    for n, v in reversed(self.pairs):
      if n == name:
        return v
    return default

  def number(self, name: str, default: int) -> int:
    v = self.text(name)
    if v is None:
      return default
    try:
      if not re.fullmatch(r"-?[0-9]+", v) or not -(1 << 63) <= int(v) < 1 << 63:
        raise ValueError(v)
      return int(v)
    except ValueError:
      raise Usage(f"`{name}` takes a number, not `{v}`") from None


def error_line(e: RingError) -> str:
  return f"{e.name}: {e}"


def wait_for_subscribers(conn: Connection, channel: str, wanted: int) -> None:
  deadline = time.monotonic() + 30
  while True:
    listing = conn.list()
    found = next((c["subscribers"] for c in listing["channels"] if c["name"] == channel), 0)
    if found >= wanted:
      return
    if time.monotonic() > deadline:
      raise Mismatch(f"only {found} of {wanted} subscribers came")
    time.sleep(0.005)


def publisher(args: Args) -> None:
  channel = args.text("--channel", "data")
  count = args.number("--count", 1000)
  with Connection.connect("testee-publisher") as conn:
    if args.flag("--probe-invalid-schema"):
      try:
        conn.publish_channel(f"{channel}-malformed", MALFORMED)
        print("probe accepted a malformed schema")
      except RingError as e:
        print(f"probe {error_line(e)}")
    pub = conn.publish_channel(
      channel,
      MESSAGE,
      args.text("--key"),
      capacity=args.number("--capacity", 0),
      policy="lossy" if args.flag("--lossy") else "block",
    )
    print("ready", flush=True)
    wait_for_subscribers(conn, channel, args.number("--wait-subscribers", 0))
    if args.flag("--wait-go"):
      sys.stdin.readline()
    if args.flag("--probe-too-large"):
      try:
        pub.publish_raw(bytes(pub.max_datum + 1))
        print("probe published an oversized payload")
      except RingError as e:
        print(f"probe {error_line(e)}")
    raw = args.flag("--raw")
    for seq in range(count):
      if raw:
        pub.publish_raw(raw_datum(seq))
      else:
        data = body(seq)
        pub.publish({"seq": seq, "body": data, "checksum": checksum(seq, data)})
    print(f"published {count}", flush=True)
    # Holding keeps the channel open even when the broker goes: the error is printed at once, but the
    # publisher lives on until the hold ends or a kill.
    until = time.monotonic() + args.number("--hold-ms", 0) / 1000
    gone = False
    while time.monotonic() < until:
      if not gone and conn.broker_gone:
        gone = True
        print(f"error {BrokerGone.name}: the broker of namespace `{conn.namespace}` is gone", flush=True)
      time.sleep(0.01)
    if gone:
      sys.exit(10 + BrokerGone.code)
    pub.close()


def subscriber(args: Args) -> None:
  channel = args.text("--channel", "data")
  count = args.number("--count", 1000)
  expect_closed = args.flag("--expect-closed")
  schema = {None: MESSAGE, "other": OTHER_MESSAGE}.get(args.text("--schema"))
  if schema is None:
    raise Usage(f"unknown schema `{args.text('--schema')}`; use `other`")
  with Connection.connect("testee-subscriber") as conn:
    if args.flag("--probe-invalid-schema"):
      try:
        conn.subscribe(channel, MALFORMED, args.text("--key"))
        print("probe subscribed with a malformed schema")
      except RingError as e:
        print(f"probe {error_line(e)}")
    deadline = time.monotonic() + 30
    while True:
      try:
        sub = conn.subscribe(channel, schema, args.text("--key"))
        break
      except UnknownChannel:
        if time.monotonic() > deadline:
          raise
        time.sleep(0.005)
    print("subscribed", flush=True)
    time.sleep(args.number("--stall-ms", 0) / 1000)
    expected = received = missed = 0
    idle_since = time.monotonic()
    failure: BaseException | None = None
    while expect_closed or received + missed < count:
      try:
        m = sub.recv(0.1)
      except Lagged as e:
        missed += e.missed
        expected += e.missed
        continue
      except Closed:
        if not expect_closed:
          failure = Closed("the channel closed early")
          break
        print("closed")
        break
      except RingError as e:
        failure = e
        break
      if m is None:
        if time.monotonic() - idle_since > 60:
          failure = Mismatch(f"nothing received for 60 s after {received} messages")
          break
        continue
      idle_since = time.monotonic()
      if m["seq"] != expected:
        failure = Mismatch(f"expected message {expected}, got {m['seq']}")
        break
      if m["body"] != body(m["seq"]) or m["checksum"] != checksum(m["seq"], m["body"]):
        failure = Mismatch(f"message {expected} is damaged")
        break
      expected += 1
      received += 1
    print(f"received {received}")
    if args.flag("--stall-ms") or missed:
      print(f"missed {missed} received {received}")
    if failure is not None:
      raise failure
    sub.close()


def provider(args: Args) -> None:
  fail_on = args.number("--fail-on", 0) if args.text("--fail-on") is not None else None
  sleep = args.number("--sleep-ms", 0) / 1000

  def add(request: dict[str, Any]) -> dict[str, Any]:
    if sleep:
      time.sleep(sleep)
    if fail_on is not None and request["a"] == fail_on:
      raise ValueError(f"refusing a = {request['a']}")
    total = (request["a"] + request["b"] + (1 << 63)) % (1 << 64) - (1 << 63)
    return {"sum": total}

  with Connection.connect("testee-provider") as conn:
    function = conn.expose_function(args.text("--function", "add"), ADD_REQUEST, ADD_RESPONSE, add, args.text("--key"))
    print("ready", flush=True)
    stdin_closed = threading.Event()

    def watch_stdin() -> None:
      sys.stdin.buffer.read()
      stdin_closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not stdin_closed.wait(0.01):
      if conn.broker_gone:
        raise BrokerGone(f"the broker of namespace `{conn.namespace}` is gone")
    function.withdraw()


class Plan:
  def __init__(self, args: Args) -> None:
    self.function = args.text("--function", "add") or "add"
    self.key = args.text("--key")
    self.base = args.number("--base", 0)
    self.timeout = args.number("--timeout-ms", 30_000) / 1000
    self.keep_going = args.flag("--keep-going")
    self.failed = 0
    self.lock = threading.Lock()

  def request(self, i: int) -> dict[str, int]:
    return {"a": self.base + i, "b": i * 3}

  def check(self, i: int, result: Any, error: RingError | None) -> None:
    if error is None:
      if result["sum"] != self.base + i + i * 3:
        raise Mismatch(f"call {i} returned {result['sum']}")
      return
    if not self.keep_going:
      raise error
    print(f"error {error_line(error)}", flush=True)
    with self.lock:
      self.failed += 1


async def call_async(conn: Connection, plan: Plan, count: int, in_flight: int) -> None:
  pending: set[asyncio.Future[Any]] = set()

  async def one(i: int, call: Any) -> None:
    try:
      result = await call
    except RingError as e:
      plan.check(i, None, e)
      return
    plan.check(i, result, None)

  for i in range(count):
    if len(pending) >= in_flight:
      done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
      for d in done:
        d.result()
    try:
      call = conn.call_async(plan.function, plan.request(i), ADD_REQUEST, ADD_RESPONSE, plan.key, plan.timeout)
    except RingError as e:
      plan.check(i, None, e)
      continue
    if i == 0:
      print("calling", flush=True)
    pending.add(asyncio.ensure_future(one(i, call)))
  for d in asyncio.as_completed(pending):
    await d


def call_blocking(conn: Connection, plan: Plan, count: int, threads: int) -> None:
  errors: list[BaseException] = []

  def worker(t: int) -> None:
    try:
      for i in range(t, count, threads):
        try:
          result = conn.call(plan.function, plan.request(i), ADD_REQUEST, ADD_RESPONSE, plan.key, plan.timeout)
        except RingError as e:
          plan.check(i, None, e)
          continue
        plan.check(i, result, None)
    except BaseException as e:
      errors.append(e)

  workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
  for w in workers:
    w.start()
  for w in workers:
    w.join()
  if errors:
    raise errors[0]


def caller(args: Args) -> None:
  count = args.number("--count", 1000)
  plan = Plan(args)
  with Connection.connect("testee-caller") as conn:
    threads = args.number("--threads", 0)
    if threads:
      call_blocking(conn, plan, count, threads)
    else:
      asyncio.run(call_async(conn, plan, count, max(1, args.number("--in-flight", 1))))
    if plan.keep_going:
      print(f"ok {count - plan.failed} failed {plan.failed}")
    else:
      print(f"ok {count}")


def main() -> NoReturn:
  argv = sys.argv[1:]
  if "--help" in argv:
    print(__doc__)
    sys.exit(0)
  role = argv[0] if argv else ""
  roles = {"publisher": publisher, "subscriber": subscriber, "provider": provider, "caller": caller}
  try:
    if role not in roles:
      raise Usage(f"unknown role `{role}`")
    roles[role](Args(role, argv[1:]))
  except RingError as e:
    print(f"error {error_line(e)}", flush=True)
    # Not sys.exit: a provider's stdin watcher (a daemon thread) may sit in a read that holds the
    # buffered reader's lock, and interpreter shutdown then aborts (SIGABRT) instead of exiting.
    os._exit(10 + e.code)
  except Mismatch as e:
    print(f"mismatch {e}", flush=True)
    sys.exit(2)
  except Usage as e:
    print(f"testee: {e}\nusage: testee.py publisher|subscriber|provider|caller [--option value]...", file=sys.stderr)
    sys.exit(64)
  sys.stdout.flush()
  sys.exit(0)


if __name__ == "__main__":
  main()
