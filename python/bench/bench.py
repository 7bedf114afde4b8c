"""The Python connector's side of `ringctl bench`: the same cases and JSON rows as tools/bench
(system `ring-python`, `ring-python-typed`), and the baselines a Python user would pick instead, in
the same run: a Unix socket pair between two processes (`uds-python`). Each case is a leader on CPU
0 and a follower process on CPU 1, through a live broker in IMPULSE_RING_NS.

    bench.py suite [--quick]
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from impulse_ring import Connection

SAMPLE = {
  "type": "record",
  "name": "Sample",
  "namespace": "bench",
  "fields": [{"name": n, "type": "long"} for n in ("seq", "a", "b", "c")]
  + [{"name": n, "type": "double"} for n in ("x", "y", "z")],
}


def fixed(size: int) -> str:
  return json.dumps({"type": "fixed", "name": f"Payload{size}", "namespace": "bench", "size": size})


def pin(cpu: int) -> None:
  with contextlib.suppress(OSError):
    os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def row(case: str, system: str, size: int, wait: str, **fields: Any) -> None:
  base = {"case": case, "system": system, "payload_bytes": size, "wait": wait, "subscribers": None}
  base.update({"p50_ns": None, "p99_ns": None, "p999_ns": None, "msgs_per_s": None, "bytes_per_s": None})
  base.update(fields)
  print(json.dumps(base, separators=(",", ":")), flush=True)


def percentiles(samples: list[int]) -> dict[str, int]:
  samples.sort()
  pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
  return {"p50_ns": pick(0.5), "p99_ns": pick(0.99), "p999_ns": pick(0.999)}


def follower(case: str, *args: str) -> subprocess.Popen[str]:
  proc = subprocess.Popen(
    [sys.executable, __file__, "follow", case, *args], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
  )
  assert proc.stdout is not None
  line = proc.stdout.readline().strip()
  if line != "ready":
    raise RuntimeError(f"the {case} follower said {line!r}")
  return proc


def finish(proc: subprocess.Popen[str]) -> None:
  assert proc.stdin is not None
  proc.stdin.close()
  proc.wait(30)


def pubsub_latency(wait: str, size: int, iters: int, warmup: int) -> None:
  pin(0)
  with Connection.connect("bench-ping", wait=wait) as conn:
    ping = conn.publish_channel("bench.ping", fixed(size), capacity=1 << 20)
    f = follower("pubsub", wait, str(size))
    pong = conn.subscribe("bench.pong", fixed(size))
    payload = b"\xa5" * size
    samples = []
    for i in range(warmup + iters):
      start = time.perf_counter_ns()
      ping.publish_raw(payload)
      if pong.recv_raw(30) is None:
        raise RuntimeError("no pong within 30 s")
      if i >= warmup:
        samples.append((time.perf_counter_ns() - start) // 2)
    ping.close()
    finish(f)
    pong.close()
  row("pubsub_latency", "ring-python", size, wait, **percentiles(samples))


def pubsub_follower(wait: str, size: int) -> None:
  pin(1)
  with Connection.connect("bench-pong", wait=wait) as conn:
    while True:
      try:
        ping = conn.subscribe("bench.ping", fixed(size))
        break
      except Exception:
        time.sleep(0.001)
    pong = conn.publish_channel("bench.pong", fixed(size), capacity=1 << 20)
    print("ready", flush=True)
    while not conn.list()["channels"] or not all(c["subscribers"] for c in conn.list()["channels"]):
      time.sleep(0.001)
    try:
      while True:
        datum = ping.recv_raw(None)
        pong.publish_raw(datum)
    except Exception:
      pass
    pong.close()


def call_latency(wait: str, size: int, iters: int, warmup: int) -> None:
  pin(0)
  with Connection.connect("bench-caller", wait=wait) as conn:
    f = follower("call", wait, str(size))
    payload = b"\x5a" * size
    schema = fixed(size)
    samples = []
    for i in range(warmup + iters):
      start = time.perf_counter_ns()
      conn.call("bench.echo", payload, schema, schema, timeout=30)
      if i >= warmup:
        samples.append(time.perf_counter_ns() - start)
    finish(f)
  row("call_latency", "ring-python", size, wait, **percentiles(samples))


def call_follower(wait: str, size: int) -> None:
  pin(1)
  with Connection.connect("bench-provider", wait=wait) as conn:
    conn.expose_function("bench.echo", fixed(size), fixed(size), lambda d: d)
    print("ready", flush=True)
    sys.stdin.read()


def throughput(typed: bool, count: int) -> None:
  pin(0)
  size = 64
  schema: Any = SAMPLE if typed else fixed(size)
  with Connection.connect("bench-publisher") as conn:
    pub = conn.publish_channel("bench.tp", schema, capacity=1 << 20, send_timeout=30)
    f = follower("throughput", "typed" if typed else "raw", str(count))
    while not conn.list()["channels"][0]["subscribers"]:
      time.sleep(0.001)
    sample = {"seq": 0, "a": 1, "b": 2, "c": 3, "x": 0.5, "y": 1.5, "z": 2.5}
    payload = b"\x11" * size
    start = time.perf_counter()
    if typed:
      for i in range(count):
        sample["seq"] = i
        pub.publish(sample)
    else:
      for _ in range(count):
        pub.publish_raw(payload)
    assert f.stdout is not None
    done = f.stdout.readline().strip()
    seconds = time.perf_counter() - start
    if done != f"received {count}":
      raise RuntimeError(f"the throughput follower said {done!r}")
    pub.close()
    finish(f)
  per_s = count / seconds
  row(
    "pubsub_throughput",
    "ring-python-typed" if typed else "ring-python",
    size,
    "adaptive",
    subscribers=1,
    msgs_per_s=per_s,
    bytes_per_s=per_s * size,
  )


def throughput_follower(kind: str, count: int) -> None:
  pin(1)
  typed = kind == "typed"
  with Connection.connect("bench-subscriber") as conn:
    sub = conn.subscribe("bench.tp", SAMPLE if typed else fixed(64))
    print("ready", flush=True)
    for _ in range(count):
      if (sub.recv(30) if typed else sub.recv_raw(30)) is None:
        raise RuntimeError("nothing for 30 s")
    print(f"received {count}", flush=True)
    sys.stdin.read()
    sub.close()


def uds_latency(size: int, iters: int, warmup: int) -> None:
  pin(0)
  a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
  pid = os.fork()
  if pid == 0:
    a.close()
    pin(1)
    for _ in range(warmup + iters):
      b.send(b.recv(size))
    os._exit(0)
  b.close()
  payload = b"\xa5" * size
  samples = []
  for i in range(warmup + iters):
    start = time.perf_counter_ns()
    a.send(payload)
    a.recv(size)
    if i >= warmup:
      samples.append((time.perf_counter_ns() - start) // 2)
  os.waitpid(pid, 0)
  row("pubsub_latency", "uds-python", size, "block", **percentiles(samples))


def suite(quick: bool) -> None:
  iters, warmup, count = (300, 50, 20_000) if quick else (5000, 500, 200_000)
  for wait in ("spin", "adaptive"):
    pubsub_latency(wait, 64, iters, warmup)
  call_latency("spin", 64, iters, warmup)
  throughput(False, count)
  throughput(True, count)
  uds_latency(64, iters, warmup)


def main(argv: list[str]) -> int | None:
  if argv[:1] == ["suite"]:
    suite("--quick" in argv)
  elif argv[:1] == ["follow"]:
    case, *rest = argv[1:]
    if case == "pubsub":
      pubsub_follower(rest[0], int(rest[1]))
    elif case == "call":
      call_follower(rest[0], int(rest[1]))
    else:
      throughput_follower(rest[0], int(rest[1]))
  else:
    print(__doc__, file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
