//! Replies that cannot travel are answered, not dropped: a listing larger than a control record ends
//! in `TooLarge` for its request at once (it used to be dropped, and the app timed out after 10 s).

mod support;

use std::time::{Duration, Instant};

use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use support::{failure, Broker, RawApp};

#[test]
fn a_listing_too_large_for_a_control_record_fails_with_too_large_at_once() {
  let broker = Broker::start("biglist", &[]);
  let mut app = RawApp::register(&broker.ns, "crowd");
  // 260 channels with 128-byte names: the listing outgrows the 32 752 bytes a control record carries.
  for i in 0..260 {
    let name = format!("{i:03}{}", "n".repeat(125));
    let reply = app.request(
      PublishChannel { request_id: 0, name, schema: "\"long\"".into(), key: None, capacity: 4096, lossy: false }.into(),
    );
    assert!(matches!(reply, ControlMessage::ChannelPublished(_)), "{reply:?}");
  }
  let asked = Instant::now();
  let (code, message) = failure(&app.request(List { request_id: 0 }.into()));
  assert_eq!(code, ErrorCode::TooLarge, "{message}");
  assert!(message.contains("more than the 32752"), "{message}");
  assert!(asked.elapsed() < Duration::from_secs(5), "the answer took {:?}", asked.elapsed());
  app.unregister();
  broker.stop();
}

/// An app that posts requests and never reads its replies is held back (the broker stops reading its
/// requests once its outbox passes a bound) instead of growing the broker's memory without bound;
/// other apps are served meanwhile, and once it reads, every request it posted is answered.
#[test]
fn an_app_that_never_reads_its_replies_is_held_back_and_loses_nothing() {
  let broker = Broker::start("backlog", &[]);
  let mut app = RawApp::register(&broker.ns, "glutton");
  // 180 channels with 128-byte names make every listing about 28 KB, just under a control record.
  for i in 0..180 {
    let name = format!("{i:03}{}", "n".repeat(125));
    let reply = app.request(
      PublishChannel { request_id: 0, name, schema: "\"long\"".into(), key: None, capacity: 4096, lossy: false }.into(),
    );
    assert!(matches!(reply, ControlMessage::ChannelPublished(_)), "{reply:?}");
  }
  // Post listings without reading until the request ring stays full: the broker stopped reading.
  // Without a bound it reads on forever (28 KB queued per request); 5 000 is far past the bound.
  let mut posted: i64 = 0;
  let mut full_since: Option<Instant> = None;
  while full_since.is_none_or(|t| t.elapsed() < Duration::from_millis(500)) {
    let id = 1_000_000 + posted;
    if app.try_send(&List { request_id: id }.into()) {
      posted += 1;
      full_since = None;
      assert!(posted < 5_000, "the broker kept reading the requests of an app that reads no replies");
    } else {
      full_since.get_or_insert_with(Instant::now);
      std::thread::sleep(Duration::from_millis(1));
    }
  }
  // Everyone else is still served.
  let mut bystander = RawApp::register(&broker.ns, "bystander");
  assert!(matches!(bystander.request(List { request_id: 0 }.into()), ControlMessage::Listing(_)));
  // Reading releases the back-pressure; every request is answered, in order.
  for expected in 1_000_000..1_000_000 + posted {
    match app.recv(Duration::from_secs(10)) {
      Some(ControlMessage::Listing(l)) => assert_eq!(l.request_id, expected),
      other => panic!("expected the Listing of request {expected}, got {other:?}"),
    }
  }
  assert!(app.recv(Duration::from_millis(100)).is_none());
  assert!(matches!(app.request(List { request_id: 0 }.into()), ControlMessage::Listing(_)));
  app.unregister();
  bystander.unregister();
  broker.stop();
}
