//! Keys do not stay in shared memory (security.md, "Access keys"): after a session in which a
//! publisher and a provider set keys and subscribers and callers present right and wrong ones, no
//! segment of the namespace holds the bytes of any of those keys — while the apps are still connected,
//! and after they left. The broker zeroes each request record as it reads it, and a freed slot's rings.

mod support;

use std::time::{Duration, Instant};

use impulse_ring_connector::{ConnectOptions, Connection, ErrorCode, PublishOptions};
use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::layout::IR_SLOT_FREE;
use support::{namespace_objects, Broker};

const CHANNEL_KEY: &str = "channel-key-K-0f3a9c1e5d7b";
const WRONG_CHANNEL_KEY: &str = "channel-key-K2-b4d8e2f06a1c";
const FUNCTION_KEY: &str = "function-key-F-93e1c7a25b0d";
const WRONG_FUNCTION_KEY: &str = "function-key-F2-7d2b9f4e1c83";

/// Which of the keys some segment of `ns` holds, with the segment's name.
fn keys_found(ns: &str) -> Vec<(String, &'static str)> {
  let mut found = Vec::new();
  for name in namespace_objects(ns) {
    let Ok(bytes) = std::fs::read(format!("/dev/shm/{name}")) else { continue };
    for key in [CHANNEL_KEY, WRONG_CHANNEL_KEY, FUNCTION_KEY, WRONG_FUNCTION_KEY] {
      if bytes.windows(key.len()).any(|w| w == key.as_bytes()) {
        found.push((name.clone(), key));
      }
    }
  }
  found
}

fn connect(ns: &str, name: &str) -> Connection {
  Connection::connect_with(name, ConnectOptions { namespace: Some(ns.to_string()), ..Default::default() })
    .unwrap_or_else(|e| panic!("{name} cannot connect: {e}"))
}

#[test]
fn no_key_presented_right_or_wrong_stays_in_any_segment() {
  let broker = Broker::start("keys", &[]);
  let owner = connect(&broker.ns, "owner");
  let admitted = connect(&broker.ns, "admitted");
  let refused = connect(&broker.ns, "refused");

  let mut publisher =
    owner.publish_channel("secret", "\"long\"", Some(CHANNEL_KEY), PublishOptions::default()).expect("publish");
  let mut subscriber = admitted.subscribe("secret", Some(CHANNEL_KEY), "\"long\"").expect("the right key subscribes");
  let wrong = refused.subscribe("secret", Some(WRONG_CHANNEL_KEY), "\"long\"").err().map(|e| e.code());
  assert_eq!(wrong, Some(ErrorCode::WrongKey));
  publisher.publish(&7i64).expect("publish a message");
  let got: i64 = subscriber.recv(Duration::from_secs(10)).expect("receive").expect("a message");
  assert_eq!(got, 7);

  let _function = owner
    .expose_function_raw("secret-fn", "\"long\"", "\"long\"", Some(FUNCTION_KEY), |datum| Ok(datum.to_vec()))
    .expect("expose");
  let timeout = Duration::from_secs(10);
  let echoed = admitted.call_raw_blocking("secret-fn", Some(FUNCTION_KEY), &[42], "\"long\"", "\"long\"", timeout);
  assert_eq!(echoed.expect("the right key calls"), [42]);
  let wrong = refused.call_raw_blocking("secret-fn", Some(WRONG_FUNCTION_KEY), &[42], "\"long\"", "\"long\"", timeout);
  assert_eq!(wrong.err().map(|e| e.code()), Some(ErrorCode::WrongKey));

  // Every request above has been answered, so the broker has read (and zeroed) every record.
  assert_eq!(keys_found(&broker.ns), vec![], "keys in shared memory while the apps are connected");

  drop(subscriber);
  drop(publisher);
  drop(_function);
  drop((owner, admitted, refused));
  let ctl = ControlSegment::open(&broker.ns).expect("the control segment");
  let deadline = Instant::now() + Duration::from_secs(10);
  while (0..ctl.max_apps()).any(|slot| ctl.slot_state(slot) != IR_SLOT_FREE) {
    assert!(Instant::now() < deadline, "the apps' slots were never freed\n{}", broker.log());
    std::thread::sleep(Duration::from_millis(2));
  }
  drop(ctl);
  assert_eq!(keys_found(&broker.ns), vec![], "keys in shared memory after the apps left");
  broker.stop();
}
