//! Truncation is an error, not a crash: a segment cut short under the broker (`truncate` by any
//! process with access) makes the broker's next access fault with SIGBUS; the broker survives it,
//! treats the segment as corrupt (a channel closes; a truncated control segment ends the namespace
//! cleanly) and every other app goes on.

mod support;

use std::time::Duration;

use impulse_ring_core::control::*;
use support::{namespace_objects, Broker, RawApp};

fn truncate(segment: &str) {
  let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{segment}")).expect("open the segment");
  file.set_len(0).expect("truncate");
}

fn channel_names(app: &mut RawApp) -> Vec<String> {
  match app.request(List { request_id: 0 }.into()) {
    ControlMessage::Listing(listing) => listing.channels.into_iter().map(|c| c.name).collect(),
    other => panic!("expected Listing, got {other:?}"),
  }
}

fn publish(app: &mut RawApp, name: &str) -> String {
  let request = PublishChannel {
    request_id: 0,
    name: name.into(),
    schema: "\"long\"".into(),
    key: None,
    capacity: 4096,
    lossy: false,
  };
  match app.request(request.into()) {
    ControlMessage::ChannelPublished(p) => p.segment,
    other => panic!("expected ChannelPublished, got {other:?}"),
  }
}

#[test]
fn a_truncated_channel_segment_is_closed_as_corrupt_and_the_broker_goes_on() {
  let mut broker = Broker::start("truncch", &[]);
  let mut publisher = RawApp::register(&broker.ns, "publisher");
  let doomed = publish(&mut publisher, "doomed");
  publish(&mut publisher, "calm");
  truncate(&doomed);
  // A listing reads every channel's counters: the broker touches the lost pages here.
  let mut other = RawApp::register(&broker.ns, "other");
  let _ = channel_names(&mut other);
  assert!(broker.wait_log("channel segment truncated", Duration::from_secs(5)), "{}", broker.log());
  assert!(broker.alive());
  assert_eq!(channel_names(&mut other), vec!["calm".to_string()]);
  assert!(
    !namespace_objects(&broker.ns).iter().any(|n| doomed.ends_with(n.as_str())),
    "the corrupt segment is unlinked"
  );
  publish(&mut publisher, "after");
  publisher.unregister();
  other.unregister();
  broker.stop();
}

#[test]
fn a_truncated_control_segment_ends_the_namespace_cleanly_instead_of_killing_the_broker() {
  let mut broker = Broker::start("truncctl", &[]);
  truncate(&format!("/impulse-ring.{}.ctl", broker.ns));
  assert_eq!(broker.wait_exit(Duration::from_secs(10)), Some(1), "{}", broker.log());
  assert!(broker.log().contains("was truncated under the broker"), "{}", broker.log());
  assert_eq!(namespace_objects(&broker.ns), Vec::<String>::new());
}
