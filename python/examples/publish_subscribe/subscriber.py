"""Prints every `Metric` of channel `metrics` until its publisher closes it."""

from __future__ import annotations

import time
from pathlib import Path

from impulse_ring import Connection, UnknownChannel

SCHEMA = (Path(__file__).resolve().parents[3] / "spec/schemas/examples/metric.avsc").read_text()

with Connection.connect("metrics-subscriber") as conn:
  while True:
    try:
      subscriber = conn.subscribe("metrics", SCHEMA)
      break
    except UnknownChannel:
      time.sleep(0.05)  # the publisher is not there yet
  with subscriber:
    for metric in subscriber:
      print(f"{metric['name']} = {metric['value']} {metric['tags']}")
  print("the channel closed")
