//! The broker's state and its one loop: sleep on the doorbell, drain every app's request ring,
//! answer, and collect the resources of apps that left or died. Everything runs on this one thread
//! except the pidfd watcher, so the registry needs no locks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use impulse_ring_core::avro::fingerprint_hex;
use impulse_ring_core::broadcast::{self, ChannelConfig};
use impulse_ring_core::bus::{ControlSegment, LinkInfo, LinkSegment};
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::{Doorbell, WaitStrategy};
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::layout::*;
use impulse_ring_core::seal::KeyPair;
use impulse_ring_core::segment::{Segment, SegmentError};
use impulse_ring_core::{names, sys};
use tracing::{debug, error, info, warn};

use crate::admission::{self, fail, Failure};
use crate::keys::KeyHash;
use crate::liveness::Liveness;
use crate::lock::{LockError, NamespaceLock};
use crate::outbox::{self, encode_reply, Outbox};
use crate::registry::{App, Channel, Function, Link, Registry};

mod collect;
mod observe;

use observe::Event;

/// How [`Broker::run`] ended.
pub enum Ending {
  /// Asked to stop (SIGINT, SIGTERM): the namespace is cleaned up.
  Stopped,
  /// The control segment's name (or the lock's, taken by another broker) was removed or replaced: the
  /// broker left without touching any name that is not its own.
  Lost,
}

/// How the broker was asked to run.
pub struct Config {
  pub ns: String,
  pub mode: u32,
  pub max_apps: u32,
}

/// The broker of one namespace.
pub struct Broker {
  ns: String,
  mode: u32,
  ctl: Arc<ControlSegment>,
  /// Tells whether the control segment was truncated under the broker.
  /// The namespace lock; `None` only once released at shutdown.
  lock: Option<NamespaceLock>,
  liveness: Liveness,
  /// Whether pidfds work here; if not, liveness is polled.
  pidfds: bool,
  reg: Registry,
  /// Slots without a registration whose state is not free, since when they have been seen so.
  suspect_slots: HashMap<u32, Instant>,
  /// Fenced slots (bootstrap.md §3.2): the pid and start time of the dropped app whose exit frees each.
  fenced: HashMap<u32, (u32, u64)>,
}

impl Broker {
  /// Takes the namespace: refuses if a live broker owns it, cleans up after a dead one.
  pub fn start(config: Config) -> anyhow::Result<Broker> {
    let ns = config.ns.clone();
    let lock = match NamespaceLock::take(&ns, config.mode) {
      Ok(lock) => lock,
      Err(LockError::Held { pid }) => {
        let pid = pid.map_or_else(|| "unknown".to_string(), |pid| pid.to_string());
        let lock = names::lock(&ns);
        bail!("a broker (pid {pid}) already serves namespace `{ns}` (it holds /dev/shm{lock}); stop it first or choose another with --ns")
      }
      Err(LockError::Io(e)) => return Err(e).context(format!("cannot take the lock {}", names::lock(&ns))),
    };
    let ctl = match Broker::take_namespace(&config, &lock) {
      Ok(ctl) => ctl,
      Err(e) => {
        // Refused (or failed) under the lock: its file must not stay behind.
        lock.release();
        return Err(e);
      }
    };
    let liveness = Liveness::start(ctl.clone());
    let pidfds = sys::pidfd_open(sys::getpid()).is_ok();
    if !pidfds {
      warn!("pidfd_open is unavailable (Linux < 5.3?): app deaths are noticed within a second");
    }
    info!(ns = %ns, pid = sys::getpid(), "broker ready");
    Ok(Broker {
      ns,
      mode: config.mode,
      ctl,
      lock: Some(lock),
      liveness,
      pidfds,
      reg: Registry::default(),
      suspect_slots: HashMap::new(),
      fenced: HashMap::new(),
    })
  }

  /// Holding the lock: refuses if a broker without the lock (an older version) serves the namespace,
  /// removes what a dead broker left, and creates the control segment.
  fn take_namespace(config: &Config, lock: &NamespaceLock) -> anyhow::Result<Arc<ControlSegment>> {
    let ns = &config.ns;
    match ControlSegment::open(ns) {
      Ok(old) if old.broker_alive() => {
        let (pid, _) = old.broker();
        bail!("a broker (pid {pid}) already serves namespace `{ns}`; stop it first or choose another with --ns")
      }
      Err(SegmentError::VersionMismatch { .. }) | Err(SegmentError::Corrupt { .. }) => {
        // Another version (or a damaged segment): the segment header's creator words still tell
        // whether its broker lives.
        if let Some(pid) = live_creator(&names::control(ns)) {
          bail!("a broker (pid {pid}) of another wire version serves namespace `{ns}`; stop it first")
        }
      }
      Err(SegmentError::NotReady { .. }) => {
        // Another broker may be starting this very moment: give it a moment to finish.
        std::thread::sleep(Duration::from_millis(500));
        if let Some(pid) = live_creator(&names::control(ns)) {
          bail!("a broker (pid {pid}) already serves namespace `{ns}`")
        }
      }
      _ => {}
    }
    let mut stale = sys::shm_list(&names::namespace_prefix(ns)).context("cannot list /dev/shm")?;
    stale.retain(|name| format!("/{name}") != lock.name());
    for name in &stale {
      let _ = sys::shm_unlink(&format!("/{name}"));
    }
    if !stale.is_empty() {
      warn!(count = stale.len(), "removed segments left by a broker that died in namespace `{ns}`");
    }
    // The second name a dead broker left (it is outside the prefix the sweep above covers).
    let keep = names::control_keep(ns);
    let _ = sys::shm_unlink(&keep);
    let ctl = match ControlSegment::create(ns, config.max_apps, IR_DEFAULT_CONTROL_RING_CAPACITY, config.mode) {
      Ok(ctl) => Arc::new(ctl),
      Err(SegmentError::AlreadyExists { .. }) => bail!("another broker started in namespace `{ns}` at the same time"),
      Err(e) => return Err(e).context("cannot create the control segment"),
    };
    if let Err(e) = sys::shm_link(ctl.segment().name(), &keep) {
      warn!("cannot link /dev/shm{keep} ({e}): a removed control segment name could not be restored");
    }
    Ok(ctl)
  }

  /// Serves until `stop` is set (SIGINT/SIGTERM), then shuts down cleanly; or until the namespace's
  /// names stop referring to this broker's objects, then leaves.
  pub fn run(&mut self, stop: &AtomicBool) -> Ending {
    let mut last_beat = Instant::now();
    let ctl = self.ctl.clone();
    while !stop.load(Ordering::Relaxed) {
      if !self.check_truncation() {
        self.shutdown(false);
        return Ending::Lost;
      }
      // Requests first: an app that posted Unregister and exited at once has left, not died.
      let worked = self.serve_requests();
      for (slot, pid) in self.liveness.deaths() {
        if self.reg.apps.get(&slot).is_some_and(|app| app.pid == pid) {
          self.collect_app(slot, "exited");
        } else if self.fenced.get(&slot).is_some_and(|&(fenced, _)| fenced == pid) {
          self.unfence(slot);
        }
      }
      self.flush_outboxes();
      if last_beat.elapsed() >= Duration::from_secs(1) {
        if !self.names_still_ours() {
          self.shutdown(true);
          return Ending::Lost;
        }
        ctl.beat();
        self.check_liveness_by_polling();
        last_beat = Instant::now();
      }
      if !worked {
        let deadline = Instant::now() + Duration::from_secs(1);
        // Requests of a backlogged app wait for it to read its replies; an app that reads from a
        // reply ring with records waiting for it moves its head and rings this doorbell.
        let backlogged: HashSet<u32> =
          self.reg.apps.iter().filter(|(_, a)| a.outbox.backlogged()).map(|(&s, _)| s).collect();
        let waiting: Vec<(u32, u64)> = (self.reg.apps.iter().filter(|(_, a)| !a.outbox.is_empty()))
          .filter_map(|(&slot, _)| Some((slot, self.ctl.reply_ring(slot).ok()?.consumed(self.ctl.segment()))))
          .collect();
        let ctl = &*self.ctl;
        let liveness = &self.liveness;
        ctl.broker_doorbell().wait_until(WaitStrategy::Blocking, Some(deadline), || {
          let pending = (0..ctl.max_apps()).any(|slot| {
            matches!(ctl.slot_state(slot), IR_SLOT_CLAIMED | IR_SLOT_ACTIVE)
              && !backlogged.contains(&slot)
              // A ring that does not even open is corrupt: wake to drop the app now, not on the next turn.
              && ctl.request_ring(slot).map_or(true, |r| r.has_data(ctl.segment()))
          });
          let drained =
            waiting.iter().any(|&(slot, head)| ctl.reply_ring(slot).is_ok_and(|r| r.consumed(ctl.segment()) != head));
          (pending || drained || liveness.has_deaths() || stop.load(Ordering::Relaxed)).then_some(())
        });
      }
    }
    self.shutdown(false);
    Ending::Stopped
  }

  /// Whether the control segment's name still refers to our segment and the lock's to our lock; a
  /// removed name is restored (the control segment from its second name, the lock as a fresh file)
  /// unless another object has taken it. Logs what it finds.
  fn names_still_ours(&mut self) -> bool {
    let seg = self.ctl.segment();
    let ctl = seg.name();
    if !seg.name_is_ours() {
      let keep = names::control_keep(&self.ns);
      let restorable = sys::shm_identity(ctl).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        && sys::shm_identity(&keep).ok() == Some(seg.identity());
      if restorable && sys::shm_link(&keep, ctl).is_ok() && seg.name_is_ours() {
        warn!("/dev/shm{ctl} was removed by another process; restored it (apps can find the broker again)");
      } else {
        error!(
          "/dev/shm{ctl} was removed or replaced by another process and cannot be restored: apps can no longer \
           find this broker; shutting down (connected apps see BrokerGone)"
        );
        return false;
      }
    }
    let mode = self.mode;
    if let Some(lock) = self.lock.as_mut() {
      if !lock.name_is_ours() {
        if lock.restore(mode) {
          warn!("/dev/shm{} was removed by another process; restored it", lock.name());
        } else {
          error!("/dev/shm{} was removed and another broker holds it now; shutting down", lock.name());
          return false;
        }
      }
    }
    true
  }

  /// Drains every slot's request ring once; whether anything was handled.
  fn serve_requests(&mut self) -> bool {
    let mut worked = false;
    for slot in 0..self.ctl.max_apps() {
      let state = self.ctl.slot_state(slot);
      if state != IR_SLOT_CLAIMED && state != IR_SLOT_ACTIVE || self.backlogged(slot) {
        continue;
      }
      let Ok(ring) = self.ctl.request_ring(slot) else {
        warn!(slot, "request ring corrupt; dropping the app");
        self.drop_app(slot, "corrupted its request ring");
        continue;
      };
      // A bounded batch per slot keeps one chatty app from starving the others.
      for _ in 0..64 {
        if self.backlogged(slot) {
          break;
        }
        let seg = self.ctl.segment();
        // Scrubbed: a request may carry an access key, which must not stay in shared memory.
        let read = ring
          .read_scrubbed(seg, &[IR_FRAME_KIND_CONTROL], |frame| ControlMessage::decode_frame_payload(frame.payload));
        let message = match read {
          Ok(None) => break,
          Ok(Some(message)) => message,
          Err(e) => {
            warn!(slot, "{e}; dropping the app");
            self.drop_app(slot, "corrupted its request ring");
            break;
          }
        };
        worked = true;
        if ring.producer_waiting(self.ctl.segment()) {
          self.ctl.app_doorbell(slot).ring();
        }
        match message {
          Ok(message) => self.handle_guarded(slot, message),
          Err(e) => {
            warn!(slot, "undecodable control record: {e}");
            self.send(
              slot,
              Failed {
                request_id: 0,
                code: ErrorCode::Decode as i32,
                message: e.to_string(),
                expected_fingerprint: 0,
                presented_fingerprint: 0,
              }
              .into(),
            );
          }
        }
        if !self.reg.apps.contains_key(&slot) && self.ctl.slot_state(slot) != IR_SLOT_CLAIMED {
          break;
        }
      }
    }
    worked
  }

  /// Whether app `slot` has so many replies queued that its requests must wait.
  fn backlogged(&self, slot: u32) -> bool {
    self.reg.apps.get(&slot).is_some_and(|app| app.outbox.backlogged())
  }

  /// Handles one request so that a panic inside fails only that request: it is logged, the app gets
  /// `Failed`, and the bus goes on (the broker must outlive any one request, whatever a library does).
  fn handle_guarded(&mut self, slot: u32, message: ControlMessage) {
    let request_id = message.request_id().unwrap_or(0);
    let record = message.name();
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(slot, message))).is_err() {
      error!(slot, record, "handling a request panicked (a broker bug): the request failed, the bus goes on");
      let message = format!("the broker failed on this {record} (a bug, logged by the broker)");
      self.send(
        slot,
        Failed {
          request_id,
          code: ErrorCode::Protocol as i32,
          message,
          expected_fingerprint: 0,
          presented_fingerprint: 0,
        }
        .into(),
      );
    }
  }

  fn handle(&mut self, slot: u32, message: ControlMessage) {
    debug!(slot, record = message.name(), "request");
    // Test builds only: lets a test prove that a panicking request does not take the broker down.
    #[cfg(debug_assertions)]
    if std::env::var("IMPULSED_TEST_PANIC_ON").is_ok_and(|record| record == message.name()) {
      panic!("IMPULSED_TEST_PANIC_ON={}", message.name());
    }
    let registered = self.reg.apps.contains_key(&slot);
    let request_id = message.request_id().unwrap_or(0);
    let done = || -> Result<ControlMessage, Failure> { Ok(Done { request_id }.into()) };
    let record = message.name();
    let subject = observe::subject(&message);
    let reply: Result<ControlMessage, Failure> = match message {
      ControlMessage::Register(m) => self.register(slot, m).map(Into::into),
      ControlMessage::Unregister(_) => {
        // No reply: the app does not wait, and collecting it resets its reply ring. An app whose
        // Register failed gives its slot back the same way.
        if registered {
          self.collect_app(slot, "unregistered");
        } else {
          self.ctl.free_slot(slot);
        }
        return;
      }
      _ if !registered => Err(fail(ErrorCode::Protocol, "the first record on a slot must be Register")),
      ControlMessage::PublishChannel(m) => self.publish_channel(slot, m).map(Into::into),
      ControlMessage::Subscribe(m) => self.subscribe(slot, m).map(Into::into),
      ControlMessage::ExposeFunction(m) => self.expose_function(slot, m).map(Into::into),
      ControlMessage::ResolveFunction(m) => self.resolve_function(slot, m).map(Into::into),
      ControlMessage::List(_) => Ok(self.listing(request_id).into()),
      ControlMessage::Describe(m) => self.describe(m).map(Into::into),
      ControlMessage::Monitor(_) => {
        self.reg.monitors.insert(slot);
        done()
      }
      ControlMessage::Unsubscribe(m) => {
        if let Some(ch) = self.reg.channels.get(&(m.channel_id as u64)) {
          // A connector usually frees its cursor itself before it says so; the broker frees what is left.
          if broadcast::subscribers_of(&ch.seg, &ch.config, slot).contains(&(m.subscriber_index as u32)) {
            broadcast::free_subscriber(&ch.seg, &ch.config, m.subscriber_index as u32);
            Doorbell::at(&ch.seg, IR_CH_SPACE_DOORBELL).ring();
          }
          let name = ch.name.clone();
          self.notify(Event::Unsubscribed, slot, &name, format!("cursor {}", m.subscriber_index));
        }
        done()
      }
      ControlMessage::CloseChannel(m) => {
        let id = m.channel_id as u64;
        if self.reg.channels.get(&id).is_some_and(|c| c.owner == slot) {
          self.close_channel(id);
          done()
        } else {
          Err(fail(ErrorCode::UnknownChannel, format!("this app publishes no channel {id}")))
        }
      }
      ControlMessage::WithdrawFunction(m) => {
        let id = m.function_id as u64;
        if self.reg.functions.get(&id).is_some_and(|f| f.owner == slot) {
          self.withdraw_function(id);
          done()
        } else {
          Err(fail(ErrorCode::UnknownFunction, format!("this app exposes no function {id}")))
        }
      }
      other => Err(fail(ErrorCode::Protocol, format!("{} is not a request", other.name()))),
    };
    if let Err(f) = &reply {
      if registered {
        self.notify(Event::Refused, slot, &subject, format!("{record}: {}: {}", f.code.name(), f.message));
      }
    }
    let reply = reply.unwrap_or_else(|f| {
      debug!(slot, code = f.code.name(), "request failed: {}", f.message);
      Failed {
        request_id,
        code: f.code as i32,
        message: f.message,
        expected_fingerprint: f.expected as i64,
        presented_fingerprint: f.presented as i64,
      }
      .into()
    });
    self.send(slot, reply);
  }

  fn register(&mut self, slot: u32, m: Register) -> Result<Registered, Failure> {
    let id = m.request_id;
    if self.reg.apps.contains_key(&slot) {
      return Err(fail(ErrorCode::Protocol, "this slot is already registered"));
    }
    if let Some((stale, _)) = self.fenced.remove(&slot) {
      // Only a hand-written state word frees a fenced slot early; its fence is moot now.
      warn!(slot, stale, "a fenced slot was freed by hand and claimed again");
      self.liveness.unwatch(slot, stale);
    }
    let (pid, start) = self.ctl.slot_owner(slot);
    let alive = sys::process_alive_checked(pid, start).map_err(|e| out_of_fds_or_io("check the app's process", e))?;
    if pid as i64 != m.pid || start as i64 != m.start_time || !alive {
      return Err(fail(ErrorCode::Protocol, format!("slot {slot} holds pid {pid}, the request says {}", m.pid)));
    }
    // The pid in the slot must be the process that is registering, not one it names (pid 1, a
    // bystander): only a process that maps this namespace's control segment can be an app of it.
    match sys::process_maps_shm(pid, self.ctl.segment().name()) {
      Ok(true) => {}
      Ok(false) => {
        return Err(fail(ErrorCode::Protocol, format!("pid {pid} does not map this namespace's control segment")))
      }
      Err(e) if sys::out_of_fds(&e) => return Err(out_of_fds_or_io("check the app's mappings", e)),
      Err(e) => {
        return Err(fail(
          ErrorCode::Protocol,
          format!("cannot verify pid {pid} ({e}): the broker must be able to read /proc/{pid}/maps"),
        ))
      }
    }
    admission::check_app_name(&m.app_name)?;
    let keys =
      KeyPair::generate().map_err(|e| fail(ErrorCode::Io, format!("cannot draw a key pair for the app: {e}")))?;
    let session = keys
      .broker_session(&m.public_key)
      .map_err(|e| fail(ErrorCode::InvalidArgument, format!("Register's public_key: {e}")))?;
    if self.pidfds {
      match self.liveness.watch(slot, pid) {
        Ok(()) => {}
        Err(e) if sys::out_of_fds(&e) => return Err(out_of_fds_or_io("watch the app's process", e)),
        Err(e) => debug!(slot, pid, "pidfd_open failed ({e}); relying on polling for this app"),
      }
    }
    self.reg.apps.insert(slot, App { name: m.app_name.clone(), pid, start, session, outbox: Outbox::default() });
    self.ctl.set_slot_state(slot, IR_SLOT_ACTIVE);
    info!(app = %m.app_name, app_id = slot, pid, "app registered");
    self.notify(Event::AppJoined, slot, "", "");
    Ok(Registered {
      request_id: id,
      app_id: slot as i32,
      broker_pid: sys::getpid() as i64,
      public_key: keys.public().to_vec(),
    })
  }

  /// The key a request's `key` field carries, unsealed with the app's session (bootstrap.md §5.5).
  fn unseal(&self, slot: u32, request_id: i64, sealed: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let session = &self.reg.apps.get(&slot)?.session;
    sealed.map(|sealed| session.unseal(request_id, &sealed))
  }

  fn publish_channel(&mut self, slot: u32, m: PublishChannel) -> Result<ChannelPublished, Failure> {
    admission::check_name(&m.name)?;
    let fingerprint = admission::schema_fingerprint(&format!("schema of channel `{}`", m.name), &m.schema)?;
    if self.reg.channel_named(&m.name).is_some() {
      return Err(fail(ErrorCode::NameTaken, format!("channel `{}` is already published", m.name)));
    }
    let capacity = admission::channel_capacity(m.capacity)?;
    let channel_id = self.reg.new_id();
    let config = ChannelConfig {
      capacity,
      channel_id,
      fingerprint,
      policy: if m.lossy { IR_POLICY_LOSSY } else { IR_POLICY_BLOCK },
      max_subscribers: IR_DEFAULT_MAX_SUBSCRIBERS,
    };
    let name = names::channel(&self.ns, channel_id);
    let seg = Segment::create(&name, config.segment_size(), IR_KIND_CHANNEL, self.mode)
      .map_err(|e| fail(ErrorCode::Io, format!("cannot create the channel segment: {e}")))?;
    config.init(&seg);
    seg.mark_ready();
    info!(channel = %m.name, channel_id, fingerprint = %fingerprint_hex(fingerprint), capacity, lossy = m.lossy, "channel published");
    self.reg.channels.insert(
      channel_id,
      Channel {
        name: m.name.clone(),
        owner: slot,
        key: self.unseal(slot, m.request_id, m.key).as_deref().map(KeyHash::new),
        schema: m.schema,
        seg,
        config,
      },
    );
    let policy = if m.lossy { "lossy" } else { "block" };
    self.notify(Event::ChannelPublished, slot, &m.name, format!("id {channel_id}, {capacity} bytes, {policy}"));
    Ok(ChannelPublished {
      request_id: m.request_id,
      channel_id: channel_id as i64,
      segment: name,
      fingerprint: fingerprint as i64,
      capacity: capacity as i64,
      max_payload: config.max_payload() as i64,
    })
  }

  fn subscribe(&mut self, slot: u32, m: Subscribe) -> Result<Subscribed, Failure> {
    let presented = admission::schema_fingerprint(&format!("schema for channel `{}`", m.name), &m.schema)?;
    let Some((channel_id, ch)) = self.reg.channel_named(&m.name) else {
      return Err(fail(ErrorCode::UnknownChannel, format!("no channel named `{}` is published", m.name)));
    };
    let key = self.unseal(slot, m.request_id, m.key);
    admission::admit_subscriber(&m.name, &ch.key, key.as_deref(), ch.config.fingerprint, presented)?;
    let Some(index) = broadcast::reserve_subscriber(&ch.seg, &ch.config, slot) else {
      return Err(fail(
        ErrorCode::LimitReached,
        format!("channel `{}` has {} subscribers already", m.name, ch.config.max_subscribers),
      ));
    };
    info!(channel = %m.name, app_id = slot, index, "subscribed");
    let reply = Subscribed {
      request_id: m.request_id,
      channel_id: channel_id as i64,
      segment: ch.seg.name().to_string(),
      subscriber_index: index as i32,
      fingerprint: ch.config.fingerprint as i64,
      lossy: ch.config.policy == IR_POLICY_LOSSY,
    };
    self.notify(Event::Subscribed, slot, &m.name, format!("cursor {index}"));
    Ok(reply)
  }

  fn expose_function(&mut self, slot: u32, m: ExposeFunction) -> Result<FunctionExposed, Failure> {
    admission::check_name(&m.name)?;
    let request_fp =
      admission::schema_fingerprint(&format!("request schema of function `{}`", m.name), &m.request_schema)?;
    let response_fp =
      admission::schema_fingerprint(&format!("response schema of function `{}`", m.name), &m.response_schema)?;
    if self.reg.function_named(&m.name).is_some() {
      return Err(fail(ErrorCode::NameTaken, format!("function `{}` is already exposed", m.name)));
    }
    let function_id = self.reg.new_id();
    info!(function = %m.name, function_id, app_id = slot, "function exposed");
    self.reg.functions.insert(
      function_id,
      Function {
        name: m.name.clone(),
        owner: slot,
        key: self.unseal(slot, m.request_id, m.key).as_deref().map(KeyHash::new),
        request_schema: m.request_schema,
        response_schema: m.response_schema,
        request_fp,
        response_fp,
      },
    );
    self.notify(Event::FunctionExposed, slot, &m.name, format!("id {function_id}"));
    Ok(FunctionExposed {
      request_id: m.request_id,
      function_id: function_id as i64,
      request_fingerprint: request_fp as i64,
      response_fingerprint: response_fp as i64,
    })
  }

  fn resolve_function(&mut self, slot: u32, m: ResolveFunction) -> Result<FunctionResolved, Failure> {
    let request_fp =
      admission::schema_fingerprint(&format!("request schema for function `{}`", m.name), &m.request_schema)?;
    let response_fp =
      admission::schema_fingerprint(&format!("response schema for function `{}`", m.name), &m.response_schema)?;
    let Some((function_id, f)) = self.reg.function_named(&m.name) else {
      return Err(fail(ErrorCode::UnknownFunction, format!("no function named `{}` is exposed", m.name)));
    };
    let expected = (f.request_fp, f.response_fp);
    let key = self.unseal(slot, m.request_id, m.key);
    admission::admit_caller(&m.name, &f.key, key.as_deref(), expected, (request_fp, response_fp))?;
    let provider = f.owner;
    let link_id = self.reg.new_id();
    let name = names::link(&self.ns, link_id);
    let info = LinkInfo { link_id, function_id, caller: slot, provider, request_fp, response_fp };
    let seg = LinkSegment::create(&name, info, IR_DEFAULT_LINK_CAPACITY, self.mode)
      .map_err(|e| fail(ErrorCode::Io, format!("cannot create the call link: {e}")))?;
    let max_payload = seg.request_ring().map(|r| r.max_payload()).unwrap_or(0);
    self.reg.links.insert(link_id, Link { function_id, caller: slot, provider, seg });
    self.send(
      provider,
      LinkOpened { function_id: function_id as i64, link_id: link_id as i64, segment: name.clone() }.into(),
    );
    debug!(function = %m.name, link_id, caller = slot, provider, "link opened");
    self.notify(Event::FunctionResolved, slot, &m.name, format!("link {link_id}"));
    Ok(FunctionResolved {
      request_id: m.request_id,
      function_id: function_id as i64,
      link_id: link_id as i64,
      segment: name,
      request_fingerprint: request_fp as i64,
      response_fingerprint: response_fp as i64,
      max_payload: max_payload as i64,
    })
  }

  fn listing(&self, request_id: i64) -> Listing {
    Listing {
      request_id,
      apps: self
        .reg
        .apps
        .iter()
        .map(|(&slot, a)| AppInfo { app_id: slot as i32, name: a.name.clone(), pid: a.pid as i64 })
        .collect(),
      channels: self
        .reg
        .channels
        .iter()
        .map(|(&id, c)| ChannelInfo {
          channel_id: id as i64,
          name: c.name.clone(),
          owner_app_id: c.owner as i32,
          fingerprint: c.config.fingerprint as i64,
          capacity: c.config.capacity as i64,
          lossy: c.config.policy == IR_POLICY_LOSSY,
          subscribers: broadcast::subscriber_count(&c.seg, &c.config) as i32,
          published: broadcast::published(&c.seg) as i64,
        })
        .collect(),
      functions: self
        .reg
        .functions
        .iter()
        .map(|(&id, f)| FunctionInfo {
          function_id: id as i64,
          name: f.name.clone(),
          owner_app_id: f.owner as i32,
          request_fingerprint: f.request_fp as i64,
          response_fingerprint: f.response_fp as i64,
        })
        .collect(),
    }
  }

  /// Queues `message` for app `slot` and rings its doorbell. A reply too large for the reply ring is
  /// replaced by `Failed` with `TooLarge` ([`encode_reply`]).
  fn send(&mut self, slot: u32, message: ControlMessage) {
    let Ok(ring) = self.ctl.reply_ring(slot) else { return };
    let payload = encode_reply(&message, ring.max_payload());
    let Some(app) = self.reg.apps.get_mut(&slot) else {
      // An app that is not registered yet (a failed Register) still gets its answer, directly.
      let _ = ring.try_write_bytes(self.ctl.segment(), IR_FRAME_KIND_CONTROL, 0, &payload);
      self.ctl.app_doorbell(slot).ring();
      return;
    };
    if !app.outbox.push(payload) {
      warn!(
        slot,
        record = message.name(),
        "dropped a record for an app that has not read its replies ({} bytes queued)",
        outbox::MAX_BYTES
      );
    }
    self.flush_outbox(slot);
  }

  fn flush_outboxes(&mut self) {
    let slots: Vec<u32> = self.reg.apps.iter().filter(|(_, a)| !a.outbox.is_empty()).map(|(&s, _)| s).collect();
    for slot in slots {
      self.flush_outbox(slot);
    }
  }

  /// Writes as much of the app's outbox as its reply ring takes, and wakes the app if anything was
  /// written. The app rings the broker's doorbell when it reads from a ring the broker waits on.
  fn flush_outbox(&mut self, slot: u32) {
    let Some(app) = self.reg.apps.get_mut(&slot) else { return };
    let Ok(ring) = self.ctl.reply_ring(slot) else { return };
    if app.outbox.flush(slot, &ring, self.ctl.segment()) {
      self.ctl.app_doorbell(slot).ring();
    }
  }
}

/// The failure for a system call that failed while admitting an app: `LimitReached` (logged) when the
/// broker is out of file descriptors, which is not the app's fault, else `Io`.
fn out_of_fds_or_io(what: &str, e: std::io::Error) -> Failure {
  if sys::out_of_fds(&e) {
    warn!("out of file descriptors: cannot {what} ({e}); refusing new registrations until fds are free");
    fail(ErrorCode::LimitReached, format!("the broker is out of file descriptors and cannot {what}; try again later"))
  } else {
    fail(ErrorCode::Io, format!("the broker cannot {what}: {e}"))
  }
}

/// The pid of the live process that created the segment `name`, read from its header with plain
/// reads (no layout assumption beyond the segment header, which every version shares).
fn live_creator(name: &str) -> Option<u32> {
  use std::io::Read;
  let mut header = [0u8; IR_SEG_HEADER_SIZE];
  sys::shm_open(name).ok()?.read_exact(&mut header).ok()?;
  let pid = u32::from_le_bytes(header[IR_SEG_CREATOR_PID..IR_SEG_CREATOR_PID + 4].try_into().ok()?);
  let start = u64::from_le_bytes(header[IR_SEG_CREATOR_START..IR_SEG_CREATOR_START + 8].try_into().ok()?);
  sys::process_alive(pid, start).then_some(pid)
}
