"""Functions against a live broker: exposing, calling (blocking and asyncio) and every error path."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from impulse_ring import (
  Connection,
  HandlerError,
  InvalidRecord,
  InvalidSchema,
  NameTaken,
  PeerGone,
  SchemaMismatch,
  Timeout,
  TooLarge,
  UnknownFunction,
  WrongKey,
)

REQ = {"type": "record", "name": "AddRequest", "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "long"}]}
RESP = {"type": "record", "name": "AddResponse", "fields": [{"name": "sum", "type": "long"}]}
BLOB = '"bytes"'


def add(r: dict) -> dict:
  if r["a"] == 7:
    raise ValueError("refusing a = 7")
  return {"sum": r["a"] + r["b"]}


def test_blocking_calls_return_the_handlers_answer(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("add", REQ, RESP, add)
    assert [c.call("add", {"a": i, "b": 10}, REQ, RESP)["sum"] for i in range(50) if i != 7] == [
      i + 10 for i in range(50) if i != 7
    ]


def test_calls_from_many_threads_each_get_their_own_answer(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("add", REQ, RESP, add)
    wrong = []

    def worker(t: int) -> None:
      for i in range(t * 100, t * 100 + 40):
        if c.call("add", {"a": i, "b": i}, REQ, RESP)["sum"] != 2 * i:
          wrong.append(i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(1, 4)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    assert wrong == []


def test_async_calls_run_concurrently(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("add", REQ, RESP, add)

    async def main() -> list[int]:
      calls = [c.call_async("add", {"a": i, "b": 1}, REQ, RESP) for i in range(100) if i != 7]
      return [r["sum"] for r in await asyncio.gather(*calls)]

    assert asyncio.run(main()) == [i + 1 for i in range(100) if i != 7]


def test_a_failing_handler_comes_back_as_handler_error(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("add", REQ, RESP, add)
    with pytest.raises(HandlerError, match="refusing a = 7"):
      c.call("add", {"a": 7, "b": 0}, REQ, RESP)
    assert c.call("add", {"a": 1, "b": 0}, REQ, RESP) == {"sum": 1}
    # The link's figures for Describe: calls written by the caller, served and failed by the provider.
    (link,) = c._callers.values()
    region = link.link.seg.region
    assert [region.load64(offset, 0) for offset in (128, 192, 200)] == [2, 2, 1]
    bad = p.expose_function("bad", REQ, RESP, lambda r: {"sum": "not a long"})
    with pytest.raises(HandlerError, match="schema"):
      c.call("bad", {"a": 1, "b": 0}, REQ, RESP)
    bad.withdraw()
    assert c.call("add", {"a": 1, "b": 2}, REQ, RESP) == {"sum": 3}


def test_resolve_errors_are_typed(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("keyed", REQ, RESP, add, key="k")
    with pytest.raises(UnknownFunction):
      c.call("nobody", {"a": 1, "b": 2}, REQ, RESP)
    with pytest.raises(WrongKey):
      c.call("keyed", {"a": 1, "b": 2}, REQ, RESP)
    with pytest.raises(SchemaMismatch) as e:
      c.call("keyed", {"a": 1, "b": 2}, REQ, BLOB, key="k")
    assert e.value.expected != e.value.presented
    with pytest.raises(InvalidRecord, match="b"):
      c.call("keyed", {"a": 1}, REQ, RESP, key="k")
    with pytest.raises(NameTaken):
      p.expose_function("keyed", REQ, RESP, add)
    with pytest.raises(InvalidSchema):
      p.expose_function("broken", "{", RESP, add)
    assert c.call("keyed", {"a": 1, "b": 2}, REQ, RESP, key="k") == {"sum": 3}


def test_too_large_requests_and_responses_are_refused(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("echo", BLOB, BLOB, lambda b: b * 2)
    assert c.call("echo", b"ab", BLOB, BLOB) == b"abab"
    with pytest.raises(TooLarge):
      c.call("echo", bytes(200_000), BLOB, BLOB)
    with pytest.raises(TooLarge):
      c.call("echo", bytes(100_000), BLOB, BLOB)  # the doubled response is too large


def test_a_slow_handler_times_the_call_out(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    p.expose_function("slow", REQ, RESP, lambda r: time.sleep(0.5) or {"sum": 0})
    started = time.monotonic()
    with pytest.raises(Timeout):
      c.call("slow", {"a": 1, "b": 2}, REQ, RESP, timeout=0.1)
    assert time.monotonic() - started < 0.45

    async def main() -> None:
      await c.call_async("slow", {"a": 1, "b": 2}, REQ, RESP, timeout=0.1)

    with pytest.raises(Timeout):
      asyncio.run(main())
    time.sleep(0.6)  # the late responses are dropped
    assert c.call("slow", {"a": 1, "b": 2}, REQ, RESP, timeout=5) == {"sum": 0}


def test_a_withdrawn_function_fails_its_callers_with_peer_gone(ns: str) -> None:
  with Connection.connect("provider") as p, Connection.connect("caller") as c:
    function = p.expose_function("add", REQ, RESP, add)
    assert c.call("add", {"a": 1, "b": 2}, REQ, RESP) == {"sum": 3}
    function.withdraw()
    with pytest.raises((PeerGone, UnknownFunction)):
      c.call("add", {"a": 1, "b": 2}, REQ, RESP)
    deadline = time.monotonic() + 2
    while p._providers and time.monotonic() < deadline:
      time.sleep(0.01)
    assert not p._providers, "the provider still maps the withdrawn function's links"
    with pytest.raises(UnknownFunction):
      c.call("add", {"a": 1, "b": 2}, REQ, RESP)
    with p.expose_function("add", REQ, RESP, add):
      assert c.call("add", {"a": 2, "b": 2}, REQ, RESP) == {"sum": 4}


def test_a_handler_may_call_another_function_on_its_own_connection(ns: str) -> None:
  with Connection.connect("adder") as a, Connection.connect("provider") as p, Connection.connect("caller") as c:
    a.expose_function("add", REQ, RESP, add)
    # `twice` resolves and calls `add` from inside its handler, on the provider's reactor thread.
    p.expose_function("twice", REQ, RESP, lambda r: p.call("add", {"a": 2 * r["a"], "b": 2 * r["b"]}, REQ, RESP))
    assert c.call("twice", {"a": 1, "b": 2}, REQ, RESP, timeout=15) == {"sum": 6}
