//! The error codes every connector shares: the `code` of a `Failed` or `CallError` control record,
//! the C `ir_error_e` values, the Go sentinels and the Python and TypeScript error classes.
//! Codes are stable: never renumber one, only append.

use std::fmt;

/// A shared error code. The numeric value travels on the wire (Avro `int`) and is the same in every
/// language; 0 is never a valid code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum ErrorCode {
  /// No broker is running in the namespace the app looked in.
  NoBroker = 1,
  /// The broker was running but is gone (crashed or shut down).
  BrokerGone = 2,
  /// No channel has the requested name or id.
  UnknownChannel = 3,
  /// No function has the requested name or id.
  UnknownFunction = 4,
  /// The access key presented does not match the one the owner set.
  WrongKey = 5,
  /// The schema presented has another fingerprint than the one registered.
  SchemaMismatch = 6,
  /// The schema JSON is not valid JSON or not a valid Avro schema.
  InvalidSchema = 7,
  /// The operation did not complete in the allotted time.
  Timeout = 8,
  /// The other side of a link or channel died.
  PeerGone = 9,
  /// The payload is larger than the ring's maximum payload.
  TooLarge = 10,
  /// The channel, link or connection is closed.
  Closed = 11,
  /// The ring is full and the caller asked not to wait.
  WouldBlock = 12,
  /// The name is already used by another channel or function.
  NameTaken = 13,
  /// A limit (slots, channels, subscribers, links) is reached.
  LimitReached = 14,
  /// Shared memory holds values that break an invariant.
  Corrupt = 15,
  /// The segment or protocol version differs from the one this side speaks.
  VersionMismatch = 16,
  /// The function's handler returned an error.
  HandlerError = 17,
  /// An argument is out of range or malformed.
  InvalidArgument = 18,
  /// A payload could not be decoded with its schema.
  Decode = 19,
  /// A broker already runs in this namespace.
  AlreadyRunning = 20,
  /// An operating-system call failed.
  Io = 21,
  /// A lossy subscriber fell behind and missed messages.
  Lagged = 22,
  /// The peer broke the control protocol (unexpected or malformed record).
  Protocol = 23,
}

impl ErrorCode {
  /// Every code, in numeric order.
  pub const ALL: [ErrorCode; 23] = [
    ErrorCode::NoBroker,
    ErrorCode::BrokerGone,
    ErrorCode::UnknownChannel,
    ErrorCode::UnknownFunction,
    ErrorCode::WrongKey,
    ErrorCode::SchemaMismatch,
    ErrorCode::InvalidSchema,
    ErrorCode::Timeout,
    ErrorCode::PeerGone,
    ErrorCode::TooLarge,
    ErrorCode::Closed,
    ErrorCode::WouldBlock,
    ErrorCode::NameTaken,
    ErrorCode::LimitReached,
    ErrorCode::Corrupt,
    ErrorCode::VersionMismatch,
    ErrorCode::HandlerError,
    ErrorCode::InvalidArgument,
    ErrorCode::Decode,
    ErrorCode::AlreadyRunning,
    ErrorCode::Io,
    ErrorCode::Lagged,
    ErrorCode::Protocol,
  ];

  /// The code with this wire value, or `None` for a value no code has (0, negative, or newer than us).
  pub fn from_i32(value: i32) -> Option<ErrorCode> {
    let index = usize::try_from(value).ok()?.checked_sub(1)?;
    ErrorCode::ALL.get(index).copied()
  }

  /// The wire value.
  pub fn as_i32(self) -> i32 {
    self as i32
  }

  /// The variant name, as every connector spells it (`SchemaMismatch`).
  pub fn name(self) -> &'static str {
    match self {
      ErrorCode::NoBroker => "NoBroker",
      ErrorCode::BrokerGone => "BrokerGone",
      ErrorCode::UnknownChannel => "UnknownChannel",
      ErrorCode::UnknownFunction => "UnknownFunction",
      ErrorCode::WrongKey => "WrongKey",
      ErrorCode::SchemaMismatch => "SchemaMismatch",
      ErrorCode::InvalidSchema => "InvalidSchema",
      ErrorCode::Timeout => "Timeout",
      ErrorCode::PeerGone => "PeerGone",
      ErrorCode::TooLarge => "TooLarge",
      ErrorCode::Closed => "Closed",
      ErrorCode::WouldBlock => "WouldBlock",
      ErrorCode::NameTaken => "NameTaken",
      ErrorCode::LimitReached => "LimitReached",
      ErrorCode::Corrupt => "Corrupt",
      ErrorCode::VersionMismatch => "VersionMismatch",
      ErrorCode::HandlerError => "HandlerError",
      ErrorCode::InvalidArgument => "InvalidArgument",
      ErrorCode::Decode => "Decode",
      ErrorCode::AlreadyRunning => "AlreadyRunning",
      ErrorCode::Io => "Io",
      ErrorCode::Lagged => "Lagged",
      ErrorCode::Protocol => "Protocol",
    }
  }

  /// A short lower-case description, shared by `ir_strerror` and the other connectors.
  pub fn description(self) -> &'static str {
    match self {
      ErrorCode::NoBroker => "no broker is running",
      ErrorCode::BrokerGone => "the broker is gone",
      ErrorCode::UnknownChannel => "unknown channel",
      ErrorCode::UnknownFunction => "unknown function",
      ErrorCode::WrongKey => "wrong access key",
      ErrorCode::SchemaMismatch => "schema mismatch",
      ErrorCode::InvalidSchema => "invalid schema",
      ErrorCode::Timeout => "timed out",
      ErrorCode::PeerGone => "the peer is gone",
      ErrorCode::TooLarge => "payload too large",
      ErrorCode::Closed => "closed",
      ErrorCode::WouldBlock => "the ring is full",
      ErrorCode::NameTaken => "name already taken",
      ErrorCode::LimitReached => "limit reached",
      ErrorCode::Corrupt => "shared memory is corrupt",
      ErrorCode::VersionMismatch => "version mismatch",
      ErrorCode::HandlerError => "the handler failed",
      ErrorCode::InvalidArgument => "invalid argument",
      ErrorCode::Decode => "payload does not decode with its schema",
      ErrorCode::AlreadyRunning => "a broker is already running in this namespace",
      ErrorCode::Io => "i/o error",
      ErrorCode::Lagged => "the subscriber lagged and missed messages",
      ErrorCode::Protocol => "control protocol violation",
    }
  }
}

impl fmt::Display for ErrorCode {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(self.description())
  }
}

impl From<ErrorCode> for i32 {
  fn from(code: ErrorCode) -> i32 {
    code as i32
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn from_i32_round_trips_every_code_and_rejects_others() {
    for (i, code) in ErrorCode::ALL.iter().enumerate() {
      assert_eq!(code.as_i32(), i as i32 + 1);
      assert_eq!(ErrorCode::from_i32(code.as_i32()), Some(*code));
    }
    for bad in [0, -1, 24, i32::MIN, i32::MAX] {
      assert_eq!(ErrorCode::from_i32(bad), None);
    }
  }
}
