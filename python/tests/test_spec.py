"""The connector against spec/ itself, without a broker: layout constants against the generated C
header, control records against spec/vectors/control.txt, the error classes against
spec/vectors/errors.txt, the bundled control schema against spec/schemas/control.avsc."""

from __future__ import annotations

import json
import re
import sys

import pytest
from conftest import ROOT, SPEC

import impulse_ring
from impulse_ring import _control, _layout, errors

HEADER = ROOT / "rust" / "core" / "include" / "impulse_ring_wire.h"


def header_constants() -> dict[str, int]:
  found = {}
  for m in re.finditer(r"^#define (IR_\w+) (.+)$", HEADER.read_text(), re.M):
    value = m.group(2).split("//")[0].strip().replace("ull", "").replace("u", "")
    try:
      found[m.group(1)] = int(eval(value, {}))  # the header's values are integer literals and shifts
    except Exception:
      continue
  return found


def test_every_layout_constant_matches_the_generated_header() -> None:
  constants = header_constants()
  assert len(constants) > 80
  checked = 0
  for name, value in constants.items():
    ours = getattr(_layout, name[3:], None)
    assert ours is not None, f"{name} has no counterpart in impulse_ring._layout"
    assert ours == value, f"{name}: the header says {value}, _layout says {ours}"
    checked += 1
  assert checked == len(constants)


def test_sizes_match_the_spec_examples() -> None:
  assert _layout.control_slot_size(65536) == 131_712
  assert _layout.control_segment_size(64, 65536) == 8_429_824
  assert _layout.channel_data_offset(32) + (1 << 20) == 1_051_136
  assert _layout.link_segment_size(256 * 1024) == 524_928
  assert _layout.link_response_ring(256 * 1024) == 262_592
  assert _layout.max_payload(256 * 1024) == 131_056
  assert [_layout.record_size(n) for n in (0, 1, 64)] == [16, 32, 80]


def test_bundled_control_schema_is_the_spec_one() -> None:
  bundled = json.loads((ROOT / "python/src/impulse_ring/control.avsc").read_text())
  assert bundled == json.loads((SPEC / "schemas/control.avsc").read_text())


def with_bytes(schema: object, value: object) -> object:
  """A vector's JSON value as the codec has it: Avro `bytes` show as JSON arrays of numbers."""
  if schema == "bytes":
    assert isinstance(value, list), f"bytes in control.txt are arrays of numbers, not {value!r}"
    return bytes(value)
  if isinstance(schema, list):
    return None if value is None else with_bytes(schema[1], value)  # every union is ["null", X]
  if isinstance(schema, dict) and schema["type"] == "record":
    return {f["name"]: with_bytes(f["type"], value[f["name"]]) for f in schema["fields"]}
  if isinstance(schema, dict) and schema["type"] == "array":
    return [with_bytes(schema["items"], item) for item in value]
  return value


def control_vectors() -> list[tuple[str, dict, bytes]]:
  cases = []
  text = (SPEC / "vectors/control.txt").read_text()
  for m in re.finditer(r"^message: (\w+) (.*)\nbytes: ([0-9a-f]+)$", text, re.M):
    schema = _control._RECORDS[_control.OPCODES[m.group(1)]]
    cases.append((m.group(1), with_bytes(schema, json.loads(m.group(2))), bytes.fromhex(m.group(3))))
  return cases


VECTORS = control_vectors()


def test_control_vectors_are_found() -> None:
  assert len(VECTORS) >= 20
  assert {name for name, _, _ in VECTORS} >= set(_control.NAMES) - {"CallError"} or len(VECTORS) >= 23
  # The sealed-key records: both public keys, and keys that are null, empty and not.
  register = next(f for name, f, _ in VECTORS if name == "Register")
  registered = next(f for name, f, _ in VECTORS if name == "Registered")
  assert len(register["public_key"]) == len(registered["public_key"]) == 32
  keys = [f["key"] for name, f, _ in VECTORS if "key" in f]
  assert None in keys and b"" in keys and any(keys)


def test_key_fields_carry_bytes_and_refuse_text() -> None:
  fields = {"request_id": 3, "name": "m", "schema": '"long"', "key": b"\xff\x00"}
  assert _control.decode(_control.encode("Subscribe", fields)) == ("Subscribe", fields)
  with pytest.raises(TypeError, match="bytes"):
    _control.encode("Subscribe", {**fields, "key": "s3cret"})
  assert _control.key_bytes("clé") == "clé".encode()
  assert _control.key_bytes(b"\xff") == b"\xff"
  assert _control.key_bytes(None) is None
  with pytest.raises(TypeError, match="str or bytes"):
    _control.key_bytes(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "fields", "payload"), VECTORS, ids=[f"{i}-{v[0]}" for i, v in enumerate(VECTORS)])
def test_control_record_encodes_to_the_vector_bytes(name: str, fields: dict, payload: bytes) -> None:
  assert _control.encode(name, fields) == payload


@pytest.mark.parametrize(("name", "fields", "payload"), VECTORS, ids=[f"{i}-{v[0]}" for i, v in enumerate(VECTORS)])
def test_control_vector_bytes_decode_to_the_record(name: str, fields: dict, payload: bytes) -> None:
  assert _control.decode(payload) == (name, fields)


def test_control_decoding_refuses_what_the_spec_refuses() -> None:
  _, _, payload = next(v for v in VECTORS if v[0] == "ChannelPublished")
  with pytest.raises(impulse_ring.Decode, match="left over"):
    _control.decode(payload + b"\0")
  with pytest.raises(impulse_ring.Decode):
    _control.decode(payload[:-3])
  with pytest.raises(impulse_ring.Decode, match="magic"):
    _control.decode(b"\xc3\x02" + payload[2:])
  with pytest.raises(impulse_ring.Decode, match="fingerprint"):
    _control.decode(payload[:2] + b"\0" * 8 + payload[10:])
  with pytest.raises(impulse_ring.Decode, match="opcode"):
    _control.decode(payload[:10] + bytes([2 * len(_control.NAMES)]))  # the first opcode past the union
  # A string length far beyond the bytes left is an error, not an allocation.
  huge = payload[:10] + b"\x06\x04\x0e" + b"\xfe\xff\xff\xff\x0f"
  with pytest.raises(impulse_ring.Decode, match="claims"):
    _control.decode(huge)


def test_error_classes_match_the_shared_vocabulary() -> None:
  rows = []
  for line in (SPEC / "vectors/errors.txt").read_text().splitlines():
    if line and not line.startswith("#"):
      code, name, _description = line.split(" ", 2)
      rows.append((int(code), name))
  assert len(rows) == len(errors.ERRORS)
  for code, name in rows:
    cls = getattr(impulse_ring, name)
    assert issubclass(cls, impulse_ring.RingError)
    assert (cls.code, cls.name) == (code, name)
    assert errors.ERRORS[code - 1] is cls
    assert type(errors.error_for_code(code, "x")) is cls
  assert isinstance(errors.error_for_code(999, "x"), impulse_ring.Protocol)
  assert issubclass(impulse_ring.InvalidRecord, ValueError)


def test_testee_bodies_and_checksums_match_the_contract() -> None:
  sys.path.insert(0, str(ROOT / "python/examples"))
  import testee

  for seq, length, start, check in [
    (0, 0, "", 590684067820433389),
    (1, 1207, "1f3e5d7c", 8571947702623170026),
    (2, 413, "3e5d7c9b", -2000780879586199215),
    (1000, 397, "1f305172", -6594530319833675456),
  ]:
    body = testee.body(seq)
    assert len(body) == length
    assert body[:4].hex() == start
    assert testee.checksum(seq, body) == check


def test_testee_refuses_what_the_contract_calls_usage_errors() -> None:
  import subprocess

  script = str(ROOT / "python/examples/testee.py")
  for argv in (["juggler"], ["publisher", "--colour", "red"], ["caller", "--count"], ["caller", "--count", "1e3"]):
    run = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=30)
    assert run.returncode == 64, argv
    assert run.stderr.startswith("testee: ")
  run = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=30)
  assert run.returncode == 0
  assert "publisher" in run.stdout
