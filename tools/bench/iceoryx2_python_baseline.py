"""Baseline for the Python connector in `ringctl bench`: iceoryx2's own Python package (`iceoryx2`
on PyPI), publish/subscribe ping-pong of 64 bytes between two processes pinned to CPUs 0 and 1 with
busy-spin receive (one way = round trip / 2), and one-way throughput; printed as ring-bench JSON rows
(system `iceoryx2-python`). Run with a Python that has iceoryx2 installed:

    python iceoryx2_python_baseline.py [--iters N] [--count N]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import subprocess
import sys
import time

import iceoryx2 as iox2


class Payload(ctypes.Structure):
  _fields_ = [("data", ctypes.c_uint8 * 64)]


def pin(cpu: int) -> None:
  with contextlib.suppress(OSError):
    os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def service(node: object, name: str) -> object:
  return node.service_builder(iox2.ServiceName.new(name)).publish_subscribe(Payload).history_size(0).open_or_create()


def row(case: str, **fields: object) -> None:
  base = {
    "case": case,
    "system": "iceoryx2-python",
    "payload_bytes": 64,
    "wait": "spin",
    "subscribers": None,
  }
  base.update(
    {
      "p50_ns": None,
      "p99_ns": None,
      "p999_ns": None,
      "msgs_per_s": None,
      "bytes_per_s": None,
    }
  )
  base.update(fields)
  print(json.dumps(base, separators=(",", ":")), flush=True)


def receive(subscriber: object, deadline: float) -> object:
  while True:
    sample = subscriber.receive()
    if sample is not None:
      return sample
    if time.monotonic() > deadline:
      raise RuntimeError("iceoryx2: nothing received within 30 s")


def follower(prefix: str, iters: int) -> None:
  pin(1)
  node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
  ping = service(node, f"{prefix}/ping").subscriber_builder().create()
  pong = service(node, f"{prefix}/pong").publisher_builder().create()
  print("ready", flush=True)
  for _ in range(iters):
    sample = receive(ping, time.monotonic() + 30)
    pong.send_copy(sample.payload().contents)
    del sample


def leader(iters: int, warmup: int) -> None:
  pin(0)
  prefix = f"ring-bench-{os.getpid()}"
  node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
  ping = service(node, f"{prefix}/ping").publisher_builder().create()
  pong = service(node, f"{prefix}/pong").subscriber_builder().create()
  child = subprocess.Popen(
    [sys.executable, __file__, "--follow", prefix, "--iters", str(iters + warmup)],
    stdout=subprocess.PIPE,
    text=True,
  )
  assert child.stdout is not None
  if child.stdout.readline().strip() != "ready":
    raise RuntimeError("the iceoryx2 follower did not start")
  time.sleep(0.2)  # let both subscribers connect to their publishers
  payload = Payload()
  samples = []
  for i in range(iters + warmup):
    start = time.perf_counter_ns()
    ping.send_copy(payload)
    sample = receive(pong, time.monotonic() + 30)
    del sample
    if i >= warmup:
      samples.append((time.perf_counter_ns() - start) // 2)
  child.wait(30)
  samples.sort()
  pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
  row("pubsub_latency", p50_ns=pick(0.5), p99_ns=pick(0.99), p999_ns=pick(0.999))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--iters", type=int, default=5000)
  parser.add_argument("--follow")
  args = parser.parse_args()
  iox2.set_log_level(iox2.LogLevel.Error)
  if args.follow:
    follower(args.follow, args.iters)
  else:
    leader(args.iters, max(50, args.iters // 10))


if __name__ == "__main__":
  main()
