"""Sealed access keys (spec/bootstrap.md §5.5): the app's X25519 key pair of a registration, the session
secret it shares with the broker, and the keystream an access key is XORed with before it is written
into the control segment. X25519 comes from the native extension, HMAC-SHA256 from the stdlib.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from ._native import X25519_BASEPOINT, x25519
from .errors import Protocol

KEY_LEN = 32
"""Bytes of an X25519 private key, public key and shared secret, and of the session secret."""

_SESSION_LABEL = b"impulse-ring session v1"
_KEY_LABEL = b"impulse-ring key v1"
_BLOCK = struct.Struct("<qI")  # request_id as i64 LE, block index as u32 LE


class KeyPair:
  """An ephemeral X25519 key pair, made for one registration and dropped once the session is derived."""

  __slots__ = ("_private", "public")

  def __init__(self, private: bytes | None = None) -> None:
    """A fresh pair from the kernel's random bytes, or the pair of a given `private` key (tests)."""
    self._private = os.urandom(KEY_LEN) if private is None else private
    self.public = x25519(self._private, X25519_BASEPOINT)

  def session(self, broker_public: bytes) -> bytes:
    """The session secret shared with the broker whose `Registered` carried `broker_public`.

    Raises `Protocol` when that key is not 32 bytes or is a point of small order (the shared secret
    is then all zero, and anyone could compute it)."""
    if len(broker_public) != KEY_LEN:
      raise Protocol(f"the broker's Registered carries a {len(broker_public)}-byte public_key, not {KEY_LEN} bytes")
    shared = x25519(self._private, broker_public)
    if not any(shared):
      raise Protocol("the broker's Registered carries a public_key of small order (the shared secret is all zero)")
    return session_secret(shared, self.public, broker_public)


def session_secret(shared: bytes, app_public: bytes, broker_public: bytes) -> bytes:
  """`HMAC-SHA256(shared, "impulse-ring session v1" ‖ app public key ‖ broker public key)`."""
  return hmac.new(shared, _SESSION_LABEL + app_public + broker_public, hashlib.sha256).digest()


def seal(session: bytes, request_id: int, key: bytes) -> bytes:
  """`key` XORed with the keystream of `request_id` under `session`; the same call unseals.

  block(j) = HMAC-SHA256(session, "impulse-ring key v1" ‖ request_id i64 LE ‖ j u32 LE), and the
  keystream is block(0) ‖ block(1) ‖ ... cut to the key's length (an empty key stays empty)."""
  stream = bytearray()
  j = 0
  while len(stream) < len(key):
    stream += hmac.new(session, _KEY_LABEL + _BLOCK.pack(request_id, j), hashlib.sha256).digest()
    j += 1
  return bytes(k ^ s for k, s in zip(key, stream))
