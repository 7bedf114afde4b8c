"""Ring's Python connector: channels (publish/subscribe) and functions (calls) over POSIX shared
memory, with Avro payloads. The protocol is pure Python over `mmap`, following spec/; a tiny native
extension provides atomics and futex waits.

    with Connection.connect("sensor") as conn:
      publisher = conn.publish_channel("metrics", schema)
      publisher.publish({"name": "cpu", "value": 0.5})
"""

from __future__ import annotations

from ._connection import Connection, Function, Monitor, resolve_namespace
from .channel import Publisher, Subscriber
from .errors import (
  ERRORS,
  AlreadyRunning,
  BrokerGone,
  Closed,
  Corrupt,
  Decode,
  HandlerError,
  InvalidArgument,
  InvalidRecord,
  InvalidSchema,
  Io,
  Lagged,
  LimitReached,
  NameTaken,
  NoBroker,
  PeerGone,
  Protocol,
  RingError,
  SchemaMismatch,
  Timeout,
  TooLarge,
  UnknownChannel,
  UnknownFunction,
  VersionMismatch,
  WouldBlock,
  WrongKey,
  error_for_code,
)

__all__ = [
  "ERRORS",
  "AlreadyRunning",
  "BrokerGone",
  "Closed",
  "Connection",
  "Corrupt",
  "Decode",
  "Function",
  "HandlerError",
  "InvalidArgument",
  "InvalidRecord",
  "InvalidSchema",
  "Io",
  "Lagged",
  "LimitReached",
  "Monitor",
  "NameTaken",
  "NoBroker",
  "PeerGone",
  "Protocol",
  "Publisher",
  "RingError",
  "SchemaMismatch",
  "Subscriber",
  "Timeout",
  "TooLarge",
  "UnknownChannel",
  "UnknownFunction",
  "VersionMismatch",
  "WouldBlock",
  "WrongKey",
  "error_for_code",
  "resolve_namespace",
]
