"""spec/vectors/fingerprints.txt through the broker: for every schema, the fingerprint the broker
returns (the only fingerprints this connector uses) is the vector's, and SOE headers carry it."""

from __future__ import annotations

import re
import struct

from conftest import SPEC

from impulse_ring import Connection


def fingerprint_vectors() -> list[tuple[str, str, int]]:
  text = (SPEC / "vectors/fingerprints.txt").read_text()
  pattern = r"^# (\d+) .*\nschema: (.*)\ncanonical: .*\nfingerprint: ([0-9a-f]{16})$"
  return [(m.group(1), m.group(2), int(m.group(3), 16)) for m in re.finditer(pattern, text, re.M)]


def test_the_broker_returns_the_vector_fingerprint_of_every_schema(ns: str) -> None:
  vectors = fingerprint_vectors()
  assert len(vectors) >= 40
  with Connection.connect("fingerprints") as conn:
    for case, schema, expected in vectors:
      pub = conn.publish_channel(f"fp-{case}", schema, capacity=4096)
      assert pub.fingerprint == expected, f"case {case}: {pub.fingerprint:016x} != {expected:016x}"
      pub.close()


def test_published_payloads_carry_the_soe_header_with_the_broker_fingerprint(ns: str) -> None:
  with Connection.connect("soe") as conn:
    pub = conn.publish_channel("soe", '"string"', capacity=4096)
    sub = conn.subscribe("soe", '"string"')
    pub.publish("hi")
    payload = sub._next(1)
    assert payload == b"\xc3\x01" + struct.pack("<Q", pub.fingerprint) + b"\x04hi"
    pub.close()
    sub.close()
