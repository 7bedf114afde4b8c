"""Ring's errors: one exception class per name of spec/wire-format.md §11, all under `RingError`.

Each class carries the numeric `code` that travels on the wire and that every connector shares;
`error_for_code` turns a code from a `Failed`, `LinkClosed` or `CallError` record back into the
matching class (an unknown code is reported as `Protocol`, as §11 requires).
"""

from __future__ import annotations

from typing import ClassVar


class RingError(Exception):
  """Base of every Ring error; `code` and `name` are the shared vocabulary of spec/wire-format.md §11."""

  code: ClassVar[int] = 0
  name: ClassVar[str] = "RingError"

  def __init__(self, message: str) -> None:
    super().__init__(message)
    self.message = message


class NoBroker(RingError):
  """No broker is running in the namespace looked in (`namespace`)."""

  code = 1
  name = "NoBroker"

  def __init__(self, message: str, namespace: str = "") -> None:
    super().__init__(message)
    self.namespace = namespace


class BrokerGone(RingError):
  """The broker died or shut down; every pending and later request fails."""

  code = 2
  name = "BrokerGone"


class UnknownChannel(RingError):
  """Nobody publishes a channel of that name (or the app does not own it)."""

  code = 3
  name = "UnknownChannel"


class UnknownFunction(RingError):
  """Nobody exposes a function of that name (or the app does not own it)."""

  code = 4
  name = "UnknownFunction"


class WrongKey(RingError):
  """The access key is missing or wrong."""

  code = 5
  name = "WrongKey"


class SchemaMismatch(RingError):
  """The presented schema's fingerprint differs from the registered one; both are carried."""

  code = 6
  name = "SchemaMismatch"

  def __init__(self, message: str, expected: int = 0, presented: int = 0) -> None:
    super().__init__(message)
    self.expected = expected
    self.presented = presented


class InvalidSchema(RingError):
  """The schema text is not JSON or not a valid Avro schema."""

  code = 7
  name = "InvalidSchema"


class Timeout(RingError):
  """A control reply, a call or a blocked publish did not complete in time."""

  code = 8
  name = "Timeout"


class PeerGone(RingError):
  """The provider of a pending call died or withdrew the function."""

  code = 9
  name = "PeerGone"


class TooLarge(RingError):
  """The payload is larger than the ring's `max` payload."""

  code = 10
  name = "TooLarge"

  def __init__(self, message: str, size: int = 0, max: int = 0) -> None:
    super().__init__(message)
    self.size = size
    self.max = max


class Closed(RingError):
  """The channel is closed and everything published before the close has been read."""

  code = 11
  name = "Closed"


class WouldBlock(RingError):
  """The ring is full and the publish was asked not to wait."""

  code = 12
  name = "WouldBlock"


class NameTaken(RingError):
  """A channel or function of that name exists already."""

  code = 13
  name = "NameTaken"


class LimitReached(RingError):
  """No free app slot or subscriber slot."""

  code = 14
  name = "LimitReached"


class Corrupt(RingError):
  """Shared memory failed a validation of spec/wire-format.md."""

  code = 15
  name = "Corrupt"


class VersionMismatch(RingError):
  """A segment's version word differs from the version this connector speaks."""

  code = 16
  name = "VersionMismatch"


class HandlerError(RingError):
  """The provider's handler failed; the message is the handler's."""

  code = 17
  name = "HandlerError"


class InvalidArgument(RingError):
  """A bad namespace, name, app name, capacity or option."""

  code = 18
  name = "InvalidArgument"


class InvalidRecord(InvalidArgument, ValueError):
  """A record does not match its schema; raised before anything is written. `field` names the culprit."""

  def __init__(self, message: str, field: str = "") -> None:
    super().__init__(message)
    self.field = field


class Decode(RingError):
  """A payload does not decode with its schema (bad SOE magic or fingerprint, bad datum)."""

  code = 19
  name = "Decode"


class AlreadyRunning(RingError):
  """A broker is already running in this namespace."""

  code = 20
  name = "AlreadyRunning"


class Io(RingError):
  """A system call failed."""

  code = 21
  name = "Io"


class Lagged(RingError):
  """A lossy subscriber was lapped and `missed` messages were lost; the next receive goes on."""

  code = 22
  name = "Lagged"

  def __init__(self, message: str, missed: int = 0) -> None:
    super().__init__(message)
    self.missed = missed


class Protocol(RingError):
  """The control protocol was violated (or a peer sent a code this connector does not know)."""

  code = 23
  name = "Protocol"


ERRORS: tuple[type[RingError], ...] = (
  NoBroker,
  BrokerGone,
  UnknownChannel,
  UnknownFunction,
  WrongKey,
  SchemaMismatch,
  InvalidSchema,
  Timeout,
  PeerGone,
  TooLarge,
  Closed,
  WouldBlock,
  NameTaken,
  LimitReached,
  Corrupt,
  VersionMismatch,
  HandlerError,
  InvalidArgument,
  Decode,
  AlreadyRunning,
  Io,
  Lagged,
  Protocol,
)
"""Every error class, in code order (`ERRORS[code - 1].code == code`)."""

_BY_CODE = {cls.code: cls for cls in ERRORS}


def error_for_code(code: int, message: str) -> RingError:
  """The error a peer reported with `code`; a code this connector does not know is `Protocol`."""
  cls = _BY_CODE.get(code)
  if cls is None:
    return Protocol(f"unknown error code {code}: {message}")
  return cls(message)
