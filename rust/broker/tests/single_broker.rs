//! One broker per namespace, whatever happens to the names in `/dev/shm`: the broker holds a lock
//! file next to its segments, so a second broker stays out even when the control segment's name is
//! gone; a removed control segment name is restored (from a second name outside the namespace
//! prefix), a replaced one makes the broker leave with a clear log line while its apps see the
//! shutdown; a removed lock name is restored.

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

/// The broker's second name for its control segment, outside the namespace prefix.
fn keep_path(ns: &str) -> String {
  format!("/dev/shm/.impulse-ring.{ns}.ctl")
}

#[test]
fn a_removed_control_segment_name_is_restored_and_the_bus_goes_on() {
  let broker = Broker::start("ctlgone", &[]);
  let mut app = RawApp::register(&broker.ns, "survivor");
  assert!(namespace_objects(&broker.ns).contains(&format!("impulse-ring.{}.lock", broker.ns)));
  remove(&broker.ns, "ctl");
  assert!(broker.wait_log("restored it", Duration::from_secs(10)), "{}", broker.log());
  // Newcomers find the broker again, and the app that was there is still served.
  RawApp::register(&broker.ns, "newcomer").unregister();
  assert!(matches!(
    app.request(ControlMessage::List(impulse_ring_core::control::List { request_id: 0 })),
    ControlMessage::Listing(_)
  ));
  app.unregister();
  let ns = broker.ns.clone();
  broker.stop();
  assert!(!std::path::Path::new(&keep_path(&ns)).exists(), "the second name is left behind");
}

#[test]
fn a_replaced_control_segment_name_makes_the_broker_leave_and_its_apps_see_the_shutdown() {
  let mut broker = Broker::start("ctlreplaced", &[]);
  let app = RawApp::register(&broker.ns, "orphan");
  remove(&broker.ns, "ctl");
  let impostor = format!("/dev/shm/impulse-ring.{}.ctl", broker.ns);
  std::fs::write(&impostor, b"not a segment").expect("plant a file");
  assert_eq!(broker.wait_exit(Duration::from_secs(10)), Some(1), "{}", broker.log());
  assert!(broker.log().contains("was removed or replaced by another process"), "{}", broker.log());
  assert!(sees_shutdown(&app) && app.ctl.shutting_down());
  // The broker left the planted file alone (not its own) and took its lock and second name away.
  assert_eq!(namespace_objects(&broker.ns), vec![format!("impulse-ring.{}.ctl", broker.ns)]);
  assert!(!std::path::Path::new(&keep_path(&broker.ns)).exists());
  std::fs::remove_file(&impostor).expect("remove the planted file");
}

#[test]
fn a_second_broker_stays_out_even_when_the_control_segment_name_is_gone() {
  let first = Broker::start("twobrokers", &[]);
  // Stopped, the first broker cannot notice anything; only its lock keeps the namespace.
  signal(&first, Signal::STOP);
  remove(&first.ns, "ctl");
  let mut second = Broker::spawn(&first.ns, &[]);
  let code = second.wait_exit(Duration::from_secs(10));
  signal(&first, Signal::CONT);
  assert_eq!(code, Some(1), "the second broker started\n{}", second.log());
  let message = second.log();
  assert!(message.contains("already serves") && message.contains(&first.pid().to_string()), "{message}");
  // Woken up, the first broker restores its name and serves on.
  assert!(first.wait_log("restored it", Duration::from_secs(10)), "{}", first.log());
  RawApp::register(&first.ns, "after").unregister();
  drop(second);
  first.stop();
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
