//! Access keys are sealed in flight (bootstrap.md §5.5, security.md "Keys are sealed in flight"): a
//! request waiting in the ring shows the key only sealed with the registration's session, a sealed key
//! replayed from another registration is worth nothing, and a `Register` whose public key cannot make a
//! session is refused without harm to the bus.

mod support;

use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::names;
use support::{failure, Broker, RawApp};

const KEY: &str = "vault-key-9c41e07b2d6f";

fn publish_vault(publisher: &mut RawApp) {
  let id = publisher.next_id();
  let publish = PublishChannel {
    request_id: id,
    name: "vault".into(),
    schema: "\"long\"".into(),
    key: Some(publisher.seal(id, KEY)),
    capacity: 4096,
    lossy: false,
  };
  match publisher.request(publish.into()) {
    ControlMessage::ChannelPublished(_) => {}
    other => panic!("expected ChannelPublished, got {other:?}"),
  }
}

fn subscribe_vault(id: i64, sealed: Vec<u8>) -> ControlMessage {
  Subscribe { request_id: id, name: "vault".into(), schema: "\"long\"".into(), key: Some(sealed) }.into()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
  haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_key_waiting_in_the_request_ring_is_sealed() {
  let broker = Broker::start("sealed", &[]);
  let mut publisher = RawApp::register(&broker.ns, "publisher");
  publish_vault(&mut publisher);
  let mut subscriber = RawApp::register(&broker.ns, "subscriber");
  let control = format!("/dev/shm{}", names::control(&broker.ns));

  // The broker reads unrung requests on its one-second turn: should it read one before the snapshot,
  // write another (a fresh id, so a fresh keystream) and look again.
  let mut seen_sealed = None;
  for _ in 0..5 {
    let id = subscriber.id();
    let sealed = subscriber.seal(id, KEY);
    assert_ne!(sealed, KEY.as_bytes());
    assert!(subscriber.write_quietly(&subscribe_vault(id, sealed.clone())));
    let bytes = std::fs::read(&control).expect("read the control segment");
    assert!(!contains(&bytes, KEY.as_bytes()), "the key is in clear in the control segment");
    if contains(&bytes, &sealed) {
      seen_sealed = Some(id);
      break;
    }
  }
  let id = seen_sealed.expect("a quietly written request was never seen in the ring");

  // The sealed key is the right one: the broker admits it once it reads the request.
  subscriber.ctl.broker_doorbell().ring();
  let reply = subscriber.reply_to(id);
  assert!(matches!(reply, ControlMessage::Subscribed(_)), "expected Subscribed, got {reply:?}");
  subscriber.unregister();
  publisher.unregister();
  broker.stop();
}

#[test]
fn a_sealed_key_replayed_from_another_registration_is_refused() {
  let broker = Broker::start("replay", &[]);
  let mut publisher = RawApp::register(&broker.ns, "publisher");
  publish_vault(&mut publisher);
  let mut holder = RawApp::register(&broker.ns, "holder");
  let id = holder.next_id();
  let sealed = holder.seal(id, KEY);
  let reply = holder.request_as_is(subscribe_vault(id, sealed.clone()));
  assert!(matches!(reply, ControlMessage::Subscribed(_)), "the key holder is refused: {reply:?}");

  // What an eavesdropper could copy out of the holder's request ring: the request id and the sealed
  // bytes. Sent on its own registration, they unseal to something else.
  let mut eavesdropper = RawApp::register(&broker.ns, "eavesdropper");
  let (code, message) = failure(&eavesdropper.request_as_is(subscribe_vault(id, sealed)));
  assert_eq!(code, ErrorCode::WrongKey, "{message}");
  // Nor does the key in clear, which is not how a key travels.
  let (code, _) = failure(&eavesdropper.request(subscribe_vault(0, KEY.as_bytes().to_vec())));
  assert_eq!(code, ErrorCode::WrongKey);
  for app in [eavesdropper, holder, publisher] {
    app.unregister();
  }
  broker.stop();
}

/// The `refuse` lines of spec/vectors/sealing.txt.
fn refused_public_keys() -> Vec<Vec<u8>> {
  let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/sealing.txt");
  let text = std::fs::read_to_string(path).expect("spec/vectors/sealing.txt");
  let keys: Vec<Vec<u8>> = text
    .lines()
    .filter_map(|line| line.strip_prefix("refuse "))
    .map(|hex| (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect())
    .collect();
  assert!(keys.len() >= 2, "sealing.txt lists no public keys to refuse");
  keys
}

#[test]
fn register_refuses_a_public_key_that_makes_no_session() {
  let broker = Broker::start("pubkeys", &[]);
  let mut unusable = refused_public_keys();
  unusable.push(Vec::new());
  for public_key in unusable {
    let reply = RawApp::try_register_with_key(&broker.ns, "odd", &public_key).err().expect("refused");
    let (code, message) = failure(&reply);
    assert_eq!(code, ErrorCode::InvalidArgument, "{message}");
    assert!(message.contains("public_key"), "{message}");
  }
  // The bus goes on: a proper registration is served.
  let mut app = RawApp::register(&broker.ns, "proper");
  publish_vault(&mut app);
  app.unregister();
  broker.stop();
}
