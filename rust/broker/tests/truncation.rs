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

/// The Rust connector guards its mappings as the broker does: a channel or link segment truncated
/// under an app (this test process) is a `Corrupt` error on the next publish, receive or call, not a
/// SIGBUS that kills the app.
#[test]
fn a_rust_app_whose_segments_are_truncated_gets_corrupt_and_lives() {
  use impulse_ring_connector::{ConnectOptions, Connection, ErrorCode, PublishOptions};
  let broker = Broker::start("truncapp", &[]);
  let connect = |name: &str| {
    Connection::connect_with(name, ConnectOptions { namespace: Some(broker.ns.clone()), ..Default::default() })
      .expect("connect")
  };
  let owner = connect("owner");
  let reader = connect("reader");
  let mut publisher = owner.publish_channel("doomed", "\"long\"", None, PublishOptions::default()).expect("publish");
  let mut subscriber = reader.subscribe("doomed", None, "\"long\"").expect("subscribe");
  publisher.publish(&1i64).expect("a message before the truncation");
  let segment = format!("/{}", publisher_segment(&broker.ns, ".ch."));
  truncate(&segment);
  let published = publisher.publish(&2i64).map_err(|e| e.code());
  assert_eq!(published, Err(ErrorCode::Corrupt));
  let received = subscriber.recv::<i64>(Duration::from_secs(5)).map_err(|e| e.code());
  assert_eq!(received, Err(ErrorCode::Corrupt));

  let _function =
    owner.expose_function_raw("echo", "\"long\"", "\"long\"", None, |datum| Ok(datum.to_vec())).expect("expose");
  let timeout = Duration::from_secs(5);
  assert_eq!(reader.call_raw_blocking("echo", None, &[42], "\"long\"", "\"long\"", timeout).expect("a call"), [42]);
  truncate(&format!("/{}", publisher_segment(&broker.ns, ".ln.")));
  let called = reader.call_raw_blocking("echo", None, &[42], "\"long\"", "\"long\"", timeout).map_err(|e| e.code());
  assert!(
    matches!(called, Err(ErrorCode::Corrupt) | Err(ErrorCode::PeerGone)),
    "a call over a truncated link: {called:?}"
  );
  // The app is alive and its connection still works: a fresh channel carries a message.
  let mut fresh = owner.publish_channel("fresh", "\"long\"", None, PublishOptions::default()).expect("publish");
  let mut fresh_sub = reader.subscribe("fresh", None, "\"long\"").expect("subscribe");
  fresh.publish(&3i64).expect("publish after the truncation");
  assert_eq!(fresh_sub.recv::<i64>(Duration::from_secs(5)).expect("receive"), Some(3));
  drop((fresh_sub, fresh, subscriber, publisher, _function));
  drop((owner, reader));
  broker.stop();
}

/// The name (without the leading `/`) of the one object of `ns` whose name contains `kind`.
fn publisher_segment(ns: &str, kind: &str) -> String {
  let found: Vec<String> = namespace_objects(ns).into_iter().filter(|n| n.contains(kind)).collect();
  assert_eq!(found.len(), 1, "objects of kind {kind}: {found:?}");
  found.into_iter().next().unwrap()
}
