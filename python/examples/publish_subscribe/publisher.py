"""Publishes ten `Metric` records (spec/schemas/examples/metric.avsc) on channel `metrics`, once a
subscriber is there. Run a broker, then this and `subscriber.py` side by side."""

from __future__ import annotations

import time
from pathlib import Path

from impulse_ring import Connection

SCHEMA = (Path(__file__).resolve().parents[3] / "spec/schemas/examples/metric.avsc").read_text()

with Connection.connect("metrics-publisher") as conn, conn.publish_channel("metrics", SCHEMA) as publisher:
  print("waiting for a subscriber")
  while not any(c["name"] == "metrics" and c["subscribers"] for c in conn.list()["channels"]):
    time.sleep(0.05)
  for i in range(10):
    publisher.publish({"name": "cpu.user", "value": i / 10, "timestamp_ns": time.time_ns(), "tags": {"host": "a"}})
  print("published 10 metrics")
