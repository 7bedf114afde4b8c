"""User payloads: Avro Single Object Encoding (spec/wire-format.md §9) through fastavro.

A `Codec` holds one parsed schema and the fingerprint the broker returned for it (fingerprints are
never computed here). Encoding writes the 10-byte SOE header and the datum; a record that does not
match its schema raises `InvalidRecord` naming the field, before anything reaches shared memory.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, Union

import fastavro
from fastavro.validation import ValidationError, validate

from . import _layout as L
from .errors import Decode, InvalidRecord, InvalidSchema

SchemaLike = Union[str, dict, list]


def schema_text(schema: SchemaLike) -> str:
  """The schema JSON sent to the broker: a str as given, a parsed schema dumped compactly."""
  if isinstance(schema, str):
    return schema
  return json.dumps(schema, separators=(",", ":"))


def parse(schema: SchemaLike) -> Any:
  """Parses a schema (JSON text or its Python form), raising `InvalidSchema`."""
  try:
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return fastavro.parse_schema(parsed)
  except Exception as e:
    raise InvalidSchema(f"invalid schema: {e}") from None


def header(fingerprint: int) -> bytes:
  return L.SOE_MAGIC + struct.pack("<Q", fingerprint)


def check_header(payload: bytes, fingerprint: int) -> None:
  """§9: the magic, then the expected fingerprint, else `Decode` naming what was found."""
  if payload[:2] != L.SOE_MAGIC:
    raise Decode(f"payload has magic {payload[:2].hex()}, expected c301")
  if len(payload) < L.SOE_HEADER_LEN:
    raise Decode(f"payload of {len(payload)} bytes is shorter than its header")
  found = struct.unpack_from("<Q", payload, 2)[0]
  if found != fingerprint:
    raise Decode(f"payload has fingerprint {found:016x}, expected {fingerprint:016x}")


class Codec:
  """Encodes and decodes records of one schema as SOE payloads with the broker's fingerprint."""

  def __init__(self, schema: SchemaLike, fingerprint: int) -> None:
    self.parsed = parse(schema)
    self.fingerprint = fingerprint
    self.header = header(fingerprint)

  def encode_datum(self, record: Any) -> bytes:
    out = io.BytesIO()
    try:
      fastavro.schemaless_writer(out, self.parsed, record)
    except Exception as e:
      raise self._invalid(record, e) from None
    return out.getvalue()

  def encode(self, record: Any) -> bytes:
    return self.header + self.encode_datum(record)

  def decode(self, payload: bytes) -> Any:
    check_header(payload, self.fingerprint)
    data = io.BytesIO(payload)
    data.seek(L.SOE_HEADER_LEN)
    try:
      record = fastavro.schemaless_reader(data, self.parsed, None)
    except Exception as e:
      raise Decode(f"payload does not decode with its schema: {e}") from None
    if data.tell() != len(payload):
      raise Decode(f"payload has {len(payload) - data.tell()} bytes left over after the datum")
    return record

  def _invalid(self, record: Any, cause: Exception) -> InvalidRecord:
    try:
      validate(record, self.parsed, raise_errors=True)
    except ValidationError as e:
      errors = getattr(e, "errors", None) or []
      field = str(getattr(errors[0], "field", "")) if errors else ""
      return InvalidRecord(f"record does not match its schema: {e}", field)
    except Exception:
      pass
    return InvalidRecord(f"record does not match its schema: {cause}")
