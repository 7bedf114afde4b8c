//! The broker's command line keeps its promises (no world-accessible bus without an explicit flag)
//! and a corrupt request ring is noticed when its app rings the doorbell, not on the next 1 s turn.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use impulse_ring_core::layout::*;
use support::{namespace_objects, Broker, RawApp};

#[test]
fn a_world_accessible_mode_is_refused_unless_asked_for_explicitly() {
  let ns = impulse_ring_test_support::ns::namespace("bh-mode666");
  let mut refused = Broker::spawn(&ns, &["--mode", "666"]);
  assert_eq!(refused.wait_exit(Duration::from_secs(10)), Some(2), "{}", refused.log());
  assert!(refused.log().contains("--world-accessible"), "{}", refused.log());
  assert_eq!(namespace_objects(&ns), Vec::<String>::new());

  let mut broker = Broker::spawn(&ns, &["--mode", "666", "--world-accessible"]);
  broker.wait_ready();
  let ctl = std::fs::metadata(format!("/dev/shm/impulse-ring.{ns}.ctl")).expect("the control segment");
  assert_eq!(ctl.permissions().mode() & 0o777, 0o666);
  broker.stop();
}

#[test]
fn a_corrupt_request_ring_is_noticed_when_the_doorbell_rings() {
  let broker = Broker::start("corruptring", &[]);
  let app = RawApp::register(&broker.ns, "vandal");
  let seg = app.ctl.segment();
  let heartbeat = || seg.u64_at(IR_CTL_HEARTBEAT).load(Ordering::Relaxed);
  // Right after a beat the broker sleeps up to a second before its next turn.
  let last = heartbeat();
  let deadline = Instant::now() + Duration::from_secs(5);
  while heartbeat() == last {
    assert!(Instant::now() < deadline, "no heartbeat");
    std::thread::sleep(Duration::from_millis(1));
  }
  let beat = heartbeat();
  let capacity_word = IR_CTL_SLOTS
    + app.slot as usize * control_slot_size(IR_DEFAULT_CONTROL_RING_CAPACITY as usize)
    + IR_SLOT_REQUEST_RING
    + IR_RING_CAPACITY;
  seg.u64_at(capacity_word).store(12_345, Ordering::Release);
  app.ctl.broker_doorbell().ring();
  // The app (this process) lives on: its slot is fenced, not freed (bootstrap.md §3.2).
  while app.ctl.slot_state(app.slot) != IR_SLOT_FENCED {
    assert!(Instant::now() < deadline, "the corrupt ring was never noticed\n{}", broker.log());
    std::thread::sleep(Duration::from_millis(1));
  }
  assert_eq!(heartbeat(), beat, "the app was dropped on the broker's next turn, not when its doorbell rang");
  assert!(broker.wait_log("request ring corrupt", Duration::from_secs(5)), "{}", broker.log());
  broker.stop();
}
