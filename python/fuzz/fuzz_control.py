"""Atheris fuzz target: the pure-Python control codec (`impulse_ring._control.decode`, spec/wire-format.md
§10) over arbitrary frame payloads, as a Python app reads them from its reply ring. It raises only
`Decode`; whatever decodes re-encodes to a payload that decodes to the same record. The input is tried
as it is and behind a valid Single Object Encoding header. Run by `cargo ringctl fuzz` as
`uv run --project python --with atheris python python/fuzz/fuzz_control.py <libFuzzer flags> <corpus>`.
"""

from __future__ import annotations

import struct
import sys

import atheris

with atheris.instrument_imports():
  from impulse_ring import _control
  from impulse_ring import _layout as L
  from impulse_ring.errors import Decode

HEADER = L.SOE_MAGIC + struct.pack("<Q", L.CONTROL_FINGERPRINT)


def check(payload: bytes) -> None:
  try:
    name, fields = _control.decode(payload)
  except Decode:
    return
  again = _control.decode(_control.encode(name, fields))
  if again != (name, fields):
    raise AssertionError(f"control record changed through encode and decode: {(name, fields)!r} became {again!r}")


def test_one_input(data: bytes) -> None:
  check(data)
  check(HEADER + data)


if __name__ == "__main__":
  atheris.Setup(sys.argv, test_one_input)
  atheris.Fuzz()
