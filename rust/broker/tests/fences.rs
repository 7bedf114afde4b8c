//! A dropped app is fenced (bootstrap.md §3.2): when the broker drops an app whose process lives on (it
//! corrupted its request ring), the app's requests fail with `BrokerGone` at once instead of timing
//! out, the slot is not handed to anyone else while that process lives, newcomers are served as usual,
//! and the slot is freed once the stale process exits.
//!
//! The stale app is this test binary run again as a child (`STALE_APP` set): a real process with the
//! Rust connector, that corrupts its own request ring right before a request.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use impulse_ring_connector::{ConnectOptions, Connection, ErrorCode, ListError};
use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::layout::*;
use support::Broker;

/// Set in the child: the namespace it connects to.
const STALE_APP: &str = "IMPULSE_RING_TEST_STALE_APP";

/// The child's part: connect, say which slot it has, and on `go` put a record that is not a control
/// record into its request ring and make a request behind it; report what the request gave, then a
/// second request, then live on until stdin closes.
fn stale_app(ns: String) -> ! {
  let conn = Connection::connect_with("stale", ConnectOptions { namespace: Some(ns.clone()), ..Default::default() })
    .expect("the stale app connects");
  let slot = conn.app_id();
  say(&format!("slot {slot}"));
  let mut stdin = BufReader::new(std::io::stdin().lock());
  let mut line = String::new();
  stdin.read_line(&mut line).expect("read go");
  let ctl = ControlSegment::open(&ns).expect("map the control segment");
  let ring = ctl.request_ring(slot).expect("our request ring");
  ring.try_write_bytes(ctl.segment(), IR_FRAME_KIND_DATA, 0, b"not a control record").expect("room");
  say(&format!("waiting {}", outcome(conn.list())));
  say(&format!("after {}", outcome(conn.list())));
  while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {}
  drop(conn);
  std::process::exit(0);
}

fn outcome(result: Result<impulse_ring_connector::Listing, ListError>) -> String {
  match result {
    Ok(_) => "ok".into(),
    Err(e) => format!("{}: {e}", e.code().name()),
  }
}

fn say(line: &str) {
  let mut out = std::io::stdout().lock();
  let _ = writeln!(out, "stale: {line}");
  let _ = out.flush();
}

struct StaleApp {
  child: Child,
  stdin: Option<ChildStdin>,
  stdout: BufReader<ChildStdout>,
}

impl StaleApp {
  fn start(ns: &str) -> StaleApp {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
      .args(["a_dropped_app_is_fenced_until_its_process_exits", "--exact", "--nocapture", "--test-threads", "1"])
      .env(STALE_APP, ns)
      .stdin(Stdio::piped())
      .stdout(Stdio::piped())
      .stderr(Stdio::inherit())
      .spawn()
      .expect("start the stale app");
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    StaleApp { child, stdin, stdout }
  }

  /// The rest of the next line the child said after `stale: <word> `.
  fn expect(&mut self, word: &str) -> String {
    let mut line = String::new();
    loop {
      line.clear();
      let n = self.stdout.read_line(&mut line).expect("read the stale app");
      assert!(n > 0, "the stale app ended before saying `{word}`");
      // libtest may print `test <name> ... ` on the same line first.
      let marker = format!("stale: {word} ");
      if let Some(at) = line.find(&marker) {
        return line[at + marker.len()..].trim_end().to_string();
      }
    }
  }

  fn tell(&mut self, line: &str) {
    let stdin = self.stdin.as_mut().expect("stdin open");
    writeln!(stdin, "{line}").expect("write to the stale app");
  }

  /// Closes its stdin (it exits then) and reaps it.
  fn finish(mut self) {
    drop(self.stdin.take());
    let status = self.child.wait().expect("wait for the stale app");
    assert!(status.success(), "the stale app exited with {status}");
  }
}

impl Drop for StaleApp {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

fn wait_for(what: &str, broker: &Broker, mut done: impl FnMut() -> bool) {
  let deadline = Instant::now() + Duration::from_secs(10);
  while !done() {
    assert!(Instant::now() < deadline, "{what} never happened\n{}", broker.log());
    std::thread::sleep(Duration::from_millis(2));
  }
}

fn connect(ns: &str, name: &str) -> Connection {
  Connection::connect_with(name, ConnectOptions { namespace: Some(ns.to_string()), ..Default::default() })
    .unwrap_or_else(|e| panic!("{name} cannot connect: {e}"))
}

#[test]
fn a_dropped_app_is_fenced_until_its_process_exits() {
  if let Ok(ns) = std::env::var(STALE_APP) {
    stale_app(ns);
  }
  // Two slots: while the stale app's slot is fenced, one newcomer fits and a second does not.
  let broker = Broker::start("fence", &["--max-apps", "2"]);
  let ctl = ControlSegment::open(&broker.ns).expect("the control segment");
  let mut stale = StaleApp::start(&broker.ns);
  let slot: u32 = stale.expect("slot").parse().expect("a slot number");
  let generation = ctl.slot_generation(slot);
  stale.tell("go");

  // The request waiting behind the bad record fails at once, typed, and so does the next one.
  let waiting = stale.expect("waiting");
  assert!(waiting.starts_with("BrokerGone:"), "the waiting request gave {waiting}\n{}", broker.log());
  let after = stale.expect("after");
  assert!(after.starts_with("BrokerGone:"), "a later request gave {after}\n{}", broker.log());
  assert_eq!(ctl.slot_state(slot), IR_SLOT_FENCED, "{}", broker.log());
  assert_eq!(ctl.slot_generation(slot), generation + 1);

  // A newcomer is served normally, on the other slot; the fenced one is not handed out.
  let newcomer = connect(&broker.ns, "newcomer");
  assert_ne!(newcomer.app_id(), slot);
  let apps: Vec<String> = newcomer.list().expect("the newcomer lists").apps.into_iter().map(|a| a.name).collect();
  assert_eq!(apps, ["newcomer"], "the listing shows the stale app or misses the newcomer");
  let third =
    Connection::connect_with("third", ConnectOptions { namespace: Some(broker.ns.clone()), ..Default::default() });
  assert_eq!(third.err().map(|e| e.code()), Some(ErrorCode::LimitReached), "a fenced slot was handed to a newcomer");
  assert_eq!(ctl.slot_state(slot), IR_SLOT_FENCED);

  // Once the stale process has exited, its slot is free again and can be claimed.
  stale.finish();
  wait_for("freeing the fenced slot", &broker, || ctl.slot_state(slot) == IR_SLOT_FREE);
  assert_eq!(ctl.slot_generation(slot), generation + 2);
  let next = connect(&broker.ns, "next");
  assert_eq!(next.app_id(), slot);
  next.list().expect("the app on the reclaimed slot lists");
  drop(next);
  newcomer.list().expect("the newcomer is still served");
  drop(newcomer);
  drop(ctl);
  broker.stop();
}
