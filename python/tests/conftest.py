"""Fixtures of the Python self-test: a live broker (`target/debug/impulsed`, or `IMPULSE_RING_BROKER`)
in a namespace of its own per test, stopped afterwards with a check that `/dev/shm` holds nothing of
that namespace; and helpers to run apps as separate processes (to kill them as a crash would)."""

from __future__ import annotations

import itertools
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "spec"
_counter = itertools.count()


def broker_binary() -> Path:
  explicit = os.environ.get("IMPULSE_RING_BROKER")
  path = Path(explicit) if explicit else ROOT / "target" / "debug" / "impulsed"
  if not path.exists():
    pytest.fail(f"the broker {path} is not built: run `cargo build -p impulsed` (or `cargo ringctl test-matrix`)")
  return path


def shm_names(ns: str) -> list[str]:
  prefix = f"impulse-ring.{ns}."
  return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))


class Broker:
  """A broker process serving `ns`."""

  def __init__(self, ns: str) -> None:
    self.ns = ns
    self.proc = subprocess.Popen(
      [str(broker_binary()), "--ns", ns, "--log-level", "warn"],
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
    )
    ctl = Path(f"/dev/shm/impulse-ring.{ns}.ctl")
    deadline = time.monotonic() + 10
    while not self._serving(ctl):
      if self.proc.poll() is not None:
        raise RuntimeError(f"the broker exited with {self.proc.returncode}: {self.proc.stderr.read().decode()}")
      if time.monotonic() > deadline:
        raise RuntimeError("the broker did not create its control segment within 10 s")
      time.sleep(0.01)

  def _serving(self, ctl: Path) -> bool:
    """Whether `ctl` is this broker's control segment, laid out (a crashed predecessor's may linger)."""
    try:
      with ctl.open("rb") as f:
        header = f.read(28)
    except OSError:
      return False
    if len(header) < 28:
      return False
    version, pid = struct.unpack_from("<I", header, 4)[0], struct.unpack_from("<I", header, 24)[0]
    return version != 0 and pid == self.proc.pid

  def stop(self) -> int:
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGINT)
      try:
        self.proc.wait(10)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
    return self.proc.returncode

  def kill(self) -> None:
    self.proc.kill()
    self.proc.wait()


def unique_ns(name: str) -> str:
  short = "".join(c if c.isalnum() else "-" for c in name)[:30]
  return f"py-{os.getpid()}-{next(_counter)}-{short}"


@pytest.fixture
def ns(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
  """A namespace with a live broker; `IMPULSE_RING_NS` points at it. Afterwards the broker must stop
  cleanly and leave nothing of the namespace in /dev/shm (a killed broker's leftovers are removed by
  a restarted broker, as spec/bootstrap.md §9.1 does)."""
  name = unique_ns(request.node.name)
  broker = Broker(name)
  request.node.broker = broker
  monkeypatch.setenv("IMPULSE_RING_NS", name)
  yield name
  killed = broker.proc.poll() is not None
  broker.stop()
  if killed:
    # A crashed broker leaves its segments; a new one in the namespace cleans them up.
    Broker(name).stop()
  deadline = time.monotonic() + 2
  while shm_names(name) and time.monotonic() < deadline:
    time.sleep(0.02)
  assert shm_names(name) == [], f"the test left {shm_names(name)} in /dev/shm"


@pytest.fixture
def broker(request: pytest.FixtureRequest, ns: str) -> Broker:
  return request.node.broker


def spawn_app(ns: str, code: str) -> subprocess.Popen[str]:
  """Runs `code` in a fresh interpreter with this package, in namespace `ns`; stdout is a pipe."""
  env = {**os.environ, "IMPULSE_RING_NS": ns, "PYTHONUNBUFFERED": "1"}
  return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


def wait_line(proc: subprocess.Popen[str], wanted: str, timeout: float = 30) -> None:
  """Reads the app's stdout until a line equal to `wanted`."""
  assert proc.stdout is not None
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    line = proc.stdout.readline()
    if not line:
      raise AssertionError(f"the app exited ({proc.wait()}) before printing {wanted!r}")
    if line.strip() == wanted:
      return
  raise AssertionError(f"the app did not print {wanted!r} in time")
