//! End-to-end tests with real processes: each test starts its own `impulsed` in a namespace of its
//! own, drives `examples/testee` processes (publisher, subscriber, provider, caller) against it, and
//! checks that the broker leaves nothing of the namespace in `/dev/shm` when it stops.
//!
//! Needs the broker and the testee built first: `cargo build -p impulsed -p impulse-ring-connector --examples`
//! (ringctl does it before testing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use impulse_ring_connector::ErrorCode;
use impulse_ring_core::bus::ControlSegment;
use impulse_ring_test_support::{broker, duct, ns, shm, Broker, Child, Echo, Signal};

/// Exit code of a testee that failed with the error `code` (see the testee's docs).
fn exit_code_of(code: ErrorCode) -> i32 {
  10 + code.as_i32()
}

/// `target/<profile>`, where the test binary's `deps/` directory lives.
fn profile_dir() -> PathBuf {
  let exe = std::env::current_exe().expect("the test binary's path");
  exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

fn binary(path: PathBuf) -> PathBuf {
  assert!(path.exists(), "{} is missing: run `cargo build -p impulsed --examples` first", path.display());
  path
}

fn impulsed() -> PathBuf {
  binary(profile_dir().join("impulsed"))
}

fn testee() -> PathBuf {
  binary(profile_dir().join("examples").join("testee"))
}

/// A child process (a testee, or a second broker), killed and reaped when dropped. The checks panic
/// with the child's transcript.
struct Proc(Child);

impl Proc {
  fn spawn(name: &str, expr: duct::Expression) -> Proc {
    Proc(Child::start(name, expr, Echo::Quiet).unwrap_or_else(|e| panic!("cannot start {name}: {e}")))
  }

  fn signal(&self, signal: Signal) {
    self.0.signal(signal).unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.0.name()));
  }

  fn lines(&self) -> Vec<String> {
    self.0.lines()
  }

  fn transcript(&self) -> String {
    self.0.transcript()
  }

  /// Waits for an output line that starts with `prefix` and returns it.
  fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
    self.0.wait_line(prefix, timeout).unwrap_or_else(|e| panic!("{e}"))
  }

  /// Writes `line` to the process's stdin.
  fn send_line(&mut self, line: &str) {
    self.0.send_line(line).unwrap_or_else(|e| panic!("cannot write to {}: {e}", self.0.name()));
  }

  fn try_exit(&self) -> Option<std::process::ExitStatus> {
    self.0.try_exit().unwrap_or_else(|e| panic!("cannot poll {}: {e}", self.0.name()))
  }

  /// Waits for the process to exit; its exit code (`None` if a signal ended it).
  fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
    self.0.wait_exit(timeout).unwrap_or_else(|e| panic!("{e}")).code()
  }

  /// Waits for a successful exit and returns the output.
  fn succeeds(&mut self, timeout: Duration) -> Vec<String> {
    let code = self.wait_exit(timeout);
    assert_eq!(code, Some(0), "{} failed\n{}", self.0.name(), self.transcript());
    self.lines()
  }

  /// Waits for the exit that the error `code` causes and returns its `error ...` line.
  fn fails_with(&mut self, code: ErrorCode, timeout: Duration) -> String {
    let exit = self.wait_exit(timeout);
    let line = format!("error {}:", code.name());
    assert_eq!(
      exit,
      Some(exit_code_of(code)),
      "{} should have failed with {}\n{}",
      self.0.name(),
      code.name(),
      self.transcript()
    );
    self.wait_line(&line, Duration::ZERO)
  }
}

/// One test's bus: a namespace, its broker, and the check that the namespace leaves nothing in
/// `/dev/shm`. Declare it before the processes it serves, so they are dropped (killed) first.
struct Bus {
  ns: String,
  broker: Option<Broker>,
}

impl Bus {
  fn start(test: &str) -> Bus {
    let mut bus = Bus { ns: ns::namespace(&format!("e2e-{test}")), broker: None };
    bus.start_broker();
    bus
  }

  fn start_broker(&mut self) {
    assert!(self.broker.is_none(), "a broker is running already");
    // Once the control segment opens with this broker's pid in it, apps may register (a dead
    // broker's segment may still be there until the new one cleans up).
    let ns = self.ns.clone();
    let serves = move |pid: u32| ControlSegment::open(&ns).is_ok_and(|ctl| ctl.broker().0 == pid);
    let started = Broker::start_when(&impulsed(), &self.ns, &["--log-level", "warn"], Echo::Quiet, &serves, &|| false);
    self.broker = Some(started.unwrap_or_else(|e| panic!("{e}")));
  }

  /// Another broker process for the namespace, not waited for.
  fn spawn_broker(&self) -> Proc {
    Proc::spawn("impulsed", duct::cmd(impulsed(), ["--ns", &self.ns, "--log-level", "warn"]))
  }

  fn broker(&mut self) -> &Child {
    self.broker.as_ref().expect("a running broker").child()
  }

  /// Stops the broker with `signal` and waits for it; its exit code. What it leaves in `/dev/shm` stays
  /// there for the test to look at.
  fn stop_broker(&mut self, signal: Signal) -> Option<i32> {
    let mut broker = Proc(self.broker.take().expect("a running broker").into_child());
    broker.signal(signal);
    broker.wait_exit(Duration::from_secs(10))
  }

  fn testee(&self, name: &str, role: &str, args: &[&str]) -> Proc {
    let argv: Vec<&str> = [role].into_iter().chain(args.iter().copied()).collect();
    Proc::spawn(name, duct::cmd(testee(), argv).env("IMPULSE_RING_NS", &self.ns))
  }

  /// Names in `/dev/shm` that belong to the namespace.
  fn segments(&self) -> Vec<String> {
    shm::segments_of(&self.ns)
  }

  /// Waits until no channel segment of the namespace is left.
  fn wait_no_channel_segment(&self, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while self.segments().iter().any(|s| s.contains(".ch.")) {
      assert!(Instant::now() < deadline, "channel segments left: {:?}", self.segments());
      std::thread::sleep(Duration::from_millis(5));
    }
  }
}

impl Drop for Bus {
  fn drop(&mut self) {
    // Stops the broker (it must exit 0 on SIGTERM) and leaves /dev/shm as we found it, even when the
    // test fails; anything the namespace still held is named.
    let checked = match self.broker.take() {
      Some(broker) => broker.stop_clean(Duration::from_secs(10)),
      None => broker::clean(&self.ns),
    };
    if let Err(problems) = checked {
      if !std::thread::panicking() {
        panic!("{problems}");
      }
    }
  }
}

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(10);
const SOON: Duration = Duration::from_secs(1);

/// Lets a publisher started with `--wait-go` publish once every subscriber has joined the channel
/// (the broker's listing counts a subscriber before its cursor joins, so it cannot tell).
fn go_when_joined(publisher: &mut Proc, subscribers: &[&Proc]) {
  for subscriber in subscribers {
    subscriber.wait_line("subscribed", SHORT);
  }
  publisher.send_line("go");
}

/// The number `what` in a line like `what 42 ...` (word after `what`).
/// A publisher (holding on after 10 messages), its subscriber, a provider and a caller with calls
/// in flight: everything a broker's departure must reach.
fn start_busy_apps(bus: &mut Bus) -> [Proc; 4] {
  let mut publisher = bus.testee("publisher", "publisher", &["--count", "10", "--wait-go", "--hold-ms", "60000"]);
  let subscriber = bus.testee("subscriber", "subscriber", &["--count", "10", "--expect-closed"]);
  go_when_joined(&mut publisher, &[&subscriber]);
  let provider = bus.testee("provider", "provider", &[]);
  provider.wait_line("ready", SHORT);
  let caller = bus.testee("caller", "caller", &["--count", "100000000", "--in-flight", "2"]);
  publisher.wait_line("published", SHORT);
  caller.wait_line("calling", SHORT);
  [publisher, subscriber, provider, caller]
}

/// After the broker is gone: the publisher, which holds on so as not to close its channel itself,
/// reports at once; the others fail with BrokerGone.
fn expect_broker_gone(publisher: &mut Proc, others: [&mut Proc; 3]) {
  publisher.wait_line("error BrokerGone:", SHORT);
  for app in others {
    app.fails_with(ErrorCode::BrokerGone, SHORT);
  }
}

fn number_after(line: &str, what: &str) -> u64 {
  let mut words = line.split_whitespace();
  words.find(|w| *w == what).expect(what);
  words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no number after `{what}` in `{line}`"))
}

#[test]
fn one_subscriber_gets_a_million_messages_once_in_order_intact() {
  let bus = Bus::start("sub1");
  let mut publisher = bus.testee("publisher", "publisher", &["--count", "1000000", "--wait-go"]);
  let mut subscriber = bus.testee("subscriber", "subscriber", &["--count", "1000000"]);
  go_when_joined(&mut publisher, &[&subscriber]);
  assert!(publisher.succeeds(LONG).contains(&"published 1000000".to_string()));
  assert!(subscriber.succeeds(LONG).contains(&"received 1000000".to_string()));
}

/// One million messages fanned out to four subscribers: 17 to 30 s on two busy cores in a debug build,
/// so the full million stays (the brief allowed 250,000 here beyond ~60 s).
/// The publisher uses `publish_raw` with hand-built datums, the subscribers decode them typed.
#[test]
fn four_subscribers_each_get_a_million_messages_once_in_order_intact() {
  let bus = Bus::start("sub4");
  let mut publisher = bus.testee("publisher", "publisher", &["--count", "1000000", "--wait-go", "--raw"]);
  let mut subscribers: Vec<Proc> =
    (0..4).map(|i| bus.testee(&format!("subscriber {i}"), "subscriber", &["--count", "1000000"])).collect();
  go_when_joined(&mut publisher, &subscribers.iter().collect::<Vec<_>>());
  assert!(publisher.succeeds(LONG).contains(&"published 1000000".to_string()));
  for subscriber in &mut subscribers {
    assert!(subscriber.succeeds(LONG).contains(&"received 1000000".to_string()));
  }
}

#[test]
fn lossy_subscriber_that_stalls_is_told_what_it_missed_and_never_blocks_the_publisher() {
  let bus = Bus::start("lossy");
  let count = 20_000u64;
  let mut publisher =
    bus.testee("publisher", "publisher", &["--count", "20000", "--lossy", "--capacity", "65536", "--wait-go"]);
  let mut subscriber =
    bus.testee("subscriber", "subscriber", &["--count", "20000", "--stall-ms", "3000", "--expect-closed"]);
  go_when_joined(&mut publisher, &[&subscriber]);
  let stalled_at = Instant::now();
  publisher.succeeds(SHORT);
  assert!(
    subscriber.try_exit().is_none() && stalled_at.elapsed() < Duration::from_millis(2500),
    "the publisher finished only after {:?}, when the subscriber's 3 s stall was nearly over",
    stalled_at.elapsed()
  );
  let lines = subscriber.succeeds(SHORT);
  let line = lines.iter().find(|l| l.starts_with("missed ")).expect("a `missed` line");
  let (missed, received) = (number_after(line, "missed"), number_after(line, "received"));
  assert_eq!(missed + received, count, "{line}");
  assert!(missed > 0 && received > 0, "{line}");
  assert!(lines.contains(&"closed".to_string()));
}

#[test]
fn wrong_key_and_wrong_schema_are_refused_with_typed_errors() {
  let bus = Bus::start("refused");
  let publisher = bus.testee("publisher", "publisher", &["--count", "0", "--key", "secret", "--hold-ms", "30000"]);
  publisher.wait_line("published", SHORT);
  let mut wrong_key = bus.testee("wrong key", "subscriber", &["--key", "guess"]);
  let line = wrong_key.fails_with(ErrorCode::WrongKey, SHORT);
  assert!(line.contains("wrong key"), "{line}");
  assert!(!line.contains("secret") && !line.contains("guess"), "keys must not be shown: {line}");
  let mut no_key = bus.testee("no key", "subscriber", &[]);
  no_key.fails_with(ErrorCode::WrongKey, SHORT);

  let mut wrong_schema = bus.testee("wrong schema", "subscriber", &["--key", "secret", "--schema", "other"]);
  let line = wrong_schema.fails_with(ErrorCode::SchemaMismatch, SHORT);
  let mut fingerprints: Vec<&str> = line.split(|c: char| !c.is_ascii_hexdigit()).filter(|w| w.len() == 16).collect();
  fingerprints.sort();
  fingerprints.dedup();
  assert_eq!(fingerprints.len(), 2, "both fingerprints must be named: {line}");

  let mut right = bus.testee("right key", "subscriber", &["--key", "secret", "--count", "0"]);
  right.succeeds(SHORT);
}

#[test]
fn four_callers_with_calls_in_flight_get_every_result_matched_to_its_call() {
  let bus = Bus::start("calls");
  let provider = bus.testee("provider", "provider", &[]);
  provider.wait_line("ready", SHORT);
  let mut callers: Vec<Proc> = (0..4)
    .map(|i| {
      let base = (i * 1_000_000).to_string();
      bus.testee(&format!("caller {i}"), "caller", &["--count", "10000", "--in-flight", "32", "--base", &base])
    })
    .collect();
  for caller in &mut callers {
    assert!(caller.succeeds(LONG).contains(&"ok 10000".to_string()));
  }
}

#[test]
fn calling_a_function_nobody_exposes_fails_with_unknown_function() {
  let bus = Bus::start("unknown");
  let mut caller = bus.testee("caller", "caller", &["--function", "nope", "--count", "1"]);
  let line = caller.fails_with(ErrorCode::UnknownFunction, SHORT);
  assert!(line.contains("nope"), "{line}");
}

#[test]
fn a_call_slower_than_its_timeout_fails_with_timeout() {
  let bus = Bus::start("timeout");
  let provider = bus.testee("provider", "provider", &["--sleep-ms", "3000"]);
  provider.wait_line("ready", SHORT);
  let mut caller = bus.testee("caller", "caller", &["--threads", "1", "--count", "1", "--timeout-ms", "300"]);
  let started = Instant::now();
  caller.fails_with(ErrorCode::Timeout, SHORT);
  assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
}

#[test]
fn a_failing_handler_reaches_the_caller_as_handler_error_with_its_message() {
  let bus = Bus::start("handler");
  let provider = bus.testee("provider", "provider", &["--fail-on", "3"]);
  provider.wait_line("ready", SHORT);
  let mut caller = bus.testee("caller", "caller", &["--count", "6", "--keep-going"]);
  let lines = caller.succeeds(SHORT);
  let errors: Vec<_> = lines.iter().filter(|l| l.starts_with("error ")).collect();
  assert_eq!(errors.len(), 1, "{lines:?}");
  assert!(errors[0].starts_with("error HandlerError:") && errors[0].contains("refusing a = 3"), "{lines:?}");
  // The calls after the failed one still work.
  assert!(lines.contains(&"ok 5 failed 1".to_string()), "{lines:?}");
}

#[test]
fn subscriber_sees_closed_and_the_segment_goes_when_the_publisher_is_killed() {
  let bus = Bus::start("pubkill");
  let mut publisher = bus.testee("publisher", "publisher", &["--count", "100", "--wait-go", "--hold-ms", "60000"]);
  let mut subscriber = bus.testee("subscriber", "subscriber", &["--count", "100", "--expect-closed"]);
  go_when_joined(&mut publisher, &[&subscriber]);
  publisher.wait_line("published", SHORT);
  assert!(bus.segments().iter().any(|s| s.contains(".ch.")), "{:?}", bus.segments());
  publisher.signal(Signal::KILL);
  let killed = Instant::now();
  let lines = subscriber.succeeds(SOON);
  assert!(lines.contains(&"closed".to_string()) && lines.contains(&"received 100".to_string()), "{lines:?}");
  bus.wait_no_channel_segment(SOON.saturating_sub(killed.elapsed()));
}

#[test]
fn callers_get_peer_gone_at_once_when_the_provider_is_killed_mid_call() {
  let bus = Bus::start("provkill");
  let provider = bus.testee("provider", "provider", &["--sleep-ms", "100"]);
  provider.wait_line("ready", SHORT);
  let mut callers: Vec<Proc> =
    (0..3).map(|i| bus.testee(&format!("caller {i}"), "caller", &["--count", "1000", "--in-flight", "4"])).collect();
  for caller in &callers {
    caller.wait_line("calling", SHORT);
  }
  std::thread::sleep(Duration::from_millis(300));
  provider.signal(Signal::KILL);
  let killed = Instant::now();
  for caller in &mut callers {
    let line = caller.fails_with(ErrorCode::PeerGone, SOON.saturating_sub(killed.elapsed()));
    assert!(line.contains("add"), "{line}");
  }
}

#[test]
fn apps_see_broker_gone_when_the_broker_is_killed_and_a_new_broker_cleans_up_and_serves() {
  let mut bus = Bus::start("brokerkill");
  let [mut publisher, mut subscriber, mut provider, mut caller] = start_busy_apps(&mut bus);
  let old = bus.segments();
  assert!(old.iter().any(|s| s.contains(".ch.")) && old.iter().any(|s| s.contains(".ln.")), "{old:?}");

  assert_eq!(bus.stop_broker(Signal::KILL), None);
  expect_broker_gone(&mut publisher, [&mut subscriber, &mut provider, &mut caller]);
  assert_eq!(bus.segments(), old, "nobody but a broker removes segments");

  bus.start_broker();
  // The control segment and the namespace lock file have fixed names: the new broker has its own by now.
  let fixed = |s: &String| s.ends_with(".ctl") || s.ends_with(".lock");
  let left: Vec<_> = bus.segments().into_iter().filter(|s| old.contains(s) && !fixed(s)).collect();
  assert!(left.is_empty(), "the new broker left the dead one's segments: {left:?}");
  let mut publisher = bus.testee("new publisher", "publisher", &["--count", "1000", "--wait-go"]);
  let mut subscriber = bus.testee("new subscriber", "subscriber", &["--count", "1000"]);
  go_when_joined(&mut publisher, &[&subscriber]);
  publisher.succeeds(SHORT);
  assert!(subscriber.succeeds(SHORT).contains(&"received 1000".to_string()));
}

#[test]
fn a_second_broker_in_the_same_namespace_refuses_to_start_naming_namespace_and_pid() {
  let mut bus = Bus::start("twobrokers");
  let mut second = bus.spawn_broker();
  let code = second.wait_exit(SHORT);
  assert!(code.is_some_and(|c| c != 0), "{}", second.transcript());
  let message = second.lines().join("\n");
  let pid = bus.broker().pid().to_string();
  assert!(message.contains(&bus.ns) && message.contains(&pid), "{message}");
  // The first broker still serves.
  let mut caller = bus.testee("caller", "caller", &["--function", "nope", "--count", "1"]);
  caller.fails_with(ErrorCode::UnknownFunction, SHORT);
}

#[test]
fn oversized_payload_and_malformed_schema_fail_with_typed_errors_and_the_apps_keep_working() {
  let bus = Bus::start("toolarge");
  let mut publisher = bus.testee(
    "publisher",
    "publisher",
    &["--count", "100", "--wait-go", "--probe-too-large", "--probe-invalid-schema"],
  );
  let mut subscriber = bus.testee("subscriber", "subscriber", &["--count", "100", "--probe-invalid-schema"]);
  go_when_joined(&mut publisher, &[&subscriber]);
  let lines = publisher.succeeds(SHORT);
  for probe in ["probe TooLarge:", "probe InvalidSchema:"] {
    assert!(lines.iter().any(|l| l.starts_with(probe)), "{probe} {lines:?}");
  }
  assert!(lines.contains(&"published 100".to_string()), "{lines:?}");
  let lines = subscriber.succeeds(SHORT);
  assert!(lines.iter().any(|l| l.starts_with("probe InvalidSchema:")), "{lines:?}");
  assert!(lines.contains(&"received 100".to_string()), "{lines:?}");
}

#[test]
fn broker_sigterm_tells_apps_broker_gone_and_leaves_dev_shm_clean() {
  let mut bus = Bus::start("sigterm");
  let [mut publisher, mut subscriber, mut provider, mut caller] = start_busy_apps(&mut bus);

  assert_eq!(bus.stop_broker(Signal::TERM), Some(0));
  assert_eq!(bus.segments(), Vec::<String>::new());
  expect_broker_gone(&mut publisher, [&mut subscriber, &mut provider, &mut caller]);
}

#[test]
fn a_testee_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
  use std::os::unix::ffi::OsStrExt;
  let output = Command::new(testee())
    .arg("publisher")
    .arg(std::ffi::OsStr::from_bytes(b"--channel\xff"))
    .output()
    .expect("run the testee");
  let stderr = String::from_utf8_lossy(&output.stderr);
  assert_eq!(output.status.code(), Some(64), "{stderr}");
  assert!(stderr.starts_with("testee: argument ") && !stderr.contains("panicked"), "{stderr}");
}

const ADD_REQUEST: &str = r#"{"type":"record","name":"AddRequest","namespace":"e2e",
  "fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}"#;
const ADD_RESPONSE: &str =
  r#"{"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]}"#;

/// Polls `future` to completion on this thread, parking between polls.
fn block_on<F: std::future::Future + Unpin>(mut future: F) -> F::Output {
  struct Unpark(std::thread::Thread);
  impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
      self.0.unpark();
    }
  }
  let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
  let mut cx = std::task::Context::from_waker(&waker);
  loop {
    if let std::task::Poll::Ready(out) = std::pin::Pin::new(&mut future).poll(&mut cx) {
      return out;
    }
    std::thread::park_timeout(Duration::from_millis(50));
  }
}

#[test]
fn call_futures_never_wait_for_a_full_request_ring_and_fail_with_peer_gone_when_the_provider_dies() {
  use impulse_ring_connector::{CallError, ConnectOptions, Connection};
  let bus = Bus::start("futures");
  // Each call takes the provider a second; 20,000 requests of 32 bytes are more than the link's 256 KiB ring.
  let provider = bus.testee("provider", "provider", &["--sleep-ms", "1000"]);
  provider.wait_line("ready", SHORT);
  let options = ConnectOptions { namespace: Some(bus.ns.clone()), ..ConnectOptions::default() };
  let conn = Connection::connect_with("futures", options).expect("connect");
  let (tx, rx) = std::sync::mpsc::channel();
  std::thread::spawn(move || {
    // {a: 1, b: 2}: zig-zag varints.
    let futures: Vec<_> = (0..20_000).map(|_| conn.call_raw("add", None, &[2, 4], ADD_REQUEST, ADD_RESPONSE)).collect();
    let _ = tx.send((conn, futures));
  });
  // Were `call_raw` to wait for room in the ring, this would take thousands of seconds.
  let (conn, futures) = rx.recv_timeout(Duration::from_secs(60)).expect("call_raw waited for a full request ring");
  provider.signal(Signal::KILL);
  let mut peer_gone = 0;
  for future in futures {
    match block_on(future) {
      Ok(datum) => assert_eq!(datum, [6], "1 + 2"),
      Err(CallError::PeerGone { .. }) => peer_gone += 1,
      Err(e) => panic!("unexpected error {e}"),
    }
  }
  assert!(peer_gone >= 19_990, "{peer_gone} of 20000 calls failed with PeerGone");
  drop(conn);
}
