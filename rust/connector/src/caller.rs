//! The caller's side of function calls. A caller gets one link per function and pair of schemas (two
//! SPSC rings, made by the broker); requests carry a correlation id that the response echoes. A dead
//! provider shows up as the link's `provider_gone` flag or a `LinkClosed` event: pending calls fail
//! at once with `PeerGone`. Depends on the session only; the reactor drives [`Callers::pump`].

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use impulse_ring_core::avro::{soe_header, SOE_HEADER_LEN};
use impulse_ring_core::bus::LinkSegment;
use impulse_ring_core::control::*;
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use serde::de::DeserializeOwned;

use crate::codec::{open_soe, Codec};
use crate::error::{Error, Result};
use crate::op_error::CallError;
use crate::session::{lock, ring_error, segment_error, truncated, unexpected, Session};
use crate::snapshot::Published;

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
  pub(crate) request_codec: Codec,
  pub(crate) response_codec: Codec,
  /// The schema texts the link was resolved with: the cache key of [`Callers::link`].
  request_schema: String,
  response_schema: String,
  write_lock: Mutex<()>,
  read_lock: Mutex<()>,
  pending: Mutex<HashMap<u64, Arc<PendingCall>>>,
  /// Requests of futures that found the request ring full, in order; the reactor writes them as
  /// space frees. Guarded by `write_lock` for writers of the ring.
  backlog: Mutex<VecDeque<(u64, Vec<u8>)>>,
  /// Whether `backlog` is non-empty, readable without its lock.
  backlogged: AtomicBool,
  next_correlation: AtomicU64,
  gone: AtomicBool,
  /// Requests written, mirrored in the link's `IR_LINK_CALLS` word for `Describe`. Written under
  /// `write_lock`.
  calls: AtomicU64,
}

impl CallerLink {
  fn fail_pending(&self, error: &Error) {
    lock(&self.backlog).clear();
    self.backlogged.store(false, Ordering::Release);
    let pending: Vec<_> = lock(&self.pending).drain().collect();
    for (_, call) in pending {
      call.complete(Err(error.clone()));
    }
  }

  fn peer_gone(&self, session: &Session) -> Error {
    // A broker that shuts down marks every link gone: that is the broker leaving, not the provider.
    if session.ctl.shutting_down() {
      return Error::BrokerGone { ns: session.ns.clone() };
    }
    Error::PeerGone { message: format!("the provider of function `{}` is gone", self.name) }
  }

  fn provider_gone(&self) -> bool {
    self.gone.load(Ordering::Acquire) || self.seg.gone(IR_LINK_PROVIDER_GONE)
  }

  /// Reads every response waiting on the link and completes its call, then writes what the backlog
  /// holds while there is space. Returns at once if another thread is reading.
  fn drain(&self, session: &Session) {
    self.flush_backlog(session);
    let Ok(_reader) = self.read_lock.try_lock() else { return };
    let seg = self.seg.segment();
    let mut completed = false;
    loop {
      let read = self.response.read(seg, &[IR_FRAME_KIND_CALL_OK, IR_FRAME_KIND_CALL_ERROR], |frame| {
        let result = if frame.kind == IR_FRAME_KIND_CALL_OK {
          open_soe(frame.payload, self.response_codec.fingerprint).map(<[u8]>::to_vec)
        } else {
          match ControlMessage::decode_frame_payload(frame.payload) {
            Ok(ControlMessage::CallError(e)) => Err(Error::from_remote(e.code, e.message, 0, 0, &session.ns)),
            Ok(other) => Err(unexpected("CallError", &other)),
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
      session.ctl.app_doorbell(self.provider).ring();
    }
    if seg.truncated() {
      // The lost pages read zeros now: nothing on this link can be trusted (sigbus.rs).
      self.gone.store(true, Ordering::Release);
      self.fail_pending(&truncated(seg, &format!("the link of function `{}`", self.name)));
    } else if self.seg.gone(IR_LINK_PROVIDER_GONE) {
      self.gone.store(true, Ordering::Release);
      self.fail_pending(&self.peer_gone(session));
    }
    if completed {
      // Another thread of ours may sleep waiting for one of these results.
      session.doorbell().ring();
    }
  }

  /// Writes one request record; `Full` when the ring has no room.
  fn try_send(&self, correlation: u64, datum: &[u8]) -> std::result::Result<(), RingError> {
    let header = soe_header(self.request_codec.fingerprint);
    let seg = self.seg.segment();
    self.request.try_write(seg, IR_FRAME_KIND_CALL_REQUEST, correlation, SOE_HEADER_LEN + datum.len(), |dst| {
      dst[..SOE_HEADER_LEN].copy_from_slice(&header);
      dst[SOE_HEADER_LEN..].copy_from_slice(datum);
    })?;
    let calls = self.calls.load(Ordering::Relaxed) + 1;
    self.calls.store(calls, Ordering::Relaxed);
    seg.u64_at(IR_LINK_CALLS).store(calls, Ordering::Relaxed);
    Ok(())
  }

  /// Writes one request, waiting (up to `deadline`) while the request ring is full.
  fn send_blocking(&self, session: &Session, correlation: u64, datum: &[u8], deadline: Instant) -> Result<()> {
    let seg = self.seg.segment();
    let timeout = deadline.saturating_duration_since(Instant::now());
    let _writer = lock(&self.write_lock);
    let written = session.doorbell().wait_until(session.wait, Some(deadline), || {
      // Queued requests of futures go first: one ring, one order.
      if self.backlogged.load(Ordering::Acquire) && !self.flush_locked() {
        self.request.set_producer_waiting(seg, true);
        return self.provider_gone().then(|| Err(self.peer_gone(session)));
      }
      match self.try_send(correlation, datum) {
        Ok(()) => Some(Ok(())),
        Err(RingError::Full) if self.provider_gone() => Some(Err(self.peer_gone(session))),
        Err(RingError::Full) => {
          self.request.set_producer_waiting(seg, true);
          None
        }
        Err(e) => Some(Err(ring_error(e))),
      }
    });
    self.request.set_producer_waiting(seg, false);
    let written =
      written.unwrap_or_else(|| Err(Error::Timeout { what: format!("call to `{}`", self.name), after: timeout }));
    if written.is_ok() {
      session.ctl.app_doorbell(self.provider).ring();
    }
    written
  }

  /// Writes one request if there is room now, else queues it for the reactor: never waits.
  fn send_or_queue(&self, session: &Session, correlation: u64, datum: Vec<u8>) -> Result<()> {
    let _writer = lock(&self.write_lock);
    let mut backlog = lock(&self.backlog);
    if backlog.is_empty() {
      match self.try_send(correlation, &datum) {
        Ok(()) => {
          session.ctl.app_doorbell(self.provider).ring();
          return Ok(());
        }
        Err(RingError::Full) => {}
        Err(e) => return Err(ring_error(e)),
      }
    }
    backlog.push_back((correlation, datum));
    self.backlogged.store(true, Ordering::Release);
    // The provider rings our doorbell once it frees space; the reactor then writes the backlog.
    self.request.set_producer_waiting(self.seg.segment(), true);
    Ok(())
  }

  /// Writes queued requests while they fit; whether the backlog is now empty. Needs `write_lock`.
  fn flush_locked(&self) -> bool {
    let mut backlog = lock(&self.backlog);
    while let Some((correlation, datum)) = backlog.front() {
      match self.try_send(*correlation, datum) {
        Ok(()) => {
          backlog.pop_front();
        }
        Err(RingError::Full) => return false,
        Err(e) => {
          let error = ring_error(e);
          for (correlation, _) in backlog.drain(..) {
            if let Some(call) = lock(&self.pending).remove(&correlation) {
              call.complete(Err(error.clone()));
            }
          }
        }
      }
    }
    self.backlogged.store(false, Ordering::Release);
    self.request.set_producer_waiting(self.seg.segment(), false);
    true
  }

  fn flush_backlog(&self, session: &Session) {
    if !self.backlogged.load(Ordering::Acquire) {
      return;
    }
    let Ok(_writer) = self.write_lock.try_lock() else { return };
    let before = lock(&self.backlog).len();
    self.flush_locked();
    if lock(&self.backlog).len() < before {
      session.ctl.app_doorbell(self.provider).ring();
    }
    if self.backlogged.load(Ordering::Acquire) && self.provider_gone() {
      self.fail_pending(&self.peer_gone(session));
    }
  }

  /// Whether the reactor has something to do for this link.
  fn has_work(&self) -> bool {
    let seg = self.seg.segment();
    self.response.has_data(seg)
      || self.seg.gone(IR_LINK_PROVIDER_GONE)
      || (seg.truncated() && !self.gone.load(Ordering::Acquire))
      || (self.backlogged.load(Ordering::Acquire) && self.backlog_fits())
  }

  fn backlog_fits(&self) -> bool {
    let len = lock(&self.backlog).front().map_or(0, |(_, d)| d.len());
    self.request.has_space(self.seg.segment(), SOE_HEADER_LEN + len)
  }
}

/// The caller links of one connection, by function name (one per pair of schemas).
#[derive(Default)]
pub(crate) struct Callers {
  links: Mutex<HashMap<String, Vec<Arc<CallerLink>>>>,
  /// Every link, for the reactor's polling: rebuilt on every change, read without a lock.
  all: Published<Vec<Arc<CallerLink>>>,
}

impl Callers {
  fn publish(&self, links: &HashMap<String, Vec<Arc<CallerLink>>>) {
    self.all.set(links.values().flatten().cloned().collect());
  }

  /// The link to function `name` for these schemas, resolving it with the broker on first use.
  pub fn link(
    &self,
    session: &Session,
    name: &str,
    key: Option<&str>,
    request_schema: &str,
    response_schema: &str,
  ) -> Result<Arc<CallerLink>> {
    session.check_broker()?;
    // The hot path: a link made before for the same schemas (compared as text, no parsing).
    if let Some(links) = lock(&self.links).get(name) {
      let found = links.iter().find(|l| l.request_schema == request_schema && l.response_schema == response_schema);
      if let Some(link) = found.filter(|l| !l.gone.load(Ordering::Acquire)) {
        return Ok(link.clone());
      }
    }
    let request_codec = Codec::new(request_schema)?;
    let response_codec = Codec::new(response_schema)?;
    let request_id = session.request_id();
    let resolve = ResolveFunction {
      request_id,
      name: name.to_string(),
      request_schema: request_schema.to_string(),
      response_schema: response_schema.to_string(),
      key: session.seal_key(request_id, key)?,
    };
    let resolved = match session.request(request_id, resolve.into())? {
      ControlMessage::FunctionResolved(m) => m,
      other => return Err(unexpected("FunctionResolved", &other)),
    };
    let seg = LinkSegment::open(&resolved.segment).map_err(segment_error)?;
    let info = seg.info();
    if info.caller != session.app_id || info.provider >= session.ctl.max_apps() {
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
      backlog: Mutex::new(VecDeque::new()),
      backlogged: AtomicBool::new(false),
      next_correlation: AtomicU64::new(1),
      gone: AtomicBool::new(false),
      calls: AtomicU64::new(0),
    });
    let mut links = lock(&self.links);
    let list = links.entry(name.to_string()).or_default();
    list.retain(|l| !l.gone.load(Ordering::Acquire));
    list.push(link.clone());
    self.publish(&links);
    Ok(link)
  }

  /// Starts a call on `link` with an encoded request datum. `deadline` bounds the wait for room in a
  /// full request ring; without one the request is queued instead (a future never waits).
  pub fn start(
    &self,
    session: &Session,
    link: &Arc<CallerLink>,
    datum: Vec<u8>,
    deadline: Option<Instant>,
  ) -> Result<(u64, Arc<PendingCall>)> {
    let max = link.request.max_payload();
    if SOE_HEADER_LEN + datum.len() > max {
      return Err(Error::too_large(SOE_HEADER_LEN + datum.len(), max));
    }
    let correlation = link.next_correlation.fetch_add(1, Ordering::Relaxed);
    let call = Arc::new(PendingCall::default());
    lock(&link.pending).insert(correlation, call.clone());
    let sent = match deadline {
      Some(deadline) => link.send_blocking(session, correlation, &datum, deadline),
      None => link.send_or_queue(session, correlation, datum),
    };
    if let Err(e) = sent {
      lock(&link.pending).remove(&correlation);
      return Err(e);
    }
    Ok((correlation, call))
  }

  /// Waits (up to `deadline`) for the response of a call started with [`Callers::start`].
  pub fn wait(
    &self,
    session: &Session,
    link: &CallerLink,
    correlation: u64,
    call: &PendingCall,
    deadline: Instant,
    timeout: Duration,
  ) -> Result<Vec<u8>> {
    let result = session.doorbell().wait_until(session.wait, Some(deadline), || {
      link.drain(session);
      call.take().or_else(|| session.check_broker().err().map(Err))
    });
    result.unwrap_or_else(|| {
      lock(&link.pending).remove(&correlation);
      Err(Error::Timeout { what: format!("call to `{}`", link.name), after: timeout })
    })
  }

  /// Reactor: the provider's side of a link is gone.
  pub fn link_closed(&self, link_id: u64, message: &str) {
    let mut links = lock(&self.links);
    let mut removed = None;
    for list in links.values_mut() {
      if let Some(i) = list.iter().position(|l| l.link_id == link_id) {
        removed = Some(list.swap_remove(i));
      }
    }
    links.retain(|_, list| !list.is_empty());
    self.publish(&links);
    drop(links);
    if let Some(link) = removed {
      link.gone.store(true, Ordering::Release);
      link.fail_pending(&Error::PeerGone { message: message.to_string() });
    }
  }

  /// Fails every pending call (the broker is gone).
  pub fn fail_all(&self, error: &Error) {
    for link in self.all.get().iter() {
      link.fail_pending(error);
    }
  }

  /// Reactor: whether any link has responses to read, a gone provider or a backlog that fits.
  pub fn has_work(links: &[Arc<CallerLink>]) -> bool {
    links.iter().any(|l| l.has_work())
  }

  /// Reactor: reads responses and writes backlogs on every link.
  pub fn pump(session: &Session, links: &[Arc<CallerLink>]) {
    for link in links {
      link.drain(session);
    }
  }

  /// The published list of links, for the reactor's cache.
  pub fn published(&self) -> &Published<Vec<Arc<CallerLink>>> {
    &self.all
  }
}

/// A call in flight; resolves to the response or the error. Polling never blocks: a request that
/// found the ring full waits in the link's backlog, which the connection's reactor writes.
pub struct CallFuture<T> {
  state: CallFutureState,
  decode: fn(&Codec, &[u8]) -> Result<T>,
}

enum CallFutureState {
  Failed(Option<Error>),
  Pending { session: Arc<Session>, link: Arc<CallerLink>, correlation: u64, call: Arc<PendingCall> },
}

impl<T> CallFuture<T> {
  pub(crate) fn new(
    session: &Arc<Session>,
    started: Result<(Arc<CallerLink>, u64, Arc<PendingCall>)>,
    decode: fn(&Codec, &[u8]) -> Result<T>,
  ) -> CallFuture<T> {
    let state = match started {
      Ok((link, correlation, call)) => CallFutureState::Pending { session: session.clone(), link, correlation, call },
      Err(e) => CallFutureState::Failed(Some(e)),
    };
    CallFuture { state, decode }
  }
}

impl<T> Future for CallFuture<T> {
  type Output = Result<T, CallError>;

  fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, CallError>> {
    let this = self.get_mut();
    match &mut this.state {
      CallFutureState::Failed(error) => Poll::Ready(Err(
        error.take().unwrap_or(Error::Protocol { message: "call future polled after completion".into() }).into(),
      )),
      CallFutureState::Pending { session, link, call, .. } => {
        link.drain(session);
        let finish = |result: Result<Vec<u8>>| {
          Poll::Ready(result.and_then(|datum| (this.decode)(&link.response_codec, &datum)).map_err(Into::into))
        };
        if let Some(result) = call.take() {
          return finish(result);
        }
        *lock(&call.waker) = Some(cx.waker().clone());
        // Re-check: the response may have landed between the take and storing the waker.
        match call.take() {
          Some(result) => finish(result),
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

/// Decodes a typed response.
pub(crate) fn decode_typed<T: DeserializeOwned>(codec: &Codec, datum: &[u8]) -> Result<T> {
  codec.decode(datum)
}

/// Hands the response datum over as it is.
pub(crate) fn decode_raw(_: &Codec, datum: &[u8]) -> Result<Vec<u8>> {
  Ok(datum.to_vec())
}
