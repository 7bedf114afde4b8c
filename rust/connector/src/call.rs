//! Function calls. A caller gets one link per function (two SPSC rings, made by the broker); requests
//! carry a correlation id that the response echoes. The provider's reactor serves every link of its
//! functions. A dead provider shows up as the link's `provider_gone` flag and a `LinkClosed` event:
//! pending calls fail at once with `PeerGone`.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use impulse_ring_core::avro::{soe_header, SOE_HEADER_LEN};
use impulse_ring_core::bus::LinkSegment;
use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{open_soe, Codec};
use crate::connection::{lock, ring_error, segment_error, Connection, Inner};
use crate::error::{Error, Result};
use crate::op_error::{CallError, ExposeError};

/// A function body over raw Avro datums: the request datum in, the response datum or an error message out.
pub type RawHandler = dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync;

/// The outcome of one call, filled in by whoever reads the response.
#[derive(Default)]
pub(crate) struct PendingCall {
  result: Mutex<Option<Result<Vec<u8>>>>,
  waker: Mutex<Option<Waker>>,
}

impl PendingCall {
  fn complete(&self, result: Result<Vec<u8>>) {
    *lock(&self.result) = Some(result);
    if let Some(waker) = lock(&self.waker).take() {
      waker.wake();
    }
  }

  fn take(&self) -> Option<Result<Vec<u8>>> {
    lock(&self.result).take()
  }
}

/// The caller's end of a link.
pub(crate) struct CallerLink {
  link_id: u64,
  name: String,
  seg: LinkSegment,
  request: Ring,
  response: Ring,
  provider: u32,
  request_codec: Codec,
  response_codec: Codec,
  /// The schema texts the link was resolved with: the cache key of `Connection::link`.
  request_schema: String,
  response_schema: String,
  write_lock: Mutex<()>,
  read_lock: Mutex<()>,
  pending: Mutex<HashMap<u64, Arc<PendingCall>>>,
  next_correlation: AtomicU64,
  gone: AtomicBool,
}

impl CallerLink {
  fn fail_pending(&self, error: &Error) {
    let pending: Vec<_> = lock(&self.pending).drain().collect();
    for (_, call) in pending {
      call.complete(Err(error.clone()));
    }
  }

  fn peer_gone(&self, inner: &Inner) -> Error {
    // A broker that shuts down marks every link gone: that is the broker leaving, not the provider.
    if inner.ctl.shutting_down() {
      return Error::BrokerGone { ns: inner.ns.clone() };
    }
    Error::PeerGone { message: format!("the provider of function `{}` is gone", self.name) }
  }

  /// Reads every response waiting on the link and completes its call. Returns at once if another
  /// thread is reading.
  fn drain(&self, inner: &Inner) {
    let Ok(_reader) = self.read_lock.try_lock() else { return };
    let seg = self.seg.segment();
    let mut completed = false;
    loop {
      let read = self.response.read(seg, &[IR_FRAME_KIND_CALL_OK, IR_FRAME_KIND_CALL_ERROR], |frame| {
        let result = if frame.kind == IR_FRAME_KIND_CALL_OK {
          open_soe(frame.payload, self.response_codec.fingerprint).map(<[u8]>::to_vec)
        } else {
          match ControlMessage::decode_frame_payload(frame.payload) {
            Ok(ControlMessage::CallError(e)) => Err(Error::from_remote(e.code, e.message, 0, 0, &inner.ns)),
            Ok(other) => Err(Error::Protocol { message: format!("expected CallError, got {}", other.name()) }),
            Err(e) => Err(Error::Decode { message: e.to_string() }),
          }
        };
        (frame.seq, result)
      });
      match read {
        Ok(Some((correlation, result))) => {
          if let Some(call) = lock(&self.pending).remove(&correlation) {
            call.complete(result);
            completed = true;
          }
        }
        Ok(None) => break,
        Err(e) => {
          self.gone.store(true, Ordering::Release);
          self.fail_pending(&ring_error(e));
          break;
        }
      }
    }
    if self.response.producer_waiting(seg) {
      inner.ctl.app_doorbell(self.provider).ring();
    }
    if self.seg.gone(IR_LINK_PROVIDER_GONE) {
      self.gone.store(true, Ordering::Release);
      self.fail_pending(&self.peer_gone(inner));
    }
    if completed {
      // Another thread of ours may sleep waiting for one of these results.
      inner.ctl.app_doorbell(inner.app_id).ring();
    }
  }

  /// Writes one request; waits (up to `deadline`) while the request ring is full.
  fn send(&self, inner: &Inner, correlation: u64, datum: &[u8], deadline: Instant) -> Result<()> {
    let seg = self.seg.segment();
    let header = soe_header(self.request_codec.fingerprint);
    let len = SOE_HEADER_LEN + datum.len();
    let _writer = lock(&self.write_lock);
    let written = inner.ctl.app_doorbell(inner.app_id).wait_until(inner.wait, Some(deadline), || {
      let result = self.request.try_write(seg, IR_FRAME_KIND_CALL_REQUEST, correlation, len, |dst| {
        dst[..SOE_HEADER_LEN].copy_from_slice(&header);
        dst[SOE_HEADER_LEN..].copy_from_slice(datum);
      });
      match result {
        Ok(()) => Some(Ok(())),
        Err(RingError::Full) if self.gone.load(Ordering::Acquire) || self.seg.gone(IR_LINK_PROVIDER_GONE) => {
          Some(Err(self.peer_gone(inner)))
        }
        Err(RingError::Full) => {
          self.request.set_producer_waiting(seg, true);
          None
        }
        Err(e) => Some(Err(ring_error(e))),
      }
    });
    self.request.set_producer_waiting(seg, false);
    let written = written
      .unwrap_or_else(|| Err(Error::Timeout { what: format!("call to `{}`", self.name), after: Duration::ZERO }));
    if written.is_ok() {
      inner.ctl.app_doorbell(self.provider).ring();
    }
    written
  }
}

/// The provider's end of a link.
struct ServedLink {
  link_id: u64,
  function_id: u64,
  seg: LinkSegment,
  request: Ring,
  response: Ring,
  caller: u32,
  request_fp: u64,
  response_fp: u64,
}

/// Links and handlers of one connection. Changes are rare (a link opens or closes); the reactor
/// works from `snapshot`, rebuilt on every change, so its hot loop neither allocates nor walks maps.
#[derive(Default)]
pub(crate) struct CallState {
  /// Caller links by function name; one per pair of schemas.
  callers: HashMap<String, Vec<Arc<CallerLink>>>,
  handlers: HashMap<u64, Arc<RawHandler>>,
  served: Vec<Arc<ServedLink>>,
  snapshot: Arc<Snapshot>,
}

/// What the reactor polls: every caller link, and every served link whose handler is in place.
#[derive(Default)]
struct Snapshot {
  callers: Vec<Arc<CallerLink>>,
  served: Vec<(Arc<ServedLink>, Arc<RawHandler>)>,
}

impl CallState {
  fn refresh(&mut self) {
    let callers = self.callers.values().flatten().cloned().collect();
    let served =
      self.served.iter().filter_map(|l| self.handlers.get(&l.function_id).map(|h| (l.clone(), h.clone()))).collect();
    self.snapshot = Arc::new(Snapshot { callers, served });
  }

  fn remove_caller(&mut self, link_id: u64) -> Option<Arc<CallerLink>> {
    let mut removed = None;
    for links in self.callers.values_mut() {
      if let Some(i) = links.iter().position(|l| l.link_id == link_id) {
        removed = Some(links.swap_remove(i));
      }
    }
    self.callers.retain(|_, links| !links.is_empty());
    self.refresh();
    removed
  }

  fn remove_served(&mut self, link_id: u64) {
    self.served.retain(|l| l.link_id != link_id);
    self.refresh();
  }

  pub(crate) fn remove_handler(&mut self, function_id: u64) {
    self.handlers.remove(&function_id);
    self.refresh();
  }
}

fn snapshot(inner: &Inner) -> Arc<Snapshot> {
  lock(&inner.calls).snapshot.clone()
}

/// Reactor: a `LinkOpened` event, a caller's new link to one of our functions.
pub(crate) fn open_served_link(inner: &Inner, event: LinkOpened) {
  let Ok(seg) = LinkSegment::open(&event.segment) else {
    return;
  };
  let info = seg.info();
  if info.provider != inner.app_id
    || info.caller >= inner.ctl.max_apps()
    || info.function_id != event.function_id as u64
  {
    return;
  }
  let (Ok(request), Ok(response)) = (seg.request_ring(), seg.response_ring()) else {
    return;
  };
  let link = ServedLink {
    link_id: info.link_id,
    function_id: info.function_id,
    request,
    response,
    caller: info.caller,
    request_fp: info.request_fp,
    response_fp: info.response_fp,
    seg,
  };
  let mut calls = lock(&inner.calls);
  calls.served.push(Arc::new(link));
  calls.refresh();
}

/// Reactor: the other side of a link is gone.
pub(crate) fn link_closed(inner: &Inner, link_id: u64, message: String) {
  let mut calls = lock(&inner.calls);
  calls.remove_served(link_id);
  if let Some(link) = calls.remove_caller(link_id) {
    drop(calls);
    link.gone.store(true, Ordering::Release);
    link.fail_pending(&Error::PeerGone { message });
  }
}

/// Fails every pending call (the broker is gone).
pub(crate) fn fail_all(inner: &Inner, error: Error) {
  for link in &snapshot(inner).callers {
    link.fail_pending(&error);
  }
}

/// Whether the reactor has call work: responses to read or requests to serve.
pub(crate) fn has_work(inner: &Inner) -> bool {
  let snapshot = snapshot(inner);
  snapshot.callers.iter().any(|l| l.response.has_data(l.seg.segment()) || l.seg.gone(IR_LINK_PROVIDER_GONE))
    || snapshot.served.iter().any(|(l, _)| l.request.has_data(l.seg.segment()))
}

/// Reactor: reads responses for our calls and serves requests to our functions.
pub(crate) fn pump(inner: &Inner) {
  let snapshot = snapshot(inner);
  for link in &snapshot.callers {
    link.drain(inner);
  }
  for (link, handler) in &snapshot.served {
    serve(inner, link, &**handler);
  }
}

fn call_error(code: ErrorCode, message: String) -> Vec<u8> {
  ControlMessage::CallError(impulse_ring_core::control::CallError { code: code as i32, message }).encode_frame_payload()
}

/// Serves up to a batch of requests on one link.
fn serve(inner: &Inner, link: &ServedLink, handler: &RawHandler) {
  let seg = link.seg.segment();
  for _ in 0..64 {
    let read = link.request.read(seg, &[IR_FRAME_KIND_CALL_REQUEST], |frame| {
      let outcome = match open_soe(frame.payload, link.request_fp) {
        Ok(datum) => match catch_unwind(AssertUnwindSafe(|| handler(datum))) {
          Ok(Ok(response)) => Ok(response),
          Ok(Err(message)) => Err((ErrorCode::HandlerError, message)),
          Err(_) => Err((ErrorCode::HandlerError, "the handler panicked".to_string())),
        },
        Err(e) => Err((ErrorCode::Decode, e.to_string())),
      };
      (frame.seq, outcome)
    });
    let (correlation, outcome) = match read {
      Ok(Some(found)) => found,
      Ok(None) => break,
      Err(_) => {
        // A corrupt link is useless: stop serving it, the caller will time out or see PeerGone.
        lock(&inner.calls).remove_served(link.link_id);
        return;
      }
    };
    if link.request.producer_waiting(seg) {
      inner.ctl.app_doorbell(link.caller).ring();
    }
    let max = link.response.max_payload();
    let header = soe_header(link.response_fp);
    let (kind, head, payload): (u16, &[u8], Vec<u8>) = match outcome {
      Ok(datum) if SOE_HEADER_LEN + datum.len() <= max => (IR_FRAME_KIND_CALL_OK, &header, datum),
      Ok(datum) => (
        IR_FRAME_KIND_CALL_ERROR,
        &[],
        call_error(ErrorCode::TooLarge, format!("response of {} bytes exceeds the link's {max}", datum.len())),
      ),
      Err((code, message)) => (IR_FRAME_KIND_CALL_ERROR, &[], call_error(code, message)),
    };
    // The response goes straight into the ring: its SOE header, then the handler's datum.
    let len = head.len() + payload.len();
    let deadline = Instant::now() + Duration::from_secs(5);
    inner.ctl.app_doorbell(inner.app_id).wait_until(inner.wait, Some(deadline), || {
      let written = link.response.try_write(seg, kind, correlation, len, |dst| {
        dst[..head.len()].copy_from_slice(head);
        dst[head.len()..].copy_from_slice(&payload);
      });
      match written {
        Err(RingError::Full) if !link.seg.gone(IR_LINK_CALLER_GONE) => {
          link.response.set_producer_waiting(seg, true);
          None
        }
        _ => Some(()),
      }
    });
    link.response.set_producer_waiting(seg, false);
    inner.ctl.app_doorbell(link.caller).ring();
  }
}

/// An exposed function; dropping it withdraws the function.
pub struct Function {
  inner: Arc<Inner>,
  function_id: u64,
  name: String,
}

impl Function {
  /// The function's name.
  pub fn name(&self) -> &str {
    &self.name
  }

  /// The broker's id of the function.
  pub fn function_id(&self) -> u64 {
    self.function_id
  }
}

impl Drop for Function {
  fn drop(&mut self) {
    lock(&self.inner.calls).remove_handler(self.function_id);
    let request_id = self.inner.request_id();
    let _ = self.inner.post(WithdrawFunction { request_id, function_id: self.function_id as i64 }.into());
  }
}

/// A call in flight; resolves to the response or the error.
pub struct CallFuture<T> {
  state: CallFutureState,
  decode: fn(&Codec, &[u8]) -> Result<T>,
}

enum CallFutureState {
  Failed(Option<Error>),
  Pending { inner: Arc<Inner>, link: Arc<CallerLink>, correlation: u64, call: Arc<PendingCall> },
}

impl<T> Future for CallFuture<T> {
  type Output = Result<T, CallError>;

  fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, CallError>> {
    let this = self.get_mut();
    match &mut this.state {
      CallFutureState::Failed(error) => Poll::Ready(Err(
        error.take().unwrap_or(Error::Protocol { message: "call future polled after completion".into() }).into(),
      )),
      CallFutureState::Pending { inner, link, call, .. } => {
        link.drain(inner);
        if let Some(result) = call.take() {
          return Poll::Ready(result.and_then(|datum| (this.decode)(&link.response_codec, &datum)).map_err(Into::into));
        }
        *lock(&call.waker) = Some(cx.waker().clone());
        // Re-check: the response may have landed between the take and storing the waker.
        match call.take() {
          Some(result) => {
            Poll::Ready(result.and_then(|datum| (this.decode)(&link.response_codec, &datum)).map_err(Into::into))
          }
          None => Poll::Pending,
        }
      }
    }
  }
}

impl<T> Drop for CallFuture<T> {
  fn drop(&mut self) {
    if let CallFutureState::Pending { link, correlation, .. } = &self.state {
      lock(&link.pending).remove(correlation);
    }
  }
}

fn decode_typed<T: DeserializeOwned>(codec: &Codec, datum: &[u8]) -> Result<T> {
  codec.decode(datum)
}

fn decode_raw(_: &Codec, datum: &[u8]) -> Result<Vec<u8>> {
  Ok(datum.to_vec())
}

impl Connection {
  /// Exposes a function over raw Avro datums: `handler` gets the request datum and returns the
  /// response datum (encoded with `response_schema`) or an error message for the caller.
  pub fn expose_function_raw(
    &self,
    name: &str,
    request_schema: &str,
    response_schema: &str,
    key: Option<&str>,
    handler: impl Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync + 'static,
  ) -> Result<Function, ExposeError> {
    let request_id = self.inner.request_id();
    let expose = ExposeFunction {
      request_id,
      name: name.to_string(),
      request_schema: request_schema.to_string(),
      response_schema: response_schema.to_string(),
      key: key.map(str::to_string),
    };
    let function_id = match self.inner.request(request_id, expose.into())? {
      ControlMessage::FunctionExposed(m) => m.function_id as u64,
      other => {
        return Err(Error::Protocol { message: format!("expected FunctionExposed, got {}", other.name()) }.into())
      }
    };
    let mut calls = lock(&self.inner.calls);
    calls.handlers.insert(function_id, Arc::new(handler));
    calls.refresh();
    drop(calls);
    // Callers may have linked before the handler was in place: let the reactor look again.
    self.inner.ctl.app_doorbell(self.inner.app_id).ring();
    Ok(Function { inner: self.inner.clone(), function_id, name: name.to_string() })
  }

  /// Exposes a typed function: requests decode to `Req`, `handler`'s `Resp` is encoded back; an
  /// `Err(message)` reaches the caller as `Error::Handler`.
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
      let mut out = Vec::new();
      response_codec.encode_soe(&response, &mut out).map_err(|e| e.to_string())?;
      out.drain(..SOE_HEADER_LEN);
      Ok(out)
    })
  }

  /// The link to function `name` for these schemas, resolving it with the broker on first use.
  fn link(
    &self,
    name: &str,
    key: Option<&str>,
    request_schema: &str,
    response_schema: &str,
  ) -> Result<Arc<CallerLink>> {
    self.inner.check_broker()?;
    // The hot path: a link made before for the same schemas (compared as text, no parsing).
    if let Some(links) = lock(&self.inner.calls).callers.get(name) {
      let found = links.iter().find(|l| l.request_schema == request_schema && l.response_schema == response_schema);
      if let Some(link) = found.filter(|l| !l.gone.load(Ordering::Acquire)) {
        return Ok(link.clone());
      }
    }
    let request_codec = Codec::new(request_schema)?;
    let response_codec = Codec::new(response_schema)?;
    let request_id = self.inner.request_id();
    let resolve = ResolveFunction {
      request_id,
      name: name.to_string(),
      request_schema: request_schema.to_string(),
      response_schema: response_schema.to_string(),
      key: key.map(str::to_string),
    };
    let resolved = match self.inner.request(request_id, resolve.into())? {
      ControlMessage::FunctionResolved(m) => m,
      other => return Err(Error::Protocol { message: format!("expected FunctionResolved, got {}", other.name()) }),
    };
    let seg = LinkSegment::open(&resolved.segment).map_err(segment_error)?;
    let info = seg.info();
    if info.caller != self.inner.app_id || info.provider >= self.inner.ctl.max_apps() {
      return Err(Error::Corrupt {
        message: format!("link {} names caller {} and provider {}", info.link_id, info.caller, info.provider),
      });
    }
    let link = Arc::new(CallerLink {
      link_id: info.link_id,
      name: name.to_string(),
      request: seg.request_ring().map_err(ring_error)?,
      response: seg.response_ring().map_err(ring_error)?,
      seg,
      provider: info.provider,
      request_codec,
      response_codec,
      request_schema: request_schema.to_string(),
      response_schema: response_schema.to_string(),
      write_lock: Mutex::new(()),
      read_lock: Mutex::new(()),
      pending: Mutex::new(HashMap::new()),
      next_correlation: AtomicU64::new(1),
      gone: AtomicBool::new(false),
    });
    let mut calls = lock(&self.inner.calls);
    let links = calls.callers.entry(name.to_string()).or_default();
    links.retain(|l| !l.gone.load(Ordering::Acquire));
    links.push(link.clone());
    calls.refresh();
    Ok(link)
  }

  fn start_call(
    &self,
    name: &str,
    key: Option<&str>,
    request_schema: &str,
    response_schema: &str,
    encode: impl FnOnce(&Codec) -> Result<Vec<u8>>,
    deadline: Instant,
  ) -> Result<(Arc<CallerLink>, u64, Arc<PendingCall>)> {
    let link = self.link(name, key, request_schema, response_schema)?;
    let datum = encode(&link.request_codec)?;
    let max = link.request.max_payload();
    if SOE_HEADER_LEN + datum.len() > max {
      return Err(Error::too_large(SOE_HEADER_LEN + datum.len(), max));
    }
    let correlation = link.next_correlation.fetch_add(1, Ordering::Relaxed);
    let call = Arc::new(PendingCall::default());
    lock(&link.pending).insert(correlation, call.clone());
    if let Err(e) = link.send(&self.inner, correlation, &datum, deadline) {
      lock(&link.pending).remove(&correlation);
      return Err(e);
    }
    Ok((link, correlation, call))
  }

  fn wait_call(
    &self,
    link: &CallerLink,
    correlation: u64,
    call: &PendingCall,
    deadline: Instant,
    timeout: Duration,
  ) -> Result<Vec<u8>> {
    let inner = &self.inner;
    let result = inner.ctl.app_doorbell(inner.app_id).wait_until(inner.wait, Some(deadline), || {
      link.drain(inner);
      call.take().or_else(|| inner.check_broker().err().map(Err))
    });
    result.unwrap_or_else(|| {
      lock(&link.pending).remove(&correlation);
      Err(Error::Timeout { what: format!("call to `{}`", link.name), after: timeout })
    })
  }

  /// Calls function `name` with a pre-encoded request datum and waits up to `timeout` for the
  /// response datum.
  pub fn call_raw_blocking(
    &self,
    name: &str,
    key: Option<&str>,
    request_datum: &[u8],
    request_schema: &str,
    response_schema: &str,
    timeout: Duration,
  ) -> Result<Vec<u8>, CallError> {
    let deadline = Instant::now() + timeout;
    let (link, correlation, call) =
      self.start_call(name, key, request_schema, response_schema, |_| Ok(request_datum.to_vec()), deadline)?;
    self.wait_call(&link, correlation, &call, deadline, timeout).map_err(Into::into)
  }

  /// Calls function `name` and waits up to `timeout` for its typed response.
  pub fn call_blocking<Req: Serialize, Resp: DeserializeOwned>(
    &self,
    name: &str,
    key: Option<&str>,
    request: &Req,
    request_schema: &str,
    response_schema: &str,
    timeout: Duration,
  ) -> Result<Resp, CallError> {
    let deadline = Instant::now() + timeout;
    let (link, correlation, call) =
      self.start_call(name, key, request_schema, response_schema, |codec| encode_datum(codec, request), deadline)?;
    let datum = self.wait_call(&link, correlation, &call, deadline, timeout)?;
    link.response_codec.decode(&datum).map_err(Into::into)
  }

  /// Calls function `name` asynchronously. The request is sent before this returns; the future
  /// resolves when the response arrives (any executor: the connection's reactor wakes it). Apply a
  /// timeout with your executor; a dead provider or broker resolves it with an error.
  pub fn call<Req: Serialize, Resp: DeserializeOwned>(
    &self,
    name: &str,
    key: Option<&str>,
    request: &Req,
    request_schema: &str,
    response_schema: &str,
  ) -> CallFuture<Resp> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let started =
      self.start_call(name, key, request_schema, response_schema, |codec| encode_datum(codec, request), deadline);
    self.future(started, decode_typed::<Resp>)
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
    let deadline = Instant::now() + Duration::from_secs(3600);
    let started = self.start_call(name, key, request_schema, response_schema, |_| Ok(request_datum.to_vec()), deadline);
    self.future(started, decode_raw)
  }

  fn future<T>(
    &self,
    started: Result<(Arc<CallerLink>, u64, Arc<PendingCall>)>,
    decode: fn(&Codec, &[u8]) -> Result<T>,
  ) -> CallFuture<T> {
    let state = match started {
      Ok((link, correlation, call)) => CallFutureState::Pending { inner: self.inner.clone(), link, correlation, call },
      Err(e) => CallFutureState::Failed(Some(e)),
    };
    CallFuture { state, decode }
  }
}

fn encode_datum<T: Serialize>(codec: &Codec, value: &T) -> Result<Vec<u8>> {
  let mut out = Vec::new();
  codec.encode_soe(value, &mut out)?;
  out.drain(..SOE_HEADER_LEN);
  Ok(out)
}
