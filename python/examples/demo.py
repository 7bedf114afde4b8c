"""The demo: two apps on one bus. `sensor` publishes readings on a keyed channel and exposes an `add`
function; `dashboard` subscribes to the readings (with asyncio) and calls `add`. Run a broker first
(`cargo run -p impulsed`), then `uv run --project python python python/examples/demo.py`.
"""

from __future__ import annotations

import asyncio
import sys

from impulse_ring import Connection, RingError, WrongKey

READING = {
  "type": "record",
  "name": "Reading",
  "namespace": "demo",
  "fields": [
    {"name": "seq", "type": "long"},
    {"name": "celsius", "type": "double"},
    {"name": "sensor", "type": "string"},
  ],
}
ADD_REQUEST = {
  "type": "record",
  "name": "AddRequest",
  "namespace": "demo",
  "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "long"}],
}
ADD_RESPONSE = {
  "type": "record",
  "name": "AddResponse",
  "namespace": "demo",
  "fields": [{"name": "sum", "type": "long"}],
}


async def dashboard(conn: Connection) -> None:
  try:
    conn.subscribe("readings", READING, key="wrong")
  except WrongKey as e:
    print(f"dashboard: refused as expected: {e}")
  with conn.subscribe("readings", READING, key="s3cret") as readings:
    total = await conn.call_async("add", {"a": 40, "b": 2}, ADD_REQUEST, ADD_RESPONSE)
    print(f"dashboard: add(40, 2) = {total['sum']}")
    async for reading in readings.aiter():
      print(f"dashboard: reading {reading['seq']} from {reading['sensor']}: {reading['celsius']:.1f} °C")
    print("dashboard: the channel closed")


def main() -> int:
  try:
    with Connection.connect("sensor") as sensor, Connection.connect("dashboard") as dash:
      sensor.expose_function("add", ADD_REQUEST, ADD_RESPONSE, lambda r: {"sum": r["a"] + r["b"]})
      publisher = sensor.publish_channel("readings", READING, key="s3cret")

      async def run() -> None:
        task = asyncio.ensure_future(dashboard(dash))
        while not sensor.list()["channels"][0]["subscribers"]:
          await asyncio.sleep(0.01)
        for seq in range(5):
          publisher.publish({"seq": seq, "celsius": 20 + seq / 4, "sensor": "kitchen"})
          await asyncio.sleep(0.01)
        publisher.close()
        await task

      asyncio.run(run())
  except RingError as e:
    print(f"demo: {e.name}: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
