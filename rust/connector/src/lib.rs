//! The Rust connector of Ring: publish/subscribe channels and asynchronous function calls between
//! processes on one machine, over shared memory, with Avro payloads checked by schema fingerprint.
//!
//! ```no_run
//! use impulse_ring_connector::{Connection, PublishOptions};
//! # fn main() -> Result<(), impulse_ring_connector::Error> {
//! const METRIC: &str = r#"{"type":"record","name":"Metric","fields":[{"name":"value","type":"double"}]}"#;
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Metric { value: f64 }
//!
//! let conn = Connection::connect("my-service")?;
//! let mut publisher = conn.publish_channel("metrics", METRIC, Some("secret"), PublishOptions::default())?;
//! let mut subscriber = conn.subscribe("metrics", Some("secret"), METRIC)?;
//! publisher.publish(&Metric { value: 1.5 })?;
//! let m: Option<Metric> = subscriber.recv(std::time::Duration::from_secs(1))?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod caller;
mod channel;
mod codec;
mod connection;
mod error;
mod monitor;
mod op_error;
mod provider;
mod reactor;
mod session;
mod snapshot;

pub use caller::CallFuture;
pub use channel::{PublishOptions, Publisher, SubscribeOptions, Subscriber};
pub use connection::{ConnectOptions, Connection};
pub use error::{Error, Result};
pub use impulse_ring_core::control::{
  ChannelDescription, Description, FunctionDescription, Listing, MonitorEvent, SubscriberDescription,
};
pub use impulse_ring_core::doorbell::WaitStrategy;
pub use impulse_ring_core::error_code::ErrorCode;
pub use monitor::Monitor;
pub use op_error::{
  CallError, ConnectError, DescribeError, ExposeError, ListError, PublishChannelError, PublishError, RecvError,
  SubscribeError,
};
pub use provider::{Function, RawHandler};
