"""Sealed access keys against a live broker (spec/bootstrap.md §5.5): keys never reach the control
segment in clear, str keys are their UTF-8 bytes, every registration has its own key pair, and a
`Registered` with a public key an app must refuse fails the connection with `Protocol`. (The broker
scrubs the requests it reads, so the tests watch what the app writes, not the ring afterwards.)"""

from __future__ import annotations

import os

import pytest
from test_seal import REFUSE

from impulse_ring import Connection, Protocol, WrongKey, _control, _seal
from impulse_ring import _layout as L
from impulse_ring._ring import Ring

SCHEMA = '"long"'
REQ = {"type": "record", "name": "AddRequest", "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "long"}]}
RESP = {"type": "record", "name": "AddResponse", "fields": [{"name": "sum", "type": "long"}]}


def add(r: dict) -> dict:
  return {"sum": r["a"] + r["b"]}


def test_every_key_is_written_into_the_request_ring_sealed(ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
  key = f"clé-{os.urandom(8).hex()}"
  clear = key.encode()
  written: list[tuple[object, bytes]] = []  # (the control segment written into, the record)
  try_write = Ring.try_write

  def watch(ring: Ring, kind: int, seq: int, payload: bytes) -> bool:
    if kind == L.FRAME_KIND_CONTROL:
      written.append((ring.segment, bytes(payload)))
    return try_write(ring, kind, seq, payload)

  monkeypatch.setattr(Ring, "try_write", watch)
  with Connection.connect("provider") as provider, Connection.connect("client") as client:
    pub = provider.publish_channel("keyed", SCHEMA, key=key)
    sub = client.subscribe("keyed", SCHEMA, key=key)
    provider.expose_function("add", REQ, RESP, add, key=key)
    assert client.call("add", {"a": 2, "b": 3}, REQ, RESP, key=key) == {"sum": 5}
    sessions = {id(conn._control): conn._ctl.session for conn in (provider, client)}
    sub.close()
    pub.close()
  assert not any(clear in payload for _, payload in written)
  keyed = []
  for segment, payload in written:
    name, fields = _control.decode(payload)
    if fields.get("key") is not None:
      keyed.append((name, fields, sessions[id(segment)]))
  assert [name for name, _, _ in keyed] == ["PublishChannel", "Subscribe", "ExposeFunction", "ResolveFunction"]
  for name, fields, session in keyed:
    assert fields["key"] == _seal.seal(session, fields["request_id"], clear), name
  assert len({fields["key"] for _, fields, _ in keyed}) == 4


def test_a_str_key_is_its_utf8_bytes(ns: str) -> None:
  with Connection.connect("provider") as provider, Connection.connect("client") as client:
    pub = provider.publish_channel("accents", SCHEMA, key="clé")
    client.subscribe("accents", SCHEMA, key="clé".encode()).close()
    with pytest.raises(WrongKey):
      client.subscribe("accents", SCHEMA, key="clé".encode("latin-1"))
    raw = b"\xff\x00k"  # not UTF-8: only a bytes key can present it
    provider.expose_function("raw", REQ, RESP, add, key=raw)
    with pytest.raises(WrongKey):
      client.call("raw", {"a": 1, "b": 2}, REQ, RESP, key="\xff\x00k")
    assert client.call("raw", {"a": 1, "b": 2}, REQ, RESP, key=raw) == {"sum": 3}
    pub.close()


def test_an_empty_key_is_a_key_and_not_none(ns: str) -> None:
  with Connection.connect("provider") as provider, Connection.connect("client") as client:
    pub = provider.publish_channel("open", SCHEMA)
    client.subscribe("open", SCHEMA).close()
    pub.close()
    pub = provider.publish_channel("empty", SCHEMA, key="")
    client.subscribe("empty", SCHEMA, key=b"").close()
    with pytest.raises(WrongKey):
      client.subscribe("empty", SCHEMA, key="x")
    pub.close()


def test_every_registration_has_its_own_key_pair(ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
  publics: list[bytes] = []
  sealed: list[tuple[int, bytes]] = []
  encode = _control.encode

  def watch(name: str, fields: dict) -> bytes:
    if name == "Register":
      publics.append(fields["public_key"])
    elif name == "PublishChannel":
      sealed.append((fields["request_id"], fields["key"]))
    return encode(name, fields)

  monkeypatch.setattr(_control, "encode", watch)
  sessions = []
  for _ in range(3):
    with Connection.connect("again") as conn:
      sessions.append(conn._ctl.session)
      # The same key under the same request id seals differently in each registration.
      conn.publish_channel("c", SCHEMA, key="the same key, 31 bytes long....").close()
  assert len(publics) == 3
  assert len(set(publics)) == 3
  assert all(len(p) == 32 for p in publics)
  assert len(set(sessions)) == 3
  assert [request_id for request_id, _ in sealed] == [2, 2, 2]
  assert len({key for _, key in sealed}) == 3
  assert all(len(key) == 31 for _, key in sealed)


@pytest.mark.parametrize("public", REFUSE, ids=[f"{i}-{len(p)}-bytes" for i, p in enumerate(REFUSE)])
def test_a_registered_with_a_refused_public_key_fails_the_connection(
  ns: str, monkeypatch: pytest.MonkeyPatch, public: bytes
) -> None:
  decode = _control.decode

  def tamper(payload: bytes) -> tuple[str, dict]:
    # As a process that rewrote the reply in the ring would: the broker's public key replaced.
    name, fields = decode(payload)
    if name == "Registered":
      fields["public_key"] = public
    return name, fields

  with monkeypatch.context() as patch:
    patch.setattr(_control, "decode", tamper)
    for _ in range(3):  # each refused registration gives its slot back
      with pytest.raises(Protocol, match="public_key"):
        Connection.connect("victim")
  with Connection.connect("after") as conn:
    assert [app["name"] for app in conn.list()["apps"]] == ["after"]
