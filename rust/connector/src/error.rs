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
  /// header); a provider's oversized response arrives as this too.
  #[error("{message}")]
  TooLarge {
    /// Both sizes, or the provider's explanation.
    message: String,
  },
  /// The channel was closed by its publisher (or the publisher died).
  #[error("channel `{channel}` is closed")]
  Closed {
    /// The channel.
    channel: String,
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
  Handler {
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
      Error::Handler { .. } => ErrorCode::HandlerError,
      Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
      Error::Decode { .. } => ErrorCode::Decode,
      Error::Lagged { .. } => ErrorCode::Lagged,
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
      Some(ErrorCode::TooLarge) => Error::TooLarge { message },
      Some(ErrorCode::WouldBlock) => Error::WouldBlock { channel: message },
      Some(ErrorCode::Closed) => Error::Closed { channel: message },
      Some(ErrorCode::NameTaken) => Error::NameTaken { message },
      Some(ErrorCode::LimitReached) => Error::LimitReached { message },
      Some(ErrorCode::Corrupt) => Error::Corrupt { message },
      Some(ErrorCode::VersionMismatch) => Error::VersionMismatch { message },
      Some(ErrorCode::HandlerError) => Error::Handler { message },
      Some(ErrorCode::InvalidArgument) => Error::InvalidArgument { message },
      Some(ErrorCode::Decode) => Error::Decode { message },
      Some(ErrorCode::Io) => Error::Io { message },
      _ => Error::Protocol { message: format!("error code {code}: {message}") },
    }
  }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
  /// A payload of `size` bytes where at most `max` fit.
  pub(crate) fn too_large(size: usize, max: usize) -> Error {
    Error::TooLarge { message: format!("payload of {size} bytes is larger than the maximum of {max} bytes") }
  }
}
