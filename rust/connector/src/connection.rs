//! A connection to the broker of a namespace: the public face of the layers below it. It opens the
//! session, starts the reactor, and offers calls and functions (channels add their methods in
//! `channel.rs`). It owns no protocol of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use impulse_ring_core::avro::SOE_HEADER_LEN;
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::WaitStrategy;
use impulse_ring_core::names;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::caller::{decode_raw, decode_typed, CallFuture, CallerLink, Callers, PendingCall};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::monitor::{Monitor, MonitorSink};
use crate::op_error::{CallError, ConnectError, DescribeError, ExposeError, ListError};
use crate::provider::{Function, Provider, RawHandler};
use crate::reactor::Reactor;
use crate::session::{unexpected, Session};

/// Options of a connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
  /// Namespace; `None` reads `IMPULSE_RING_NS` (default `impulse`).
  pub namespace: Option<String>,
  /// How the reactor thread and blocking calls wait.
  pub wait: WaitStrategy,
}

/// A connection to the bus. Cheap to share across threads (`&Connection` is `Sync`); dropping it
/// unregisters the app, which closes its channels and functions.
pub struct Connection {
  pub(crate) session: Arc<Session>,
  callers: Arc<Callers>,
  provider: Arc<Provider>,
  monitor: Arc<MonitorSink>,
  stop_reactor: Arc<AtomicBool>,
  reactor: Option<JoinHandle<()>>,
}

impl Connection {
  /// Connects as `app_name` to the broker of the namespace in `IMPULSE_RING_NS` (default `impulse`).
  pub fn connect(app_name: &str) -> Result<Connection, ConnectError> {
    Connection::connect_with(app_name, ConnectOptions::default())
  }

  /// Connects with explicit options.
  pub fn connect_with(app_name: &str, options: ConnectOptions) -> Result<Connection, ConnectError> {
    Connection::open(app_name, options).map_err(Into::into)
  }

  fn open(app_name: &str, options: ConnectOptions) -> Result<Connection> {
    let ns = options.namespace.unwrap_or_else(names::namespace_from_env);
    // Faults in Ring's mappings (a segment truncated under the app) become `Corrupt` errors instead of
    // killing the process; any other SIGBUS goes to the disposition in place before (core sigbus.rs).
    let _ = impulse_ring_core::sigbus::install();
    let session = Arc::new(Session::open(ns, options.wait)?);
    let (callers, provider) = (Arc::new(Callers::default()), Arc::new(Provider::default()));
    let monitor = Arc::new(MonitorSink::default());
    let stop_reactor = Arc::new(AtomicBool::new(false));
    let reactor = Reactor {
      session: session.clone(),
      callers: callers.clone(),
      provider: provider.clone(),
      monitor: monitor.clone(),
      stop: stop_reactor.clone(),
    };
    let spawned = std::thread::Builder::new().name("ring-reactor".into()).spawn(move || reactor.run());
    let reactor = match spawned {
      Ok(handle) => handle,
      Err(e) => {
        // Gives the claimed slot back.
        session.unregister();
        return Err(Error::Io { message: format!("cannot start the reactor thread: {e}") });
      }
    };
    // From here on, dropping the connection stops the reactor and unregisters.
    let conn = Connection { session, callers, provider, monitor, stop_reactor, reactor: Some(reactor) };
    conn.session.register(app_name)?;
    Ok(conn)
  }

  /// The namespace this connection lives in.
  pub fn namespace(&self) -> &str {
    &self.session.ns
  }

  /// This app's id on the broker (its slot index).
  pub fn app_id(&self) -> u32 {
    self.session.app_id
  }

  /// Whether the broker is gone; every further request fails with `BrokerGone`.
  pub fn broker_gone(&self) -> bool {
    self.session.broker_gone()
  }

  /// What is on the bus: apps, channels and functions, as the broker sees them.
  pub fn list(&self) -> Result<Listing, ListError> {
    let request_id = self.session.request_id();
    match self.session.request(request_id, List { request_id }.into())? {
      ControlMessage::Listing(listing) => Ok(listing),
      other => Err(unexpected("Listing", &other).into()),
    }
  }

  /// What the broker knows of the channel and the function named `name`: the schemas their owners
  /// presented, fingerprints, owner, whether a key is needed (never the key), and live figures.
  /// `UnknownChannel` when neither exists.
  pub fn describe(&self, name: &str) -> Result<Description, DescribeError> {
    self.describe_request(name.to_string(), 0)
  }

  /// Like [`Connection::describe`], by the id `ring ls` shows (channel and function ids never collide).
  pub fn describe_id(&self, id: u64) -> Result<Description, DescribeError> {
    self.describe_request(String::new(), id as i64)
  }

  fn describe_request(&self, name: String, id: i64) -> Result<Description, DescribeError> {
    let request_id = self.session.request_id();
    match self.session.request(request_id, Describe { request_id, name, id }.into())? {
      ControlMessage::Description(d) => Ok(d),
      other => Err(unexpected("Description", &other).into()),
    }
  }

  /// Asks the broker for every control-plane event from now on (apps joining, leaving and dying,
  /// channels and functions appearing and going, subscriptions, refusals). Events queue in the
  /// returned [`Monitor`] until read; a second call moves them to the new handle.
  pub fn monitor(&self) -> Result<Monitor, ListError> {
    let events = self.monitor.open();
    let request_id = self.session.request_id();
    match self.session.request(request_id, impulse_ring_core::control::Monitor { request_id }.into())? {
      ControlMessage::Done(_) => Ok(Monitor { session: self.session.clone(), events }),
      other => Err(unexpected("Done", &other).into()),
    }
  }

  /// Exposes a function over raw Avro datums: `handler` gets the request datum and returns the
  /// response datum (encoded with `response_schema`) or an error message for the caller. Handlers run
  /// on the connection's reactor thread.
  pub fn expose_function_raw(
    &self,
    name: &str,
    request_schema: &str,
    response_schema: &str,
    key: Option<&str>,
    handler: impl Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync + 'static,
  ) -> Result<Function, ExposeError> {
    let request_id = self.session.request_id();
    let expose = ExposeFunction {
      request_id,
      name: name.to_string(),
      request_schema: request_schema.to_string(),
      response_schema: response_schema.to_string(),
      key: self.session.seal_key(request_id, key)?,
    };
    let handler: Arc<RawHandler> = Arc::new(handler);
    self.provider.expose(&self.session, expose, handler).map_err(Into::into)
  }

  /// Exposes a typed function: requests decode to `Req`, `handler`'s `Resp` is encoded back; an
  /// `Err(message)` reaches the caller as `HandlerError`.
  pub fn expose_function<Req, Resp, F>(
    &self,
    name: &str,
    request_schema: &str,
    response_schema: &str,
    key: Option<&str>,
    handler: F,
  ) -> Result<Function, ExposeError>
  where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> std::result::Result<Resp, String> + Send + Sync + 'static,
  {
    let request_codec = Codec::new(request_schema)?;
    let response_codec = Codec::new(response_schema)?;
    self.expose_function_raw(name, request_schema, response_schema, key, move |datum| {
      let request: Req = request_codec.decode(datum).map_err(|e| e.to_string())?;
      let response = handler(request)?;
      encode_datum(&response_codec, &response).map_err(|e| e.to_string())
    })
  }

  /// Calls function `name` with a pre-encoded request datum and waits up to `timeout` for the
  /// response datum. Blocks the calling thread.
  pub fn call_raw_blocking(
    &self,
    name: &str,
    key: Option<&str>,
    request_datum: &[u8],
    request_schema: &str,
    response_schema: &str,
    timeout: Duration,
  ) -> Result<Vec<u8>, CallError> {
    let (_, datum) =
      self.call_blocking_with(name, key, request_schema, response_schema, timeout, |_| Ok(request_datum.to_vec()))?;
    Ok(datum)
  }

  /// Calls function `name` and waits up to `timeout` for its typed response. Blocks the calling thread.
  pub fn call_blocking<Req: Serialize, Resp: DeserializeOwned>(
    &self,
    name: &str,
    key: Option<&str>,
    request: &Req,
    request_schema: &str,
    response_schema: &str,
    timeout: Duration,
  ) -> Result<Resp, CallError> {
    let (link, datum) =
      self.call_blocking_with(name, key, request_schema, response_schema, timeout, |c| encode_datum(c, request))?;
    link.response_codec.decode(&datum).map_err(Into::into)
  }

  fn call_blocking_with(
    &self,
    name: &str,
    key: Option<&str>,
    request_schema: &str,
    response_schema: &str,
    timeout: Duration,
    encode: impl FnOnce(&Codec) -> Result<Vec<u8>>,
  ) -> Result<(Arc<CallerLink>, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let session = &*self.session;
    let link = self.callers.link(session, name, key, request_schema, response_schema)?;
    let datum = encode(&link.request_codec)?;
    let (correlation, call) = self.callers.start(session, &link, datum, Some(deadline))?;
    let response = self.callers.wait(session, &link, correlation, &call, deadline, timeout)?;
    Ok((link, response))
  }

  /// Calls function `name` asynchronously. The request is written (or queued, if the ring is full)
  /// before this returns, and nothing here waits: the future resolves when the response arrives (any
  /// executor: the connection's reactor wakes it). Apply a timeout with your executor; a dead
  /// provider or broker resolves it with an error.
  pub fn call<Req: Serialize, Resp: DeserializeOwned>(
    &self,
    name: &str,
    key: Option<&str>,
    request: &Req,
    request_schema: &str,
    response_schema: &str,
  ) -> CallFuture<Resp> {
    let started = self.start_async(name, key, request_schema, response_schema, |c| encode_datum(c, request));
    CallFuture::new(&self.session, started, decode_typed::<Resp>)
  }

  /// Like [`Connection::call`] with a pre-encoded request datum; resolves to the response datum.
  pub fn call_raw(
    &self,
    name: &str,
    key: Option<&str>,
    request_datum: &[u8],
    request_schema: &str,
    response_schema: &str,
  ) -> CallFuture<Vec<u8>> {
    let started = self.start_async(name, key, request_schema, response_schema, |_| Ok(request_datum.to_vec()));
    CallFuture::new(&self.session, started, decode_raw)
  }

  fn start_async(
    &self,
    name: &str,
    key: Option<&str>,
    request_schema: &str,
    response_schema: &str,
    encode: impl FnOnce(&Codec) -> Result<Vec<u8>>,
  ) -> Result<(Arc<CallerLink>, u64, Arc<PendingCall>)> {
    let session = &*self.session;
    let link = self.callers.link(session, name, key, request_schema, response_schema)?;
    let datum = encode(&link.request_codec)?;
    let (correlation, call) = self.callers.start(session, &link, datum, None)?;
    Ok((link, correlation, call))
  }
}

fn encode_datum<T: Serialize>(codec: &Codec, value: &T) -> Result<Vec<u8>> {
  let mut out = Vec::new();
  codec.encode_soe(value, &mut out)?;
  out.drain(..SOE_HEADER_LEN);
  Ok(out)
}

impl Drop for Connection {
  fn drop(&mut self) {
    // First stop the reactor, the only reader of the reply ring: once the broker handles Unregister
    // it resets the slot's rings for the next app, and a late read would corrupt them.
    self.stop_reactor.store(true, Ordering::Release);
    self.session.doorbell().ring();
    if let Some(reactor) = self.reactor.take() {
      let _ = reactor.join();
    }
    self.session.unregister();
  }
}
