"""Exposes `add` (spec/schemas/examples/add_request.avsc -> add_response.avsc) until interrupted."""

from __future__ import annotations

import time
from pathlib import Path

from impulse_ring import Connection

EXAMPLES = Path(__file__).resolve().parents[3] / "spec/schemas/examples"
REQUEST = (EXAMPLES / "add_request.avsc").read_text()
RESPONSE = (EXAMPLES / "add_response.avsc").read_text()

with (
  Connection.connect("add-provider") as conn,
  conn.expose_function("add", REQUEST, RESPONSE, lambda r: {"sum": r["a"] + r["b"]}),
):
  print("serving `add`; Ctrl-C stops")
  try:
    while not conn.broker_gone:
      time.sleep(0.2)
  except KeyboardInterrupt:
    pass
