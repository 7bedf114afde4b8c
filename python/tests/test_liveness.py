"""Crashes, as a kill would cause them: a killed publisher gives Closed, a killed provider fails a
pending call with PeerGone within a second, a killed broker gives BrokerGone."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import Broker, spawn_app, wait_line

from impulse_ring import BrokerGone, Closed, Connection, PeerGone

REQ = {"type": "record", "name": "AddRequest", "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "long"}]}
RESP = {"type": "record", "name": "AddResponse", "fields": [{"name": "sum", "type": "long"}]}

PUBLISHER = """
import time
from impulse_ring import Connection
conn = Connection.connect("doomed-publisher")
pub = conn.publish_channel("doomed", '"long"')
print("ready")
import sys
sys.stdin = None
for n in range(10):
  pub.publish(n)
print("published")
time.sleep(60)
"""

PROVIDER = f"""
import time
from impulse_ring import Connection
REQ = {REQ!r}
RESP = {RESP!r}
conn = Connection.connect("doomed-provider")
conn.expose_function("slow", REQ, RESP, lambda r: (print("handling", flush=True), time.sleep(60)))
print("ready")
time.sleep(60)
"""


def test_subscriber_drains_then_sees_closed_when_the_publisher_is_killed(ns: str) -> None:
  app = spawn_app(ns, PUBLISHER)
  try:
    wait_line(app, "ready")
    with Connection.connect("survivor") as conn:
      sub = conn.subscribe("doomed", '"long"')
      wait_line(app, "published")
      app.kill()
      app.wait()
      got = []
      with pytest.raises(Closed):
        while True:
          value = sub.recv(5)
          assert value is not None, "the subscriber waited 5 s without seeing Closed"
          got.append(value)
      sub.close()
  finally:
    app.kill()
    app.wait()


def test_pending_call_fails_with_peer_gone_within_a_second_when_the_provider_is_killed(ns: str) -> None:
  app = spawn_app(ns, PROVIDER)
  try:
    wait_line(app, "ready")
    with Connection.connect("caller") as conn:
      outcome: list[BaseException] = []

      def call() -> None:
        try:
          conn.call("slow", {"a": 1, "b": 2}, REQ, RESP, timeout=30)
        except BaseException as e:
          outcome.append(e)

      t = threading.Thread(target=call)
      t.start()
      wait_line(app, "handling")
      app.kill()
      killed = time.monotonic()
      t.join(10)
      elapsed = time.monotonic() - killed
      assert outcome and isinstance(outcome[0], PeerGone), outcome
      assert elapsed < 1.0, f"PeerGone came {elapsed:.2f} s after the kill"
  finally:
    app.kill()
    app.wait()


def test_everything_fails_with_broker_gone_when_the_broker_is_killed(ns: str, broker: Broker) -> None:
  conn = Connection.connect("orphan")
  pub = conn.publish_channel("left", '"long"')
  sub = conn.subscribe("left", '"long"')
  pub.publish(1)
  broker.kill()
  deadline = time.monotonic() + 2
  while not conn.broker_gone and time.monotonic() < deadline:
    time.sleep(0.01)
  assert conn.broker_gone
  # The data plane still works between live apps; once nothing is left, the subscriber is told.
  assert sub.recv(1) == 1
  with pytest.raises(BrokerGone):
    sub.recv(1)
  with pytest.raises(BrokerGone):
    conn.list()
  with pytest.raises(BrokerGone):
    conn.call("add", {"a": 1, "b": 2}, REQ, RESP)
  pub.close()
  sub.close()
  conn.close()
