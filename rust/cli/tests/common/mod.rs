//! What the `ring` tests share: the built binaries, a live broker per test, an app connected to it,
//! and `ring` run to completion or as a supervised child.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use impulse_ring_connector::{ConnectOptions, Connection};
use impulse_ring_test_support::{duct, Broker, Child, Echo};

/// A binary built next to the test's own: `impulsed`, or an example (`examples/testee`).
pub fn built(name: &str) -> PathBuf {
  // target/<profile>/deps/<test>-… → target/<profile>/<name>
  let path = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join(name);
  assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins --examples` first", path.display());
  path
}

/// A broker for one test; stopped when dropped, failing the test unless it exits cleanly and leaves
/// nothing of the namespace in `/dev/shm`.
pub struct LiveBroker(Option<Broker>);

impl LiveBroker {
  pub fn start(ns: &str) -> LiveBroker {
    LiveBroker(Some(
      Broker::start(&built("impulsed"), ns, &["--log-level", "warn"], Echo::Quiet).unwrap_or_else(|e| panic!("{e}")),
    ))
  }
}

impl Drop for LiveBroker {
  fn drop(&mut self) {
    let checked = self.0.take().expect("started").stop_clean(Duration::from_secs(10));
    assert!(checked.is_ok() || std::thread::panicking(), "{}", checked.unwrap_err());
  }
}

/// An app of this test process on the bus of `ns`.
pub fn app(name: &str, ns: &str) -> Connection {
  Connection::connect_with(name, ConnectOptions { namespace: Some(ns.to_string()), ..Default::default() })
    .unwrap_or_else(|e| panic!("{name} cannot connect: {e}"))
}

/// Runs `ring ARGS --ns NS` to completion.
pub fn ring(ns: &str, args: &[&str]) -> Output {
  Command::new(env!("CARGO_BIN_EXE_ring")).args(args).args(["--ns", ns]).output().expect("run ring")
}

/// Starts `ring ARGS --ns NS` as a supervised child (stdin a pipe, stderr merged into its lines).
pub fn ring_child(ns: &str, args: &[&str]) -> Child {
  let argv: Vec<&str> = args.iter().copied().chain(["--ns", ns]).collect();
  let name = format!("ring {}", args.first().copied().unwrap_or_default());
  Child::start(&name, duct::cmd(env!("CARGO_BIN_EXE_ring"), argv), Echo::Quiet).expect("start ring")
}

pub fn stdout(out: &Output) -> String {
  String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
  String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `what` every 10 ms until it holds; panics naming `waiting_for` after 10 s.
pub fn wait_until(waiting_for: &str, what: impl Fn() -> bool) {
  let deadline = Instant::now() + Duration::from_secs(10);
  while !what() {
    assert!(Instant::now() < deadline, "gave up waiting for {waiting_for}");
    std::thread::sleep(Duration::from_millis(10));
  }
}

/// Waits until channel `name` has `n` joined subscribers, as the broker describes it.
pub fn wait_subscribers(conn: &Connection, name: &str, n: usize) {
  wait_until(&format!("{n} subscriber(s) on `{name}`"), || {
    conn.describe(name).is_ok_and(|d| d.channels.first().is_some_and(|c| c.subscribers.len() == n))
  });
}
