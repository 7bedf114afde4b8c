//! What the broker's tests share: a real `impulsed` in a namespace of the test's own (stopped, and its
//! namespace checked empty in `/dev/shm`, when dropped), and a raw app that speaks the control protocol
//! record by record, so a test can send what no connector would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::layout::IR_FRAME_KIND_CONTROL;
use impulse_ring_core::seal::{KeyPair, Session};
use impulse_ring_core::sys;

/// A broker process serving a namespace of its own.
pub struct Broker {
  pub ns: String,
  child: Child,
  log: Arc<Mutex<Vec<String>>>,
  /// Reads the broker's stderr into `log` until it closes.
  reader: Option<std::thread::JoinHandle<()>>,
  /// Whether this broker served its namespace (a refused second broker must not clean it up).
  served: bool,
}

impl Broker {
  /// Starts `impulsed` for `test` with extra `args` and waits until its control segment serves.
  pub fn start(test: &str, args: &[&str]) -> Broker {
    let ns = impulse_ring_test_support::ns::namespace(&format!("bh-{test}"));
    let mut broker = Broker::spawn(&ns, args);
    broker.wait_ready();
    broker
  }

  /// Starts `impulsed` in `ns` without waiting for it.
  pub fn spawn(ns: &str, args: &[&str]) -> Broker {
    Broker::spawn_with_env(ns, args, &[])
  }

  /// Starts `impulsed` in `ns` with extra environment variables, without waiting for it.
  pub fn spawn_with_env(ns: &str, args: &[&str], env: &[(&str, &str)]) -> Broker {
    let mut command = Command::new(env!("CARGO_BIN_EXE_impulsed"));
    command
      .envs(env.iter().copied())
      .args(["--ns", ns, "--log-level", "info"])
      .args(args)
      .stdin(Stdio::null())
      .stdout(Stdio::null())
      .stderr(Stdio::piped());
    Broker::from_command(ns, command)
  }

  /// Runs `command` (an `impulsed` for `ns` with stderr piped), without waiting for it.
  pub fn from_command(ns: &str, mut command: Command) -> Broker {
    let mut child = command.spawn().expect("start impulsed");
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    let stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
      for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        lines.lock().unwrap().push(line);
      }
    });
    Broker { ns: ns.to_string(), child, log, reader: Some(reader), served: false }
  }

  /// How many file descriptors the broker holds open.
  pub fn fd_count(&self) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", self.pid())).expect("/proc/PID/fd").count()
  }

  /// Waits until the control segment carries this broker's pid.
  pub fn wait_ready(&mut self) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = self.pid();
    while !ControlSegment::open(&self.ns).is_ok_and(|ctl| ctl.broker().0 == pid) {
      assert!(self.alive(), "impulsed exited before it served `{}`\n{}", self.ns, self.log());
      assert!(Instant::now() < deadline, "impulsed did not come up in 10 s\n{}", self.log());
      std::thread::sleep(Duration::from_millis(5));
    }
    self.served = true;
  }

  pub fn pid(&self) -> u32 {
    self.child.id()
  }

  pub fn alive(&mut self) -> bool {
    self.child.try_wait().expect("try_wait").is_none()
  }

  /// Everything the broker logged so far.
  pub fn log(&self) -> String {
    self.log.lock().unwrap().join("\n")
  }

  /// Waits up to `timeout` for a log line containing `text`.
  pub fn wait_log(&self, text: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
      if self.log.lock().unwrap().iter().any(|line| line.contains(text)) {
        return true;
      }
      if Instant::now() >= deadline {
        return false;
      }
      std::thread::sleep(Duration::from_millis(10));
    }
  }

  /// Waits up to `timeout` for the broker to exit; its exit code.
  pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
      if let Some(status) = self.child.try_wait().expect("try_wait") {
        // Its last lines may still be in the pipe: the log is complete once the reader saw EOF.
        if let Some(reader) = self.reader.take() {
          let _ = reader.join();
        }
        return Some(status.code().unwrap_or(-1));
      }
      if Instant::now() >= deadline {
        return None;
      }
      std::thread::sleep(Duration::from_millis(5));
    }
  }

  /// Sends SIGTERM.
  pub fn terminate(&self) {
    let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
  }

  /// Stops the broker with SIGTERM, asserts a clean exit and that the namespace left nothing behind.
  pub fn stop(mut self) {
    self.terminate();
    let code = self.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "impulsed did not stop cleanly\n{}", self.log());
    let left = namespace_objects(&self.ns);
    assert!(left.is_empty(), "the broker left {left:?} in /dev/shm\n{}", self.log());
  }
}

impl Drop for Broker {
  fn drop(&mut self) {
    if self.child.try_wait().ok().flatten().is_none() {
      let _ = self.child.kill();
      let _ = self.child.wait();
    }
    if !self.served {
      return;
    }
    // A failed test must not leave its namespace behind either; only its own names are touched.
    for name in namespace_objects(&self.ns) {
      let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
    }
    // And the broker's second name of its control segment, outside the namespace prefix.
    let _ = std::fs::remove_file(format!("/dev/shm/.impulse-ring.{}.ctl", self.ns));
  }
}

/// The names in `/dev/shm` that belong to namespace `ns`.
pub fn namespace_objects(ns: &str) -> Vec<String> {
  let prefix = format!("impulse-ring.{ns}.");
  let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
    .expect("/dev/shm")
    .filter_map(|e| e.ok()?.file_name().into_string().ok())
    .filter(|n| n.starts_with(&prefix))
    .collect();
  names.sort();
  names
}

/// An app that writes control records by hand into the slot it claimed.
pub struct RawApp {
  pub ctl: ControlSegment,
  pub slot: u32,
  next_id: i64,
  /// The `Registered` reply, until `try_register` takes it.
  registered: Option<ControlMessage>,
  /// The session secret of the registration (bootstrap.md §5.5), once registered.
  pub session: Option<Session>,
}

impl RawApp {
  /// Claims a slot in `ns` without registering.
  pub fn claim(ns: &str) -> RawApp {
    RawApp::try_claim(ns).expect("a free slot")
  }

  /// Claims a slot in `ns` without registering; `Err` when every slot is taken.
  pub fn try_claim(ns: &str) -> Result<RawApp, ()> {
    // Another test run sweeping /dev/shm may remove the name; the broker restores it within a second.
    let deadline = Instant::now() + Duration::from_secs(3);
    let ctl = loop {
      match ControlSegment::open(ns) {
        Ok(ctl) => break ctl,
        Err(impulse_ring_core::segment::SegmentError::NotFound { .. }) if Instant::now() < deadline => {
          std::thread::sleep(Duration::from_millis(20))
        }
        Err(e) => panic!("open the control segment: {e:?}"),
      }
    };
    let slot = ctl.claim_slot().ok_or(())?;
    Ok(RawApp { ctl, slot, next_id: 1, registered: None, session: None })
  }

  /// Gives an unregistered claim back (Unregister frees it).
  pub fn give_back(self) {
    self.unregister();
  }

  /// Claims a slot and registers as `name`.
  pub fn register(ns: &str, name: &str) -> RawApp {
    match RawApp::try_register(ns, name) {
      Ok(app) => app,
      Err(reply) => panic!("expected Registered, got {reply:?}"),
    }
  }

  /// Claims a slot and registers as `name`; the reply when it is not `Registered` (the slot is then
  /// given back).
  pub fn try_register(ns: &str, name: &str) -> Result<RawApp, ControlMessage> {
    let keys = KeyPair::generate().expect("random bytes for a key pair");
    RawApp::try_register_with_key(ns, name, &keys.public()).map(|mut app| {
      let ControlMessage::Registered(r) = app.registered.take().expect("the reply") else { unreachable!() };
      app.session = Some(keys.app_session(&r.public_key).expect("the broker's public key makes a session"));
      app
    })
  }

  /// Claims a slot and registers as `name` presenting `public_key`; the reply when it is not
  /// `Registered` (the slot is then given back).
  pub fn try_register_with_key(ns: &str, name: &str, public_key: &[u8]) -> Result<RawApp, ControlMessage> {
    let mut app = RawApp::claim(ns);
    let pid = sys::getpid();
    let register = Register {
      request_id: 0,
      app_name: name.into(),
      pid: pid as i64,
      start_time: sys::process_start_time(pid).unwrap_or(0) as i64,
      public_key: public_key.to_vec(),
    };
    match app.request(register.into()) {
      ControlMessage::Registered(r) => {
        assert_eq!(r.app_id as u32, app.slot);
        app.registered = Some(r.into());
        Ok(app)
      }
      other => {
        app.unregister();
        Err(other)
      }
    }
  }

  /// `key` sealed for the request `request_id` with this app's session (bootstrap.md §5.5).
  pub fn seal(&self, request_id: i64, key: &str) -> Vec<u8> {
    self.session.as_ref().expect("a registered app").seal(request_id, key.as_bytes())
  }

  /// The id the next [`RawApp::request`] will use.
  pub fn next_id(&self) -> i64 {
    self.next_id + 1
  }

  /// A fresh request id.
  pub fn id(&mut self) -> i64 {
    self.next_id += 1;
    self.next_id
  }

  /// Writes `message` into the request ring (waiting while it is full) and rings the broker.
  pub fn send(&self, message: &ControlMessage) {
    let ring = self.ctl.request_ring(self.slot).expect("request ring");
    let payload = message.encode_frame_payload();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
      match ring.try_write_bytes(self.ctl.segment(), IR_FRAME_KIND_CONTROL, 0, &payload) {
        Ok(()) => break,
        Err(impulse_ring_core::frame::RingError::Full) if Instant::now() < deadline => {
          self.ctl.broker_doorbell().ring();
          std::thread::sleep(Duration::from_millis(1));
        }
        Err(e) => panic!("cannot write a request: {e}"),
      }
    }
    self.ctl.broker_doorbell().ring();
  }

  /// Writes `message` if the request ring has room (and rings the broker); whether it did.
  pub fn try_send(&self, message: &ControlMessage) -> bool {
    let ring = self.ctl.request_ring(self.slot).expect("request ring");
    let written = ring.try_write_bytes(self.ctl.segment(), IR_FRAME_KIND_CONTROL, 0, &message.encode_frame_payload());
    self.ctl.broker_doorbell().ring();
    match written {
      Ok(()) => true,
      Err(impulse_ring_core::frame::RingError::Full) => false,
      Err(e) => panic!("cannot write a request: {e}"),
    }
  }

  /// The next reply or event, waiting up to `timeout`.
  pub fn recv(&self, timeout: Duration) -> Option<ControlMessage> {
    let ring = self.ctl.reply_ring(self.slot).expect("reply ring");
    let deadline = Instant::now() + timeout;
    loop {
      let read = ring
        .read(self.ctl.segment(), &[IR_FRAME_KIND_CONTROL], |f| ControlMessage::decode_frame_payload(f.payload))
        .expect("reply ring readable");
      if let Some(message) = read {
        if ring.producer_waiting(self.ctl.segment()) {
          self.ctl.broker_doorbell().ring();
        }
        return Some(message.expect("a reply that decodes"));
      }
      if Instant::now() >= deadline {
        return None;
      }
      std::thread::sleep(Duration::from_millis(1));
    }
  }

  /// Writes `message` into the request ring without ringing the broker (it reads it on its next turn,
  /// within a second, or when something rings); whether there was room.
  pub fn write_quietly(&self, message: &ControlMessage) -> bool {
    let ring = self.ctl.request_ring(self.slot).expect("request ring");
    match ring.try_write_bytes(self.ctl.segment(), IR_FRAME_KIND_CONTROL, 0, &message.encode_frame_payload()) {
      Ok(()) => true,
      Err(impulse_ring_core::frame::RingError::Full) => false,
      Err(e) => panic!("cannot write a request: {e}"),
    }
  }

  /// Sends a request with a fresh id (overwriting the one in `message`) and returns its reply; other
  /// records that arrive first (events) are skipped.
  pub fn request(&mut self, mut message: ControlMessage) -> ControlMessage {
    let id = self.id();
    set_request_id(&mut message, id);
    self.request_as_is(message)
  }

  /// Sends `message` with the request id it carries and returns its reply (events are skipped).
  pub fn request_as_is(&mut self, message: ControlMessage) -> ControlMessage {
    self.send(&message);
    self.reply_to(message.request_id().expect("a request"))
  }

  /// The reply to the request `id`, waiting up to 10 s; other records that arrive first (events,
  /// other replies) are skipped.
  pub fn reply_to(&self, id: i64) -> ControlMessage {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(reply) = self.recv(deadline.saturating_duration_since(Instant::now())) {
      if reply.request_id() == Some(id) {
        return reply;
      }
    }
    panic!("no reply to request {id} within 10 s");
  }

  /// Gives the slot back the way a connector does.
  pub fn unregister(mut self) {
    let id = self.id();
    self.send(&Unregister { request_id: id }.into());
  }
}

/// The failure code and message of a `Failed` reply; panics on anything else.
pub fn failure(reply: &ControlMessage) -> (ErrorCode, String) {
  match reply {
    ControlMessage::Failed(f) => (ErrorCode::from_i32(f.code).expect("a known code"), f.message.clone()),
    other => panic!("expected Failed, got {other:?}"),
  }
}

fn set_request_id(message: &mut ControlMessage, id: i64) {
  use ControlMessage as M;
  match message {
    M::Register(m) => m.request_id = id,
    M::PublishChannel(m) => m.request_id = id,
    M::Subscribe(m) => m.request_id = id,
    M::Unsubscribe(m) => m.request_id = id,
    M::CloseChannel(m) => m.request_id = id,
    M::ExposeFunction(m) => m.request_id = id,
    M::ResolveFunction(m) => m.request_id = id,
    M::WithdrawFunction(m) => m.request_id = id,
    M::List(m) => m.request_id = id,
    M::Unregister(m) => m.request_id = id,
    _ => {}
  }
}
