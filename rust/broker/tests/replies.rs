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
