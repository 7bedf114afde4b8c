//! Every slot can be reclaimed, and a registration names its own process: slots whose state matches
//! no live, verified registration are freed after a grace period, and a Register naming a process
//! that does not map the namespace's control segment (pid 1, a bystander) is refused.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::layout::*;
use impulse_ring_core::seal::KeyPair;
use impulse_ring_core::sys;
use support::{failure, Broker, RawApp};

/// Offset of word `field` of `slot` in the control segment of `app`.
fn slot_word(app: &RawApp, slot: u32, field: usize) -> usize {
  let capacity = app.ctl.segment().u32_at(IR_CTL_RING_CAPACITY).load(Ordering::Relaxed) as usize;
  IR_CTL_SLOTS + slot as usize * control_slot_size(capacity) + field
}

/// Claims a slot, writes `pid` (and its start time) as its owner and sends Register naming `pid`.
fn register_as(ns: &str, pid: u32) -> ControlMessage {
  let mut app = RawApp::claim(ns);
  let start = sys::process_start_time(pid).expect("the named process exists");
  let seg = app.ctl.segment();
  seg.u32_at(slot_word(&app, app.slot, IR_SLOT_PID)).store(pid, Ordering::Relaxed);
  seg.u64_at(slot_word(&app, app.slot, IR_SLOT_START)).store(start, Ordering::Release);
  let register = Register {
    request_id: 0,
    app_name: "impostor".into(),
    pid: pid as i64,
    start_time: start as i64,
    public_key: KeyPair::generate().expect("a key pair").public().to_vec(),
  };
  let reply = app.request(register.into());
  app.unregister();
  reply
}

#[test]
fn a_registration_naming_another_process_is_refused() {
  let broker = Broker::start("impostor", &[]);
  let mut bystander = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().expect("spawn sleep");
  for pid in [1, bystander.id()] {
    let (code, message) = failure(&register_as(&broker.ns, pid));
    assert_eq!(code, ErrorCode::Protocol, "pid {pid}: {message}");
    assert!(message.contains(&format!("pid {pid}")), "{message}");
  }
  let _ = bystander.kill();
  let _ = bystander.wait();
  // The real thing still registers.
  RawApp::register(&broker.ns, "genuine").unregister();
  broker.stop();
}

#[test]
fn slots_written_by_hand_are_reclaimed_and_the_namespace_serves_again() {
  let broker = Broker::start("reclaim", &["--max-apps", "4"]);
  let probe = RawApp::claim(&broker.ns);
  let seg = probe.ctl.segment();
  // A process that stores ACTIVE or CLOSING into every free slot, then exits (here: pid 0).
  for slot in 0..4 {
    let state = if slot % 2 == 0 { IR_SLOT_ACTIVE } else { IR_SLOT_CLOSING };
    let word = seg.u32_at(slot_word(&probe, slot, IR_SLOT_STATE));
    if slot != probe.slot {
      assert!(word.compare_exchange(IR_SLOT_FREE, state, Ordering::AcqRel, Ordering::Relaxed).is_ok());
    }
  }
  // The probe's own claim is held by a live process that never registers: it gets a longer grace.
  assert!(probe.ctl.claim_slot().is_none(), "every slot is taken");
  let deadline = Instant::now() + Duration::from_secs(15);
  let app = loop {
    if let Ok(app) = RawApp::try_claim(&broker.ns) {
      break app;
    }
    assert!(Instant::now() < deadline, "no hand-written slot was reclaimed in 15 s\n{}", broker.log());
    std::thread::sleep(Duration::from_millis(50));
  };
  app.give_back();
  assert_eq!(probe.ctl.slot_state(probe.slot), IR_SLOT_CLAIMED, "a live claim was freed before its grace");
  while probe.ctl.slot_state(probe.slot) == IR_SLOT_CLAIMED {
    assert!(Instant::now() < deadline, "a claim never followed by Register was not reclaimed\n{}", broker.log());
    std::thread::sleep(Duration::from_millis(50));
  }
  // All four slots serve again.
  let apps: Vec<RawApp> = (0..4).map(|_| RawApp::register(&broker.ns, "again")).collect();
  for app in apps {
    app.unregister();
  }
  broker.stop();
}
