"""Channels against a live broker: every channel call and its error paths."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from impulse_ring import (
  Closed,
  Connection,
  InvalidArgument,
  InvalidRecord,
  InvalidSchema,
  Lagged,
  NameTaken,
  NoBroker,
  SchemaMismatch,
  Timeout,
  TooLarge,
  UnknownChannel,
  WouldBlock,
  WrongKey,
)

METRIC = {
  "type": "record",
  "name": "Metric",
  "namespace": "t",
  "fields": [{"name": "name", "type": "string"}, {"name": "value", "type": "double"}, {"name": "n", "type": "long"}],
}
OTHER = {"type": "record", "name": "Metric", "namespace": "t", "fields": [{"name": "name", "type": "string"}]}


def metric(n: int) -> dict:
  return {"name": f"m{n}", "value": n / 2, "n": n}


def test_records_published_arrive_in_order_and_intact(ns: str) -> None:
  with Connection.connect("pub") as a, Connection.connect("sub") as b:
    pub = a.publish_channel("metrics", METRIC)
    sub = b.subscribe("metrics", json.dumps(METRIC))
    assert pub.fingerprint == sub.fingerprint != 0
    for n in range(500):
      pub.publish(metric(n))
    assert [sub.recv(5) for _ in range(500)] == [metric(n) for n in range(500)]
    assert sub.recv(0) is None
    pub.close()
    with pytest.raises(Closed):
      sub.recv(1)
    sub.close()


def test_raw_publish_and_receive_carry_the_datum(ns: str) -> None:
  with Connection.connect("raw") as conn:
    pub = conn.publish_channel("raw", '"long"', capacity=4096)
    sub = conn.subscribe("raw", '"long"')
    pub.publish_raw(b"\x54")  # 42 as an Avro long
    assert sub.recv_raw(1) == b"\x54"
    pub.publish(-3)
    assert sub.recv(1) == -3
    assert pub.max_datum == 4096 // 2 - 16 - 10
    with pytest.raises(TooLarge) as e:
      pub.publish_raw(bytes(pub.max_datum + 1))
    assert (e.value.size, e.value.max) == (pub.max_datum + 11, pub.max_datum + 10)
    pub.close()
    sub.close()


def test_iteration_ends_when_the_channel_closes(ns: str) -> None:
  with Connection.connect("iter") as conn:
    pub = conn.publish_channel("it", METRIC)
    sub = conn.subscribe("it", METRIC)
    for n in range(10):
      pub.publish(metric(n))
    pub.close()
    assert [m["n"] for m in sub] == list(range(10))
    sub.close()


def test_async_iteration_receives_without_blocking_the_loop(ns: str) -> None:
  with Connection.connect("aio") as conn:
    pub = conn.publish_channel("aio", METRIC)
    sub = conn.subscribe("aio", METRIC)

    def later() -> None:
      for n in range(20):
        time.sleep(0.01)
        pub.publish(metric(n))
      pub.close()

    async def main() -> tuple[list[int], int]:
      ticks = 0

      async def tick() -> None:
        nonlocal ticks
        while True:
          await asyncio.sleep(0.005)
          ticks += 1

      ticker = asyncio.ensure_future(tick())
      got = [m["n"] async for m in sub.aiter()]
      ticker.cancel()
      return got, ticks

    t = threading.Thread(target=later)
    t.start()
    got, ticks = asyncio.run(main())
    t.join()
    assert got == list(range(20))
    assert ticks > 5
    sub.close()


def test_subscribe_errors_are_typed(ns: str) -> None:
  with Connection.connect("errs") as conn:
    pub = conn.publish_channel("keyed", METRIC, key="s3cret")
    with pytest.raises(UnknownChannel):
      conn.subscribe("nobody", METRIC)
    with pytest.raises(WrongKey):
      conn.subscribe("keyed", METRIC)
    with pytest.raises(WrongKey):
      conn.subscribe("keyed", METRIC, key="guess")
    with pytest.raises(SchemaMismatch) as e:
      conn.subscribe("keyed", OTHER, key="s3cret")
    assert e.value.expected == pub.fingerprint
    assert e.value.presented not in (0, pub.fingerprint)
    assert f"{pub.fingerprint:016x}" in str(e.value)
    with pytest.raises(InvalidSchema):
      conn.subscribe("keyed", '{"type":"record","name":"Broken","fields":[{"name":"x","type":')
    conn.subscribe("keyed", METRIC, key="s3cret").close()
    pub.close()


def test_publish_channel_errors_are_typed(ns: str) -> None:
  with Connection.connect("perrs") as conn:
    pub = conn.publish_channel("taken", METRIC)
    with pytest.raises(NameTaken):
      conn.publish_channel("taken", METRIC)
    with pytest.raises(InvalidSchema):
      conn.publish_channel("bad", '{"type":"nope"}')
    with pytest.raises(InvalidArgument, match="capacity"):
      conn.publish_channel("cap", METRIC, capacity=5000)
    with pytest.raises(InvalidArgument):
      conn.publish_channel("", METRIC)
    with pytest.raises(InvalidArgument):
      conn.publish_channel("pol", METRIC, policy="sometimes")
    pub.close()


def test_a_record_that_does_not_match_names_the_field_and_writes_nothing(ns: str) -> None:
  with Connection.connect("rec") as conn:
    pub = conn.publish_channel("rec", METRIC)
    sub = conn.subscribe("rec", METRIC)
    with pytest.raises(InvalidRecord) as e:
      pub.publish({"name": "x", "value": "not a number", "n": 1})
    assert isinstance(e.value, ValueError)
    assert "value" in str(e.value)
    assert sub.recv(0) is None
    assert pub.published == 0
    pub.close()
    sub.close()


def test_a_full_block_channel_would_block_then_times_out(ns: str) -> None:
  with Connection.connect("full") as conn:
    pub = conn.publish_channel("full", '"bytes"', capacity=4096)
    sub = conn.subscribe("full", '"bytes"')
    sent = 0
    with pytest.raises(WouldBlock):
      while True:
        pub.publish(b"x" * 100, block=False)
        sent += 1
    assert 0 < sent < 4096 // 100
    started = time.monotonic()
    with pytest.raises(Timeout):
      pub.publish(b"x" * 100, timeout=0.3)
    assert time.monotonic() - started >= 0.25
    # Reading frees space: a waiting publish then goes through.
    t = threading.Thread(target=lambda: [sub.recv(1) for _ in range(5)])
    t.start()
    pub.publish(b"y" * 100, timeout=5)
    t.join()
    received = 5
    while sub.recv(0) is not None:
      received += 1
    assert received == sent + 1
    pub.close()
    sub.close()


def test_a_lapped_lossy_subscriber_is_told_exactly_how_many_it_missed(ns: str) -> None:
  with Connection.connect("lossy") as conn:
    pub = conn.publish_channel("lossy", '"long"', capacity=4096, policy="lossy")
    sub = conn.subscribe("lossy", '"long"')
    total = 2000
    for n in range(total):
      pub.publish(n)
    received, missed, last = 0, 0, -1
    while True:
      try:
        value = sub.recv(0)
      except Lagged as e:
        assert e.missed > 0
        missed += e.missed
        continue
      if value is None:
        break
      assert value > last
      last = value
      received += 1
    assert missed > 0
    assert received + missed == total
    assert last == total - 1
    # The figure Describe shows: the subscriber keeps its missed count in its slot (IR_SUB_MISSED).
    reader = sub._reader
    assert reader.g.region.load64(reader.slot + 16, 0) == missed
    pub.close()
    sub.close()


def test_connect_errors_name_the_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
  monkeypatch.setenv("IMPULSE_RING_NS", "py-nobody-here")
  with pytest.raises(NoBroker) as e:
    Connection.connect("lonely")
  assert e.value.namespace == "py-nobody-here"
  assert "py-nobody-here" in str(e.value)
  with pytest.raises(InvalidArgument, match="namespace"):
    Connection.connect("x", namespace="a.b")


def test_listing_shows_apps_channels_and_subscribers(ns: str) -> None:
  with Connection.connect("lister") as conn:
    pub = conn.publish_channel("listed", METRIC, capacity=8192)
    sub = conn.subscribe("listed", METRIC)
    listing = conn.list()
    assert any(a["name"] == "lister" and a["app_id"] == conn.app_id for a in listing["apps"])
    (channel,) = [c for c in listing["channels"] if c["name"] == "listed"]
    assert (channel["fingerprint"], channel["capacity"], channel["subscribers"]) == (pub.fingerprint, 8192, 1)
    sub.close()
    pub.close()


def test_describe_returns_the_registry_entry_with_live_figures(ns: str) -> None:
  with Connection.connect("describer") as conn:
    pub = conn.publish_channel("described", METRIC, key="s3cr3t-key")
    sub = conn.subscribe("described", METRIC, key="s3cr3t-key")
    for n in range(3):
      pub.publish(metric(n))
    assert sub.recv(5) == metric(0)
    (channel,) = conn.describe("described")["channels"]
    assert json.loads(channel["schema"]) == METRIC
    assert (channel["fingerprint"], channel["key_gated"], channel["published"]) == (pub.fingerprint, True, 3)
    assert (channel["owner_app_name"], channel["subscribers"][0]["lag"]) == ("describer", 2)
    assert "s3cr3t" not in json.dumps(channel)
    by_id = conn.describe(channel["channel_id"])
    assert by_id["channels"][0]["name"] == "described" and by_id["functions"] == []
    with pytest.raises(UnknownChannel, match="nothing-here"):
      conn.describe("nothing-here")
    sub.close()
    pub.close()


def test_monitor_sees_other_apps_join_publish_and_leave(ns: str) -> None:
  with Connection.connect("watcher") as conn:
    monitor = conn.monitor()
    with Connection.connect("actor") as actor:
      actor.publish_channel("watched", METRIC).close()
    seen = []
    while not seen or seen[-1][0] != "app-left":
      event = monitor.next(timeout=10)
      assert event is not None, f"no app-left after {seen}"
      seen.append((event["kind"], event["app_name"], event["subject"]))
    assert seen == [
      ("app-joined", "actor", ""),
      ("channel-published", "actor", "watched"),
      ("channel-closed", "actor", "watched"),
      ("app-left", "actor", ""),
    ]


def test_a_refused_registration_frees_its_slot(ns: str) -> None:
  for _ in range(3):
    with pytest.raises(InvalidArgument):
      Connection.connect("")
    with pytest.raises(InvalidArgument):
      Connection.connect("x" * 129)
  with Connection.connect("after") as conn:
    assert conn.list()["apps"][0]["name"] == "after"
