//! A connection to the broker of a namespace: the claimed app slot, the control request/reply
//! exchange, and the reactor thread that reads replies, completes calls and serves functions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::WaitStrategy;
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use impulse_ring_core::segment::SegmentError;
use impulse_ring_core::{names, sys};

use crate::call::{self, CallState};
use crate::error::{Error, Result};
use crate::op_error::{ConnectError, ListError};

/// How long a control request may wait for the broker's reply.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
  /// Namespace; `None` reads `IMPULSE_RING_NS` (default `impulse`).
  pub namespace: Option<String>,
  /// How the reactor thread and blocking calls wait.
  pub wait: WaitStrategy,
}

/// State shared by the connection, its publishers, subscribers, functions and the reactor.
pub(crate) struct Inner {
  pub ns: String,
  pub app_id: u32,
  pub ctl: ControlSegment,
  pub wait: WaitStrategy,
  request_ring: Ring,
  reply_ring: Ring,
  /// Serialises writers of the request ring (it has a single producer).
  request_lock: Mutex<()>,
  next_request_id: AtomicU64,
  replies: Mutex<HashMap<i64, SyncSender<ControlMessage>>>,
  pub broker_gone: AtomicBool,
  /// Set once the app has unregistered; nothing may touch the slot afterwards.
  pub closing: AtomicBool,
  /// Tells the reactor to stop; set (and the reactor joined) before `Unregister` is posted, so that
  /// nothing reads the reply ring once the broker may reset it for the slot's next owner.
  stop_reactor: AtomicBool,
  pub calls: Mutex<CallState>,
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn ring_error(e: RingError) -> Error {
  match e {
    RingError::TooLarge { size, max } => Error::too_large(size, max),
    other => Error::Corrupt { message: other.to_string() },
  }
}

pub(crate) fn segment_error(e: SegmentError) -> Error {
  match e {
    SegmentError::VersionMismatch { .. } => Error::VersionMismatch { message: e.to_string() },
    SegmentError::Corrupt { .. } => Error::Corrupt { message: e.to_string() },
    other => Error::Io { message: other.to_string() },
  }
}

impl Inner {
  /// Whether the broker is gone (noticed by the reactor).
  pub fn check_broker(&self) -> Result<()> {
    if self.broker_gone.load(Ordering::Acquire) {
      return Err(Error::BrokerGone { ns: self.ns.clone() });
    }
    Ok(())
  }

  /// Writes a control record to the broker without waiting for an answer.
  pub fn post(&self, message: ControlMessage) -> Result<()> {
    self.check_broker()?;
    let payload = message.encode_frame_payload();
    let seg = self.ctl.segment();
    let _guard = lock(&self.request_lock);
    if self.closing.load(Ordering::Acquire) {
      // After Unregister the slot (and its request ring) may already belong to another app.
      return Err(Error::Closed { channel: "the connection".into() });
    }
    if matches!(message, ControlMessage::Unregister(_)) {
      // The last record this app writes: later posts (from drops on other threads) must not follow.
      self.closing.store(true, Ordering::Release);
    }
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    let bell = self.ctl.app_doorbell(self.app_id);
    let written = bell.wait_until(WaitStrategy::default(), Some(deadline), || {
      match self.request_ring.try_write_bytes(seg, IR_FRAME_KIND_CONTROL, 0, &payload) {
        Ok(()) => Some(Ok(())),
        Err(RingError::Full) => {
          // The broker rings our doorbell when it frees space.
          self.request_ring.set_producer_waiting(seg, true);
          (self.broker_gone.load(Ordering::Acquire)).then(|| Err(Error::BrokerGone { ns: self.ns.clone() }))
        }
        Err(e) => Some(Err(ring_error(e))),
      }
    });
    self.request_ring.set_producer_waiting(seg, false);
    match written {
      Some(result) => result?,
      None => return Err(Error::Timeout { what: "writing a control request".into(), after: CONTROL_TIMEOUT }),
    }
    self.ctl.broker_doorbell().ring();
    Ok(())
  }

  /// A fresh request id.
  pub fn request_id(&self) -> i64 {
    self.next_request_id.fetch_add(1, Ordering::Relaxed) as i64
  }

  /// Sends a request and waits for the reply that carries `request_id`.
  pub fn request(&self, request_id: i64, message: ControlMessage) -> Result<ControlMessage> {
    let (tx, rx) = sync_channel(1);
    lock(&self.replies).insert(request_id, tx);
    let outcome = self.post(message).and_then(|()| {
      rx.recv_timeout(CONTROL_TIMEOUT).map_err(|e| match e {
        std::sync::mpsc::RecvTimeoutError::Timeout => {
          Error::Timeout { what: "waiting for the broker's reply".into(), after: CONTROL_TIMEOUT }
        }
        std::sync::mpsc::RecvTimeoutError::Disconnected => Error::BrokerGone { ns: self.ns.clone() },
      })
    });
    lock(&self.replies).remove(&request_id);
    match outcome? {
      ControlMessage::Failed(f) => Err(Error::from_remote(
        f.code,
        f.message,
        f.expected_fingerprint as u64,
        f.presented_fingerprint as u64,
        &self.ns,
      )),
      reply => Ok(reply),
    }
  }

  /// Routes one record from the reply ring.
  fn dispatch(self: &Arc<Self>, message: ControlMessage) {
    // Replies (and only replies) reach the app with a request id.
    let request_id = message.request_id();
    if let Some(id) = request_id {
      if let Some(tx) = lock(&self.replies).remove(&id) {
        let _ = tx.try_send(message);
      }
      return;
    }
    match message {
      ControlMessage::LinkOpened(m) => call::open_served_link(self, m),
      ControlMessage::LinkClosed(m) => call::link_closed(self, m.link_id as u64, m.message),
      ControlMessage::BrokerShutdown(_) => self.mark_broker_gone(),
      _ => {}
    }
  }

  /// The broker is gone: fail everything that waits for it.
  fn mark_broker_gone(&self) {
    self.broker_gone.store(true, Ordering::Release);
    lock(&self.replies).clear();
    call::fail_all(self, Error::BrokerGone { ns: self.ns.clone() });
  }

  fn has_work(&self) -> bool {
    let seg = self.ctl.segment();
    self.reply_ring.has_data(seg) || self.stop_reactor.load(Ordering::Acquire) || call::has_work(self)
  }

  /// The reactor thread: sleeps on the app's doorbell, wakes for replies, call responses and call
  /// requests, and checks the broker's health at least every `MAX_SLEEP`.
  fn reactor(self: Arc<Self>) {
    let mut last_health = Instant::now();
    while !self.stop_reactor.load(Ordering::Acquire) {
      let deadline = Instant::now() + Duration::from_millis(200);
      self.ctl.app_doorbell(self.app_id).wait_until(self.wait, Some(deadline), || self.has_work().then_some(()));
      loop {
        let read = self
          .reply_ring
          .read(self.ctl.segment(), &[IR_FRAME_KIND_CONTROL], |f| ControlMessage::decode_frame_payload(f.payload));
        match read {
          Ok(Some(Ok(message))) => self.dispatch(message),
          Ok(Some(Err(_))) => {}
          Ok(None) => break,
          Err(_) => {
            // A corrupt reply ring: the broker can no longer talk to us.
            self.mark_broker_gone();
            break;
          }
        }
        if self.reply_ring.producer_waiting(self.ctl.segment()) {
          self.ctl.broker_doorbell().ring();
        }
      }
      call::pump(&self);
      if last_health.elapsed() >= Duration::from_millis(200) && !self.broker_gone.load(Ordering::Acquire) {
        last_health = Instant::now();
        if !self.ctl.broker_alive() {
          self.mark_broker_gone();
        }
      }
    }
  }
}

/// A connection to the bus. Cheap to share across threads (`&Connection` is `Sync`); dropping it
/// unregisters the app, which closes its channels and functions.
pub struct Connection {
  pub(crate) inner: Arc<Inner>,
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
    names::check_namespace(&ns).map_err(|e| Error::InvalidArgument { message: e.to_string() })?;
    let no_broker = || Error::NoBroker { ns: ns.clone() };
    // A control segment that is not ready belongs to a broker still starting: give it up to a second
    // (bootstrap.md) before concluding there is no broker.
    let patience = Instant::now() + Duration::from_secs(1);
    let ctl = loop {
      match ControlSegment::open(&ns) {
        Ok(ctl) => break ctl,
        Err(SegmentError::NotReady { .. }) if Instant::now() < patience => std::thread::sleep(Duration::from_millis(5)),
        Err(SegmentError::NotFound { .. }) | Err(SegmentError::NotReady { .. }) => return Err(no_broker()),
        Err(e) => return Err(segment_error(e)),
      }
    };
    if !ctl.broker_alive() || ctl.shutting_down() {
      return Err(no_broker());
    }
    let app_id = ctl.claim_slot().ok_or_else(|| Error::LimitReached {
      message: format!("all {} app slots of namespace `{ns}` are taken", ctl.max_apps()),
    })?;
    let rings = ctl.request_ring(app_id).and_then(|req| Ok((req, ctl.reply_ring(app_id)?)));
    let (request_ring, reply_ring) = match rings {
      Ok(rings) => rings,
      Err(e) => return Err(ring_error(e)),
    };
    let inner = Arc::new(Inner {
      ns,
      app_id,
      ctl,
      wait: options.wait,
      request_ring,
      reply_ring,
      request_lock: Mutex::new(()),
      next_request_id: AtomicU64::new(1),
      replies: Mutex::new(HashMap::new()),
      broker_gone: AtomicBool::new(false),
      closing: AtomicBool::new(false),
      stop_reactor: AtomicBool::new(false),
      calls: Mutex::new(CallState::default()),
    });
    let reactor = {
      let inner = inner.clone();
      std::thread::Builder::new()
        .name("ring-reactor".into())
        .spawn(move || inner.reactor())
        .map_err(|e| Error::Io { message: format!("cannot start the reactor thread: {e}") })?
    };
    let conn = Connection { inner, reactor: Some(reactor) };
    let pid = sys::getpid();
    let request_id = conn.inner.request_id();
    let register = Register {
      request_id,
      app_name: app_name.to_string(),
      pid: pid as i64,
      start_time: sys::process_start_time(pid).unwrap_or(0) as i64,
    };
    match conn.inner.request(request_id, register.into()) {
      Ok(ControlMessage::Registered(_)) => Ok(conn),
      Ok(other) => Err(Error::Protocol { message: format!("expected Registered, got {}", other.name()) }),
      Err(Error::Timeout { .. }) if !conn.inner.ctl.broker_alive() => {
        Err(Error::NoBroker { ns: conn.inner.ns.clone() })
      }
      Err(e) => Err(e),
    }
  }

  /// The namespace this connection lives in.
  pub fn namespace(&self) -> &str {
    &self.inner.ns
  }

  /// This app's id on the broker (its slot index).
  pub fn app_id(&self) -> u32 {
    self.inner.app_id
  }

  /// Whether the broker is gone; every further request fails with `BrokerGone`.
  pub fn broker_gone(&self) -> bool {
    self.inner.broker_gone.load(Ordering::Acquire)
  }

  /// What is on the bus: apps, channels and functions, as the broker sees them.
  pub fn list(&self) -> Result<Listing, ListError> {
    self.listing().map_err(Into::into)
  }

  fn listing(&self) -> Result<Listing> {
    let request_id = self.inner.request_id();
    match self.inner.request(request_id, List { request_id }.into())? {
      ControlMessage::Listing(listing) => Ok(listing),
      other => Err(Error::Protocol { message: format!("expected Listing, got {}", other.name()) }),
    }
  }
}

impl Drop for Connection {
  fn drop(&mut self) {
    // First stop the reactor, the only reader of the reply ring: once the broker handles Unregister
    // it resets the slot's rings for the next app, and a late read would corrupt them.
    self.inner.stop_reactor.store(true, Ordering::Release);
    self.inner.ctl.app_doorbell(self.inner.app_id).ring();
    if let Some(reactor) = self.reactor.take() {
      let _ = reactor.join();
    }
    if !self.broker_gone() {
      let request_id = self.inner.request_id();
      // Posted, not awaited (see above). Best effort: the broker collects us anyway when the
      // process exits. It sets `closing`: nothing posts after it.
      let _ = self.inner.post(Unregister { request_id }.into());
    }
    self.inner.closing.store(true, Ordering::Release);
  }
}
