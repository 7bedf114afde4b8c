//! One error enum per operation: each names only what can go wrong there, with the variant names and
//! codes every connector shares, so a `match` on a `SubscribeError` is exhaustive and short. Each
//! converts to and from the crate-wide [`Error`] (so `?` works across operations); a kind that an
//! operation does not expect arrives as its `Other` variant.

use std::time::Duration;

use crate::error::Error;
use impulse_ring_core::error_code::ErrorCode;

macro_rules! op_error {
  ($(#[$doc:meta])* $name:ident { $($variant:ident { $($field:ident : $ty:ty),* }),* $(,)? }) => {
    $(#[$doc])*
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum $name {
      $(
        #[doc = concat!("See [`Error::", stringify!($variant), "`].")]
        #[allow(missing_docs)]
        $variant { $($field: $ty),* },
      )*
      /// A kind this operation does not expect (a broken invariant or an unexpected reply).
      Other {
        /// The error.
        error: Box<Error>,
      },
    }

    impl From<Error> for $name {
      fn from(error: Error) -> $name {
        match error {
          $(Error::$variant { $($field),* } => $name::$variant { $($field),* },)*
          other => $name::Other { error: Box::new(other) },
        }
      }
    }

    impl From<$name> for Error {
      fn from(error: $name) -> Error {
        match error {
          $($name::$variant { $($field),* } => Error::$variant { $($field),* },)*
          $name::Other { error } => *error,
        }
      }
    }

    impl std::fmt::Display for $name {
      fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&Error::from(self.clone()), f)
      }
    }

    impl std::error::Error for $name {}

    impl $name {
      /// The error code shared by every connector.
      pub fn code(&self) -> ErrorCode {
        Error::from(self.clone()).code()
      }
    }
  };
}

op_error! {
  /// Why [`crate::Connection::connect`] failed.
  ConnectError {
    NoBroker { ns: String },
    BrokerGone { ns: String },
    InvalidArgument { message: String },
    LimitReached { message: String },
    VersionMismatch { message: String },
    Corrupt { message: String },
    Io { message: String },
    Timeout { what: String, after: Duration },
    Protocol { message: String },
  }
}

op_error! {
  /// Why [`crate::Connection::list`] failed.
  ListError {
    BrokerGone { ns: String },
    Timeout { what: String, after: Duration },
    Closed { what: String },
    Protocol { message: String },
  }
}

op_error! {
  /// Why [`crate::Connection::describe`] failed.
  DescribeError {
    UnknownChannel { message: String },
    BrokerGone { ns: String },
    Timeout { what: String, after: Duration },
    Closed { what: String },
    Protocol { message: String },
  }
}

op_error! {
  /// Why [`crate::Connection::publish_channel`] failed.
  PublishChannelError {
    InvalidSchema { message: String },
    NameTaken { message: String },
    InvalidArgument { message: String },
    BrokerGone { ns: String },
    Timeout { what: String, after: Duration },
    Closed { what: String },
    Corrupt { message: String },
    VersionMismatch { message: String },
    Io { message: String },
  }
}

op_error! {
  /// Why a [`crate::Publisher`] could not publish.
  PublishError {
    TooLarge { what: String, size: usize, max: usize },
    WouldBlock { channel: String },
    Timeout { what: String, after: Duration },
    Decode { message: String },
    Corrupt { message: String },
  }
}

op_error! {
  /// Why [`crate::Connection::subscribe`] failed.
  SubscribeError {
    UnknownChannel { message: String },
    WrongKey { message: String },
    SchemaMismatch { message: String, expected: u64, presented: u64 },
    InvalidSchema { message: String },
    LimitReached { message: String },
    Closed { what: String },
    BrokerGone { ns: String },
    Timeout { what: String, after: Duration },
    Corrupt { message: String },
    VersionMismatch { message: String },
    Io { message: String },
  }
}

op_error! {
  /// Why a [`crate::Subscriber`] could not receive.
  RecvError {
    Closed { what: String },
    Lagged { missed: u64 },
    BrokerGone { ns: String },
    Decode { message: String },
    Corrupt { message: String },
  }
}

op_error! {
  /// Why [`crate::Connection::expose_function`] failed.
  ExposeError {
    InvalidSchema { message: String },
    NameTaken { message: String },
    InvalidArgument { message: String },
    BrokerGone { ns: String },
    Timeout { what: String, after: Duration },
    Closed { what: String },
  }
}

op_error! {
  /// Why a call failed.
  CallError {
    UnknownFunction { message: String },
    WrongKey { message: String },
    SchemaMismatch { message: String, expected: u64, presented: u64 },
    InvalidSchema { message: String },
    Timeout { what: String, after: Duration },
    PeerGone { message: String },
    TooLarge { what: String, size: usize, max: usize },
    HandlerError { message: String },
    Decode { message: String },
    BrokerGone { ns: String },
    Closed { what: String },
    Corrupt { message: String },
    VersionMismatch { message: String },
    Io { message: String },
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn operation_errors_keep_kind_code_and_message_both_ways() {
    let error = Error::SchemaMismatch { message: "mismatch".into(), expected: 1, presented: 2 };
    let subscribe = SubscribeError::from(error.clone());
    assert!(matches!(subscribe, SubscribeError::SchemaMismatch { expected: 1, presented: 2, .. }));
    assert_eq!(subscribe.code(), ErrorCode::SchemaMismatch);
    assert_eq!(subscribe.to_string(), error.to_string());
    assert_eq!(Error::from(subscribe), error);
    let unexpected = PublishError::from(Error::NoBroker { ns: "x".into() });
    assert!(matches!(unexpected, PublishError::Other { .. }));
    assert_eq!(unexpected.code(), ErrorCode::NoBroker);
  }
}
