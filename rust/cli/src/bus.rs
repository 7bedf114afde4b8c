//! What every verb that talks to a broker shares: connecting, how failures end the run, and JSON output.

use impulse_ring_connector::{ConnectOptions, Connection, Error};

use crate::args::Bus;

/// How a verb fails: a runtime failure exits with 1, bad input with 2.
pub enum Failure {
  Runtime(String),
  BadInput(String),
}

/// Any connector error is a runtime failure, except those that say the input was wrong.
impl<E: Into<Error>> From<E> for Failure {
  fn from(e: E) -> Failure {
    let e: Error = e.into();
    match e {
      Error::InvalidSchema { .. } | Error::InvalidArgument { .. } | Error::SchemaMismatch { .. } => {
        Failure::BadInput(format!("{}: {e}", e.code().name()))
      }
      _ => Failure::Runtime(format!("{}: {e}", e.code().name())),
    }
  }
}

pub type Outcome = Result<(), Failure>;

/// Connects to the bus of `bus.ns` as `app`.
pub fn connect(bus: &Bus, app: &str) -> Result<Connection, Failure> {
  let options = ConnectOptions { namespace: bus.ns.clone(), ..ConnectOptions::default() };
  Ok(Connection::connect_with(app, options)?)
}

/// Prints one JSON value on a line.
pub fn print_json(value: &serde_json::Value) {
  println!("{value}");
}

/// A fingerprint as Ring prints them.
pub fn hex(fingerprint: i64) -> String {
  impulse_ring_core::avro::fingerprint_hex(fingerprint as u64)
}
