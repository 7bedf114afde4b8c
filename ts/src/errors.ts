/**
 * Ring's shared error vocabulary (spec/wire-format.md §11) as TypeScript classes: one class per
 * name, each extending `RingError` and carrying the numeric `code` every connector uses. Code
 * numbers are stable, so `err.code === 6` and `err instanceof SchemaMismatch` say the same thing.
 */

/** Base class of every error the connector raises for a failed Ring operation. */
export class RingError extends Error {
  /** The shared error code (spec/wire-format.md §11); also the C library's `ir_error_e`. */
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** No broker is running in the namespace looked in (named by `namespace`). */
export class NoBroker extends RingError {
  readonly namespace: string;
  constructor(message: string, namespace = "") {
    super(1, message);
    this.namespace = namespace;
  }
}
/** The broker crashed or shut down while connected. */
export class BrokerGone extends RingError {
  constructor(message: string) {
    super(2, message);
  }
}
/** No channel has that name. */
export class UnknownChannel extends RingError {
  constructor(message: string) {
    super(3, message);
  }
}
/** No function has that name. */
export class UnknownFunction extends RingError {
  constructor(message: string) {
    super(4, message);
  }
}
/** The access key does not match the owner's. */
export class WrongKey extends RingError {
  constructor(message: string) {
    super(5, message);
  }
}
/** The presented schema's fingerprint differs from the registered one; both are kept (hex). */
export class SchemaMismatch extends RingError {
  /** The registered schema's CRC-64-AVRO fingerprint, 16 hex digits ("" when the message had none). */
  readonly expected: string;
  /** The presented schema's fingerprint, 16 hex digits. */
  readonly presented: string;
  constructor(message: string) {
    super(6, message);
    const found = /expected ([0-9a-f]{16}), (?:presented|found) ([0-9a-f]{16})/.exec(message);
    this.expected = found?.[1] ?? "";
    this.presented = found?.[2] ?? "";
  }
}
/** The schema is not JSON or not a valid Avro schema. */
export class InvalidSchema extends RingError {
  constructor(message: string) {
    super(7, message);
  }
}
/** Nothing happened within the timeout. */
export class Timeout extends RingError {
  constructor(message: string) {
    super(8, message);
  }
}
/** The other side of a call died or withdrew the function. */
export class PeerGone extends RingError {
  constructor(message: string) {
    super(9, message);
  }
}
/** The payload does not fit (the channel's or the call's limit). */
export class TooLarge extends RingError {
  constructor(message: string) {
    super(10, message);
  }
}
/** The channel, function or connection is closed. */
export class Closed extends RingError {
  constructor(message: string) {
    super(11, message);
  }
}
/** The ring is full and the operation may not wait. */
export class WouldBlock extends RingError {
  constructor(message: string) {
    super(12, message);
  }
}
/** A channel or function of that name exists. */
export class NameTaken extends RingError {
  constructor(message: string) {
    super(13, message);
  }
}
/** App slots, subscribers or links are exhausted. */
export class LimitReached extends RingError {
  constructor(message: string) {
    super(14, message);
  }
}
/** Shared memory holds values that break an invariant. */
export class Corrupt extends RingError {
  constructor(message: string) {
    super(15, message);
  }
}
/** A segment speaks another version of the wire format. */
export class VersionMismatch extends RingError {
  constructor(message: string) {
    super(16, message);
  }
}
/** The function's handler reported an error (its message is this error's). */
export class HandlerError extends RingError {
  constructor(message: string) {
    super(17, message);
  }
}
/** An argument is out of range or malformed (a record that does not fit its schema, a bad name). */
export class InvalidArgument extends RingError {
  constructor(message: string) {
    super(18, message);
  }
}
/** A payload does not decode with its schema. */
export class Decode extends RingError {
  constructor(message: string) {
    super(19, message);
  }
}
/** A broker already runs in this namespace. */
export class AlreadyRunning extends RingError {
  constructor(message: string) {
    super(20, message);
  }
}
/** An operating-system call failed. */
export class Io extends RingError {
  constructor(message: string) {
    super(21, message);
  }
}
/** A lossy subscriber fell behind: `missed` messages were lost before the next one. */
export class Lagged extends RingError {
  readonly missed: number;
  constructor(message: string, missed = 0) {
    super(22, message);
    this.missed = missed;
  }
}
/** The peer broke the control protocol; also any code this connector does not know. */
export class Protocol extends RingError {
  constructor(message: string) {
    super(23, message);
  }
}

type Simple = new (message: string) => RingError;

/** Every error class by its code, in code order. */
export const ERROR_CLASSES: ReadonlyMap<number, Simple> = new Map<number, Simple>([
  [1, NoBroker],
  [2, BrokerGone],
  [3, UnknownChannel],
  [4, UnknownFunction],
  [5, WrongKey],
  [6, SchemaMismatch],
  [7, InvalidSchema],
  [8, Timeout],
  [9, PeerGone],
  [10, TooLarge],
  [11, Closed],
  [12, WouldBlock],
  [13, NameTaken],
  [14, LimitReached],
  [15, Corrupt],
  [16, VersionMismatch],
  [17, HandlerError],
  [18, InvalidArgument],
  [19, Decode],
  [20, AlreadyRunning],
  [21, Io],
  [22, Lagged],
  [23, Protocol],
]);

/** The error for a code and its message; an unknown code is reported as `Protocol`, as §11 says. */
export function errorFor(code: number, message: string): RingError {
  const found = ERROR_CLASSES.get(code);
  if (found === undefined) return new Protocol(`unknown error code ${code}: ${message}`);
  return new found(message);
}
