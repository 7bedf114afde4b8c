//! The connector's errors. One enum, the same case names as every other connector (C `ir_error_e`,
//! Go sentinels, Python exception classes, TS error classes), each with the facts a user needs.

use std::time::Duration;

use impulse_ring_core::avro::fingerprint_hex;
use impulse_ring_core::error_code::ErrorCode;

/// Everything that can go wrong talking to the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
  /// No broker serves the namespace.
  #[error("no broker is running in namespace `{ns}` (start one with `impulsed --ns {ns}`)")]
  NoBroker {
    /// The namespace that was looked in.
    ns: String,
  },
  /// The broker died or shut down while the app was connected.
  #[error("the broker of namespace `{ns}` is gone")]
  BrokerGone {
    /// The namespace.
    ns: String,
  },
  /// No channel of that name is published.
  #[error("{message}")]
  UnknownChannel {
    /// The broker's explanation.
    message: String,
  },
  /// No function of that name is exposed.
  #[error("{message}")]
  UnknownFunction {
    /// The broker's explanation.
    message: String,
  },
  /// The access key is missing or wrong.
  #[error("{message}")]
  WrongKey {
    /// The broker's explanation.
    message: String,
  },
  /// The presented schema is not the one the channel or function uses.
  #[error("{message} (expected {}, presented {})", fingerprint_hex(*expected), fingerprint_hex(*presented))]
  SchemaMismatch {
    /// The broker's explanation.
    message: String,
    /// Fingerprint of the channel's or function's schema.
    expected: u64,
    /// Fingerprint of the schema that was presented.
    presented: u64,
  },
  /// The schema JSON does not parse or is not a valid Avro schema.
  #[error("{message}")]
  InvalidSchema {
    /// What was wrong.
    message: String,
  },
  /// The operation did not complete in time.
  #[error("{what} timed out after {after:?}")]
  Timeout {
    /// What was waited for.
    what: String,
    /// How long.
    after: Duration,
  },
  /// The other side of a call died or withdrew the function; pending calls fail with this.
  #[error("{message}")]
  PeerGone {
    /// What is gone.
    message: String,
  },
  /// The payload does not fit the channel or call link (sizes count the Single Object Encoding
  /// header). A provider's oversized response arrives as this too, with sizes of 0 when the provider
  /// reported only a message.
  #[error("{}", too_large_text(what, *size, *max))]
  TooLarge {
    /// What was too large ("payload", or the provider's explanation).
    what: String,
    /// Its size in bytes, or 0 when unknown.
    size: usize,
    /// The largest size that fits, or 0 when unknown.
    max: usize,
  },
  /// The channel (or connection) was closed: by its publisher, or because the publisher died.
  #[error("{what} is closed")]
  Closed {
    /// What is closed: "channel `readings`", "the connection".
    what: String,
  },
  /// The channel is full and the call was not allowed to wait.
  #[error("channel `{channel}` is full: a subscriber is a whole ring behind")]
  WouldBlock {
    /// The channel.
    channel: String,
  },
  /// A channel or function of that name exists already.
  #[error("{message}")]
  NameTaken {
    /// The broker's explanation.
    message: String,
  },
  /// A fixed limit is reached (app slots, subscribers per channel).
  #[error("{message}")]
  LimitReached {
    /// Which limit.
    message: String,
  },
  /// Shared memory holds impossible values.
  #[error("{message}")]
  Corrupt {
    /// What was wrong.
    message: String,
  },
  /// The segment was written by another version of the wire format.
  #[error("{message}")]
  VersionMismatch {
    /// Both versions.
    message: String,
  },
  /// The remote handler returned an error.
  #[error("the handler failed: {message}")]
  HandlerError {
    /// The handler's message.
    message: String,
  },
  /// An argument is out of range.
  #[error("{message}")]
  InvalidArgument {
    /// What was wrong.
    message: String,
  },
  /// A payload could not be encoded or decoded with its schema.
  #[error("{message}")]
  Decode {
    /// What was wrong.
    message: String,
  },
  /// A lossy subscriber fell behind and lost messages.
  #[error("the subscriber fell behind and missed {missed} messages")]
  Lagged {
    /// How many.
    missed: u64,
  },
  /// A broker already runs in the namespace (reported by a broker that is asked to start).
  #[error("{message}")]
  AlreadyRunning {
    /// The broker's explanation.
    message: String,
  },
  /// A system call failed.
  #[error("{message}")]
  Io {
    /// What failed.
    message: String,
  },
  /// The peer broke the protocol.
  #[error("protocol error: {message}")]
  Protocol {
    /// What was wrong.
    message: String,
  },
}

impl Error {
  /// The error code shared by every connector.
  pub fn code(&self) -> ErrorCode {
    match self {
      Error::NoBroker { .. } => ErrorCode::NoBroker,
      Error::BrokerGone { .. } => ErrorCode::BrokerGone,
      Error::UnknownChannel { .. } => ErrorCode::UnknownChannel,
      Error::UnknownFunction { .. } => ErrorCode::UnknownFunction,
      Error::WrongKey { .. } => ErrorCode::WrongKey,
      Error::SchemaMismatch { .. } => ErrorCode::SchemaMismatch,
      Error::InvalidSchema { .. } => ErrorCode::InvalidSchema,
      Error::Timeout { .. } => ErrorCode::Timeout,
      Error::PeerGone { .. } => ErrorCode::PeerGone,
      Error::TooLarge { .. } => ErrorCode::TooLarge,
      Error::Closed { .. } => ErrorCode::Closed,
      Error::WouldBlock { .. } => ErrorCode::WouldBlock,
      Error::NameTaken { .. } => ErrorCode::NameTaken,
      Error::LimitReached { .. } => ErrorCode::LimitReached,
      Error::Corrupt { .. } => ErrorCode::Corrupt,
      Error::VersionMismatch { .. } => ErrorCode::VersionMismatch,
      Error::HandlerError { .. } => ErrorCode::HandlerError,
      Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
      Error::Decode { .. } => ErrorCode::Decode,
      Error::Lagged { .. } => ErrorCode::Lagged,
      Error::AlreadyRunning { .. } => ErrorCode::AlreadyRunning,
      Error::Io { .. } => ErrorCode::Io,
      Error::Protocol { .. } => ErrorCode::Protocol,
    }
  }

  /// Rebuilds an error from a code and message sent by the broker or a provider.
  pub(crate) fn from_remote(code: i32, message: String, expected: u64, presented: u64, ns: &str) -> Error {
    match ErrorCode::from_i32(code) {
      Some(ErrorCode::NoBroker) => Error::NoBroker { ns: ns.to_string() },
      Some(ErrorCode::BrokerGone) => Error::BrokerGone { ns: ns.to_string() },
      Some(ErrorCode::UnknownChannel) => Error::UnknownChannel { message },
      Some(ErrorCode::UnknownFunction) => Error::UnknownFunction { message },
      Some(ErrorCode::WrongKey) => Error::WrongKey { message },
      Some(ErrorCode::SchemaMismatch) => Error::SchemaMismatch { message, expected, presented },
      Some(ErrorCode::InvalidSchema) => Error::InvalidSchema { message },
      Some(ErrorCode::Timeout) => Error::Timeout { what: message, after: Duration::ZERO },
      Some(ErrorCode::PeerGone) => Error::PeerGone { message },
      Some(ErrorCode::TooLarge) => Error::TooLarge { what: message, size: 0, max: 0 },
      Some(ErrorCode::WouldBlock) => Error::WouldBlock { channel: message },
      Some(ErrorCode::Closed) => Error::Closed { what: message },
      Some(ErrorCode::NameTaken) => Error::NameTaken { message },
      Some(ErrorCode::LimitReached) => Error::LimitReached { message },
      Some(ErrorCode::Corrupt) => Error::Corrupt { message },
      Some(ErrorCode::VersionMismatch) => Error::VersionMismatch { message },
      Some(ErrorCode::HandlerError) => Error::HandlerError { message },
      Some(ErrorCode::InvalidArgument) => Error::InvalidArgument { message },
      Some(ErrorCode::Decode) => Error::Decode { message },
      Some(ErrorCode::AlreadyRunning) => Error::AlreadyRunning { message },
      Some(ErrorCode::Io) => Error::Io { message },
      Some(ErrorCode::Lagged) => Error::Lagged { missed: 0 },
      _ => Error::Protocol { message: format!("error code {code}: {message}") },
    }
  }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
  /// A payload of `size` bytes where at most `max` fit.
  pub(crate) fn too_large(size: usize, max: usize) -> Error {
    Error::TooLarge { what: "payload".into(), size, max }
  }
}

fn too_large_text(what: &str, size: usize, max: usize) -> String {
  if size == 0 && max == 0 {
    what.to_string()
  } else {
    format!("{what} of {size} bytes is larger than the maximum of {max} bytes")
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// Every row of the shared vocabulary (spec/vectors/errors.txt) comes back from the wire as the
  /// variant of the same name and code.
  #[test]
  fn every_shared_error_code_maps_to_its_variant() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/errors.txt");
    let text = std::fs::read_to_string(path).expect("spec/vectors/errors.txt");
    let mut rows = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
      let mut parts = line.splitn(3, ' ');
      let code: i32 = parts.next().and_then(|c| c.parse().ok()).expect("a code");
      let name = parts.next().expect("a name");
      let error = Error::from_remote(code, "message".into(), 1, 2, "ns");
      assert_eq!(error.code().as_i32(), code, "{line}");
      assert_eq!(error.code().name(), name, "{line}");
      rows += 1;
    }
    assert_eq!(rows, ErrorCode::ALL.len());
    assert_eq!(Error::from_remote(0, "m".into(), 0, 0, "ns").code(), ErrorCode::Protocol);
  }
}
