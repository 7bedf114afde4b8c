"""Sealed access keys (spec/bootstrap.md §5.5) against spec/vectors/sealing.txt, without a broker: the
native X25519, the session secret, every sealed key, every public key an app must refuse; and the
argument checks of the extension's `x25519`."""

from __future__ import annotations

import re

import pytest
from conftest import SPEC

from impulse_ring import Protocol, _seal
from impulse_ring._native import X25519_BASEPOINT, x25519


def sealing_vectors() -> tuple[dict[str, bytes], list[tuple[int, bytes | None, bytes | None]], list[bytes]]:
  named: dict[str, bytes] = {}
  seals: list[tuple[int, bytes | None, bytes | None]] = []
  refuse: list[bytes] = []
  hex_or_none = lambda h: None if h == "-" else bytes.fromhex(h)  # noqa: E731
  for line in (SPEC / "vectors/sealing.txt").read_text().splitlines():
    if not line or line.startswith("#"):
      continue
    if m := re.fullmatch(r"(\w+): ([0-9a-f]+)", line):
      named[m.group(1)] = bytes.fromhex(m.group(2))
    elif m := re.fullmatch(r"seal (-?\d+) (-|[0-9a-f]*) (-|[0-9a-f]*)", line):
      seals.append((int(m.group(1)), hex_or_none(m.group(2)), hex_or_none(m.group(3))))
    elif m := re.fullmatch(r"refuse ([0-9a-f]*)", line):
      refuse.append(bytes.fromhex(m.group(1)))
    else:
      raise AssertionError(f"sealing.txt has a line this test does not know: {line!r}")
  return named, seals, refuse


NAMED, SEALS, REFUSE = sealing_vectors()


def test_sealing_vectors_are_found() -> None:
  assert set(NAMED) == {"app_private", "app_public", "broker_private", "broker_public", "session"}
  assert len(SEALS) >= 5
  assert any(key is not None and len(key) > 64 for _, key, _ in SEALS)  # past two keystream blocks
  assert any(key is None for _, key, _ in SEALS)
  assert len(REFUSE) >= 2


def test_both_public_keys_derive_from_the_fixed_private_keys() -> None:
  assert x25519(NAMED["app_private"], X25519_BASEPOINT) == NAMED["app_public"]
  assert x25519(NAMED["broker_private"], X25519_BASEPOINT) == NAMED["broker_public"]
  assert _seal.KeyPair(NAMED["app_private"]).public == NAMED["app_public"]


def test_both_sides_derive_the_vector_session() -> None:
  assert _seal.KeyPair(NAMED["app_private"]).session(NAMED["broker_public"]) == NAMED["session"]
  # The broker's side: the same shared secret from the other pair, the same order of public keys.
  shared = x25519(NAMED["broker_private"], NAMED["app_public"])
  assert _seal.session_secret(shared, NAMED["app_public"], NAMED["broker_public"]) == NAMED["session"]


@pytest.mark.parametrize(("request_id", "key", "sealed"), SEALS, ids=[f"{i}-id{v[0]}" for i, v in enumerate(SEALS)])
def test_a_key_seals_to_the_vector_bytes_and_unseals_back(request_id: int, key: bytes | None, sealed: bytes | None):
  if key is None:
    # No key travels as null: nothing to seal, and the record carries no bytes.
    assert sealed is None
    return
  assert _seal.seal(NAMED["session"], request_id, key) == sealed
  assert _seal.seal(NAMED["session"], request_id, sealed) == key


def test_the_keystream_depends_on_the_request_id_and_the_session() -> None:
  key = b"s3cret"
  sealed = {_seal.seal(NAMED["session"], rid, key) for rid in (1, 2, -1, 1 << 40)}
  assert len(sealed) == 4
  assert _seal.seal(bytes(32), 1, key) != _seal.seal(NAMED["session"], 1, key)
  assert _seal.seal(NAMED["session"], 5, b"") == b""


@pytest.mark.parametrize("public", REFUSE, ids=[f"{i}-{len(p)}-bytes" for i, p in enumerate(REFUSE)])
def test_a_registered_with_a_refused_public_key_is_a_protocol_error(public: bytes) -> None:
  with pytest.raises(Protocol, match="public_key"):
    _seal.KeyPair(NAMED["app_private"]).session(public)


def test_points_of_small_order_are_refused_whatever_the_private_key() -> None:
  # u = 1 has order 4, and 2^255 - 19 + 1 is the same point unreduced; both give an all-zero secret.
  one = (1).to_bytes(32, "little")
  p_plus_one = ((1 << 255) - 19 + 1).to_bytes(32, "little")
  for public in (one, p_plus_one):
    for _ in range(4):
      with pytest.raises(Protocol, match="small order"):
        _seal.KeyPair().session(public)


def test_every_key_pair_is_fresh() -> None:
  publics = {_seal.KeyPair().public for _ in range(8)}
  assert len(publics) == 8
  assert all(len(p) == 32 for p in publics)


def test_x25519_refuses_arguments_that_are_not_32_bytes() -> None:
  good = NAMED["app_private"]
  for bad in (b"", good[:31], good + b"\0"):
    with pytest.raises(ValueError, match=f"32 bytes, not {len(bad)}"):
      x25519(bad, X25519_BASEPOINT)
    with pytest.raises(ValueError, match=f"32 bytes, not {len(bad)}"):
      x25519(good, bad)


def test_x25519_matches_rfc_7748_section_5_2() -> None:
  # The first test vector of RFC 7748 §5.2 (not in sealing.txt): an unclamped scalar, a u with its top bit set.
  scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
  u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
  assert x25519(scalar, u).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
