//! The broker holds no file descriptor for an app that left: each registration's pidfd is closed when
//! the app unregisters, so the broker's fd count stays flat over thousands of reconnects; and when the
//! broker does run out of fds it says so (`LimitReached`) instead of blaming the app.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use impulse_ring_core::error_code::ErrorCode;
use support::{failure, Broker, RawApp};

/// Waits up to 5 s for the broker's fd count to come down to `at_most`; the last count seen.
fn settle(broker: &Broker, at_most: usize) -> usize {
  let deadline = Instant::now() + Duration::from_secs(5);
  loop {
    let count = broker.fd_count();
    if count <= at_most || Instant::now() >= deadline {
      return count;
    }
    std::thread::sleep(Duration::from_millis(20));
  }
}

#[test]
fn the_broker_fd_count_is_flat_over_10000_reconnects() {
  let broker = Broker::start("fdflat", &[]);
  let before = broker.fd_count();
  for i in 0..10_000 {
    let app = RawApp::try_register(&broker.ns, "reconnect")
      .unwrap_or_else(|reply| panic!("registration {i} failed: {reply:?}\n{}", broker.log()));
    app.unregister();
  }
  let after = settle(&broker, before);
  assert_eq!(after, before, "the broker held {before} fds before 10 000 reconnects and {after} after");
  broker.stop();
}

#[test]
fn a_broker_out_of_fds_answers_limit_reached_and_recovers() {
  let ns = impulse_ring_test_support::ns::namespace("bh-fdlimit");
  // A broker allowed 24 fds: a few apps' pidfds exhaust them.
  let mut command = Command::new(env!("CARGO_BIN_EXE_impulsed"));
  command.args(["--ns", &ns]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
  // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
  unsafe {
    command.pre_exec(|| {
      let limit = rustix::process::Rlimit { current: Some(24), maximum: Some(24) };
      rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(std::io::Error::from)
    });
  }
  let mut broker = Broker::from_command(&ns, command);
  broker.wait_ready();
  let mut apps = Vec::new();
  let refusal = loop {
    match RawApp::try_register(&broker.ns, "hog") {
      Ok(app) => apps.push(app),
      Err(reply) => break reply,
    }
    assert!(apps.len() < 60, "24 fds held {} watched apps", apps.len());
  };
  let (code, message) = failure(&refusal);
  assert_eq!(code, ErrorCode::LimitReached, "{message}");
  assert!(message.contains("out of file descriptors"), "{message}");
  assert!(broker.wait_log("out of file descriptors", Duration::from_secs(5)), "{}", broker.log());
  assert!(broker.alive());
  // The apps that got in were not declared dead for want of fds; once they leave, there is room.
  for app in apps.drain(..) {
    app.unregister();
  }
  std::thread::sleep(Duration::from_millis(300));
  let app = RawApp::try_register(&broker.ns, "later").unwrap_or_else(|reply| panic!("still refused: {reply:?}"));
  app.unregister();
  broker.stop();
}
