//! One broker per namespace, whatever happens to the names in `/dev/shm`: the broker holds a lock
//! file next to its segments, so a second broker stays out even when the control segment's name is
//! gone; a broker whose control segment name was removed notices, leaves with a clear log line and
//! its apps see the shutdown; a removed lock name is restored.

mod support;

use std::time::Duration;

use impulse_ring_core::control::ControlMessage;
use rustix::process::{kill_process, Pid, Signal};
use support::{namespace_objects, Broker, RawApp};

fn signal(broker: &Broker, signal: Signal) {
  kill_process(Pid::from_raw(broker.pid() as i32).expect("pid"), signal).expect("kill");
}

fn remove(ns: &str, what: &str) {
  std::fs::remove_file(format!("/dev/shm/impulse-ring.{ns}.{what}")).expect("remove the name");
}

/// Waits for an app's BrokerShutdown record.
fn sees_shutdown(app: &RawApp) -> bool {
  while let Some(message) = app.recv(Duration::from_secs(5)) {
    if matches!(message, ControlMessage::BrokerShutdown(_)) {
      return true;
    }
  }
  false
}

#[test]
fn a_broker_whose_control_segment_name_is_removed_leaves_and_its_apps_see_the_shutdown() {
  let mut broker = Broker::start("ctlgone", &[]);
  let app = RawApp::register(&broker.ns, "orphan");
  assert!(namespace_objects(&broker.ns).contains(&format!("impulse-ring.{}.lock", broker.ns)));
  remove(&broker.ns, "ctl");
  assert_eq!(broker.wait_exit(Duration::from_secs(10)), Some(1), "{}", broker.log());
  assert!(broker.log().contains("was removed or replaced by another process"), "{}", broker.log());
  assert!(sees_shutdown(&app) && app.ctl.shutting_down());
  assert_eq!(namespace_objects(&broker.ns), Vec::<String>::new());
  // The namespace is free again.
  Broker::start("ctlgone", &[]).stop();
}

#[test]
fn a_second_broker_stays_out_even_when_the_control_segment_name_is_gone() {
  let mut first = Broker::start("twobrokers", &[]);
  // Stopped, the first broker cannot notice anything; only its lock keeps the namespace.
  signal(&first, Signal::STOP);
  remove(&first.ns, "ctl");
  let mut second = Broker::spawn(&first.ns, &[]);
  let code = second.wait_exit(Duration::from_secs(10));
  signal(&first, Signal::CONT);
  assert_eq!(code, Some(1), "the second broker started\n{}", second.log());
  let message = second.log();
  assert!(message.contains("already serves") && message.contains(&first.pid().to_string()), "{message}");
  assert_eq!(first.wait_exit(Duration::from_secs(10)), Some(1), "{}", first.log());
  assert_eq!(namespace_objects(&first.ns), Vec::<String>::new());
}

#[test]
fn a_removed_lock_name_is_restored_and_still_keeps_a_second_broker_out() {
  let broker = Broker::start("lockgone", &[]);
  remove(&broker.ns, "lock");
  assert!(broker.wait_log("restored it", Duration::from_secs(10)), "{}", broker.log());
  let mut second = Broker::spawn(&broker.ns, &[]);
  assert_eq!(second.wait_exit(Duration::from_secs(10)), Some(1), "{}", second.log());
  let app = RawApp::register(&broker.ns, "still-served");
  app.unregister();
  broker.stop();
}
