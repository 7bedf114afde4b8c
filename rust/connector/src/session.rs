//! The session: this app's claimed slot in the control segment, its request and reply rings, the
//! control request/reply exchange and the broker's liveness. Everything else (channels, calls, the
//! reactor) is built on it; it knows nothing of them. The reactor is the only reader of the reply
//! ring and hands each record to [`Session::deliver`], which completes the waiting request or
//! returns the record as an event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::{Doorbell, WaitStrategy};
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use impulse_ring_core::seal::{self, KeyPair};
use impulse_ring_core::segment::{Segment, SegmentError};
use impulse_ring_core::{names, sys};

use crate::error::{Error, Result};

/// How long a control request may wait for the broker's reply.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Locks a mutex, ignoring poisoning: every critical section of this crate leaves its data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A ring error as the connector reports it.
pub(crate) fn ring_error(e: RingError) -> Error {
  match e {
    RingError::TooLarge { size, max } => Error::too_large(size, max),
    other => Error::Corrupt { message: other.to_string() },
  }
}

/// A segment error as the connector reports it.
pub(crate) fn segment_error(e: SegmentError) -> Error {
  match e {
    SegmentError::VersionMismatch { .. } => Error::VersionMismatch { message: e.to_string() },
    SegmentError::Corrupt { .. } => Error::Corrupt { message: e.to_string() },
    other => Error::Io { message: other.to_string() },
  }
}

/// The error for a segment truncated under this app (its lost pages read zeros, sigbus.rs of the core).
pub(crate) fn truncated(seg: &Segment, what: &str) -> Error {
  Error::Corrupt {
    message: format!(
      "{what}: segment {} was truncated under this app (something shrank the shared memory object)",
      seg.name()
    ),
  }
}

/// A reply of the wrong kind.
pub(crate) fn unexpected(expected: &str, got: &ControlMessage) -> Error {
  Error::Protocol { message: format!("expected {expected}, got {}", got.name()) }
}

/// One app's session with the broker of a namespace.
pub(crate) struct Session {
  pub ns: String,
  pub app_id: u32,
  pub ctl: ControlSegment,
  pub wait: WaitStrategy,
  /// The slot's generation when this app claimed it; once it changes the broker has fenced the app
  /// off the slot (bootstrap.md §3.2).
  generation: u32,
  request_ring: Ring,
  reply_ring: Ring,
  /// Serialises writers of the request ring (it has a single producer).
  request_lock: Mutex<()>,
  /// Request ids start at 1: 0 is reserved (bootstrap.md §4.1).
  next_request_id: AtomicU64,
  replies: Mutex<HashMap<i64, SyncSender<Result<ControlMessage>>>>,
  broker_gone: AtomicBool,
  /// Set once the app has posted `Unregister`; nothing may touch the slot afterwards.
  closing: AtomicBool,
  /// The session secret of this registration, set by [`Session::register`]; it seals every access key
  /// the app presents (bootstrap.md §5.5).
  sealing: OnceLock<seal::Session>,
}

impl Session {
  /// Maps the control segment of `ns` and claims a free slot (bootstrap.md §5.1). The app is not
  /// registered yet: that takes a reply, so it waits until a reactor reads the reply ring.
  pub fn open(ns: String, wait: WaitStrategy) -> Result<Session> {
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
    // Stable from the claim until the broker fences or frees the slot: the claim's CAS (Acquire)
    // observed the broker's last bump.
    let generation = ctl.slot_generation(app_id);
    let rings = ctl.request_ring(app_id).and_then(|req| Ok((req, ctl.reply_ring(app_id)?)));
    let (request_ring, reply_ring) = match rings {
      Ok(rings) => rings,
      Err(e) => {
        ctl.free_slot(app_id);
        return Err(ring_error(e));
      }
    };
    Ok(Session {
      ns,
      app_id,
      ctl,
      wait,
      generation,
      request_ring,
      reply_ring,
      request_lock: Mutex::new(()),
      next_request_id: AtomicU64::new(1),
      replies: Mutex::new(HashMap::new()),
      broker_gone: AtomicBool::new(false),
      closing: AtomicBool::new(false),
      sealing: OnceLock::new(),
    })
  }

  /// Registers the app (bootstrap.md §5.2); needs a reactor reading replies.
  pub fn register(&self, app_name: &str) -> Result<()> {
    let pid = sys::getpid();
    let request_id = self.request_id();
    // A fresh key pair for every registration: a reconnect gets a new session (bootstrap.md §5.5).
    let keys = KeyPair::generate().map_err(|e| Error::Io { message: format!("cannot draw a key pair: {e}") })?;
    let register = Register {
      request_id,
      app_name: app_name.to_string(),
      pid: pid as i64,
      start_time: sys::process_start_time(pid).unwrap_or(0) as i64,
      public_key: keys.public().to_vec(),
    };
    match self.request(request_id, register.into()) {
      Ok(ControlMessage::Registered(registered)) => {
        let sealing = keys.app_session(&registered.public_key).map_err(|e| Error::Protocol {
          message: format!("the broker's Registered carries an unusable public_key: {e}"),
        })?;
        let _ = self.sealing.set(sealing);
        Ok(())
      }
      Ok(other) => Err(unexpected("Registered", &other)),
      Err(Error::Timeout { .. }) if !self.ctl.broker_alive() => Err(Error::NoBroker { ns: self.ns.clone() }),
      Err(e) => Err(e),
    }
  }

  /// This app's doorbell: the broker, providers and callers ring it.
  pub fn doorbell(&self) -> Doorbell<'_> {
    self.ctl.app_doorbell(self.app_id)
  }

  /// Whether the broker is gone (noticed by the reactor).
  pub fn broker_gone(&self) -> bool {
    self.broker_gone.load(Ordering::Acquire)
  }

  /// Whether the broker has fenced this app off its slot (it dropped the app): the slot is no longer
  /// ours to read or write.
  pub fn fenced(&self) -> bool {
    self.ctl.fenced(self.app_id, self.generation)
  }

  /// Whether `Unregister` has been posted.
  pub fn closing(&self) -> bool {
    self.closing.load(Ordering::Acquire)
  }

  /// `BrokerGone` if the broker is gone.
  pub fn check_broker(&self) -> Result<()> {
    if self.broker_gone() {
      return Err(Error::BrokerGone { ns: self.ns.clone() });
    }
    Ok(())
  }

  /// `key` as the `key` field of the request `request_id` carries it: sealed with this registration's
  /// session (bootstrap.md §5.5), never in clear.
  pub fn seal_key(&self, request_id: i64, key: Option<&str>) -> Result<Option<Vec<u8>>> {
    let Some(key) = key else { return Ok(None) };
    let sealing = self
      .sealing
      .get()
      .ok_or_else(|| Error::Protocol { message: "an access key presented before the app registered".into() })?;
    Ok(Some(sealing.seal(request_id, key.as_bytes())))
  }

  /// A fresh request id (never 0).
  pub fn request_id(&self) -> i64 {
    self.next_request_id.fetch_add(1, Ordering::Relaxed) as i64
  }

  /// Writes a control record to the broker without waiting for an answer.
  pub fn post(&self, message: ControlMessage) -> Result<()> {
    self.check_broker()?;
    let payload = message.encode_frame_payload();
    let seg = self.ctl.segment();
    let _guard = lock(&self.request_lock);
    if self.fenced() {
      self.mark_broker_gone();
      return Err(Error::BrokerGone { ns: self.ns.clone() });
    }
    if self.closing() {
      // After Unregister the slot (and its request ring) may already belong to another app.
      return Err(Error::Closed { what: "the connection".into() });
    }
    if matches!(message, ControlMessage::Unregister(_)) {
      // The last record this app writes: later posts (from drops on other threads) must not follow.
      self.closing.store(true, Ordering::Release);
    }
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    let written = self.doorbell().wait_until(WaitStrategy::default(), Some(deadline), || {
      match self.request_ring.try_write_bytes(seg, IR_FRAME_KIND_CONTROL, 0, &payload) {
        Ok(()) => Some(Ok(())),
        Err(RingError::Full) => {
          // The broker rings our doorbell when it frees space.
          self.request_ring.set_producer_waiting(seg, true);
          (self.broker_gone() || self.fenced()).then(|| Err(Error::BrokerGone { ns: self.ns.clone() }))
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

  /// Sends a request and waits for the reply that carries `request_id`; a `Failed` reply becomes its
  /// error.
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
    match outcome?? {
      ControlMessage::Failed(f) => Err(self.failure(f)),
      reply => Ok(reply),
    }
  }

  fn failure(&self, f: Failed) -> Error {
    Error::from_remote(f.code, f.message, f.expected_fingerprint as u64, f.presented_fingerprint as u64, &self.ns)
  }

  /// Fails every outstanding request with `error` at once.
  fn fail_requests(&self, error: &Error) {
    for (_, tx) in lock(&self.replies).drain() {
      let _ = tx.try_send(Err(error.clone()));
    }
  }

  /// Reactor: reads every record waiting in the reply ring, completes the requests they answer and
  /// hands the events to `on_event`. A corrupt reply ring means the broker can no longer reach us:
  /// the session is marked broker-gone.
  pub fn read_replies(&self, mut on_event: impl FnMut(ControlMessage)) {
    let seg = self.ctl.segment();
    loop {
      if self.fenced() {
        // Dropped by the broker: what the ring holds now is not ours.
        self.mark_broker_gone();
        break;
      }
      let read =
        self.reply_ring.read(seg, &[IR_FRAME_KIND_CONTROL], |f| ControlMessage::decode_frame_payload(f.payload));
      match read {
        Ok(Some(Ok(message))) => {
          if let Some(event) = self.deliver(message) {
            on_event(event);
          }
        }
        // An undecodable reply answers one of the outstanding requests, we cannot tell which one.
        Ok(Some(Err(e))) => {
          self.fail_requests(&Error::Protocol { message: format!("the broker sent an undecodable reply: {e}") })
        }
        Ok(None) => break,
        Err(_) => {
          self.mark_broker_gone();
          break;
        }
      }
      if self.reply_ring.producer_waiting(seg) {
        self.ctl.broker_doorbell().ring();
      }
    }
  }

  /// Completes the request a reply answers; returns events (records without a request id).
  fn deliver(&self, message: ControlMessage) -> Option<ControlMessage> {
    match message.request_id() {
      None => Some(message),
      // A failure the broker could not attribute (bootstrap.md §4.1): it concerns every request.
      Some(0) => {
        if let ControlMessage::Failed(f) = message {
          self.fail_requests(&self.failure(f));
        }
        None
      }
      Some(id) => {
        if let Some(tx) = lock(&self.replies).remove(&id) {
          let _ = tx.try_send(Ok(message));
        }
        None
      }
    }
  }

  /// Whether a reply or event is waiting.
  pub fn has_replies(&self) -> bool {
    // A fenced app leaves its reply ring alone (it is not read any more).
    self.reply_ring.has_data(self.ctl.segment()) && !self.fenced()
  }

  /// The broker is gone: every waiting request fails with `BrokerGone`.
  pub fn mark_broker_gone(&self) {
    self.broker_gone.store(true, Ordering::Release);
    self.fail_requests(&Error::BrokerGone { ns: self.ns.clone() });
  }

  /// Posts `Unregister` (best effort, not awaited: the broker resets the slot's rings when it handles
  /// it, so nothing may read them afterwards). Nothing is posted after it.
  pub fn unregister(&self) {
    if !self.broker_gone() {
      let request_id = self.request_id();
      let _ = self.post(Unregister { request_id }.into());
    }
    self.closing.store(true, Ordering::Release);
  }
}
