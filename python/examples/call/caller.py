"""Calls `add` a few times, blocking and with asyncio."""

from __future__ import annotations

import asyncio
from pathlib import Path

from impulse_ring import Connection

EXAMPLES = Path(__file__).resolve().parents[3] / "spec/schemas/examples"
REQUEST = (EXAMPLES / "add_request.avsc").read_text()
RESPONSE = (EXAMPLES / "add_response.avsc").read_text()

with Connection.connect("add-caller") as conn:
  print("add(1, 2) =", conn.call("add", {"a": 1, "b": 2}, REQUEST, RESPONSE)["sum"])

  async def many() -> list[int]:
    calls = [conn.call_async("add", {"a": i, "b": i}, REQUEST, RESPONSE) for i in range(5)]
    return [r["sum"] for r in await asyncio.gather(*calls)]

  print("add(i, i) for i in 0..4 =", asyncio.run(many()))
