//! No schema an app sends can take the broker down: every case of `spec/vectors/invalid-schemas.txt`
//! goes through each request that carries a schema (PublishChannel, Subscribe, ExposeFunction and
//! ResolveFunction, in either schema position) and is answered `InvalidSchema`, while the bus keeps
//! serving. The Rust connector refuses the same schemas itself, and stays up.

mod support;

use std::path::Path;

use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use support::{failure, Broker, RawApp};

/// (description, schema) of every case in the vector file.
fn hostile_schemas() -> Vec<(String, String)> {
  let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/invalid-schemas.txt");
  let text = std::fs::read_to_string(&path).expect("spec/vectors/invalid-schemas.txt");
  let mut cases = Vec::new();
  let mut description = String::new();
  for line in text.lines() {
    if let Some(rest) = line.strip_prefix("# ").filter(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
      description = rest.to_string();
    } else if let Some(schema) = line.strip_prefix("schema: ") {
      cases.push((description.clone(), schema.to_string()));
    }
  }
  assert!(cases.len() >= 15, "the vector file lost its cases");
  cases
}

const GOOD: &str = r#"{"type":"record","name":"Ok","fields":[{"name":"x","type":"long"}]}"#;

/// The requests that carry `schema`, each in a position of its own.
fn requests_with(schema: &str) -> Vec<(&'static str, ControlMessage)> {
  let s = schema.to_string();
  let good = GOOD.to_string();
  vec![
    (
      "PublishChannel",
      PublishChannel { request_id: 0, name: "h".into(), schema: s.clone(), key: None, capacity: 0, lossy: false }
        .into(),
    ),
    ("Subscribe", Subscribe { request_id: 0, name: "h".into(), schema: s.clone(), key: None }.into()),
    (
      "ExposeFunction (request)",
      ExposeFunction {
        request_id: 0,
        name: "f".into(),
        request_schema: s.clone(),
        response_schema: good.clone(),
        key: None,
      }
      .into(),
    ),
    (
      "ExposeFunction (response)",
      ExposeFunction {
        request_id: 0,
        name: "f".into(),
        request_schema: good.clone(),
        response_schema: s.clone(),
        key: None,
      }
      .into(),
    ),
    (
      "ResolveFunction (request)",
      ResolveFunction {
        request_id: 0,
        name: "f".into(),
        request_schema: s.clone(),
        response_schema: good.clone(),
        key: None,
      }
      .into(),
    ),
    (
      "ResolveFunction (response)",
      ResolveFunction { request_id: 0, name: "f".into(), request_schema: good, response_schema: s, key: None }.into(),
    ),
  ]
}

#[test]
fn hostile_schemas_are_refused_on_every_path_and_the_bus_goes_on() {
  let mut broker = Broker::start("hostile", &[]);
  let mut app = RawApp::register(&broker.ns, "hostile");
  // A bystander with a live channel: it must not notice anything.
  let mut bystander = RawApp::register(&broker.ns, "bystander");
  let published = bystander.request(
    PublishChannel { request_id: 0, name: "calm".into(), schema: GOOD.into(), key: None, capacity: 0, lossy: false }
      .into(),
  );
  assert!(matches!(published, ControlMessage::ChannelPublished(_)), "{published:?}");

  for (description, schema) in hostile_schemas() {
    for (path, request) in requests_with(&schema) {
      let reply = app.request(request);
      let (code, message) = failure(&reply);
      assert_eq!(code, ErrorCode::InvalidSchema, "{path}, case `{description}`: {message}");
      assert!(!message.is_empty() && !message.ends_with('.'), "{message}");
      assert!(broker.alive(), "the broker died on {path}, case `{description}`\n{}", broker.log());
    }
  }

  // The bus still works for everyone: a subscription to the bystander's channel and a listing.
  let subscribed = app.request(Subscribe { request_id: 0, name: "calm".into(), schema: GOOD.into(), key: None }.into());
  assert!(matches!(subscribed, ControlMessage::Subscribed(_)), "{subscribed:?}");
  match bystander.request(List { request_id: 0 }.into()) {
    ControlMessage::Listing(listing) => assert_eq!(listing.apps.len(), 2),
    other => panic!("expected Listing, got {other:?}"),
  }
  assert!(!broker.log().contains("panicked"), "{}", broker.log());
  app.unregister();
  bystander.unregister();
  broker.stop();
}

#[test]
fn the_rust_connector_refuses_hostile_schemas_without_taking_its_app_down() {
  let broker = Broker::start("hostile-conn", &[]);
  let options = impulse_ring_connector::ConnectOptions { namespace: Some(broker.ns.clone()), ..Default::default() };
  let conn = impulse_ring_connector::Connection::connect_with("hostile-conn", options).expect("connect");
  for (description, schema) in hostile_schemas() {
    let err = conn
      .publish_channel("h", &schema, None, Default::default())
      .err()
      .unwrap_or_else(|| panic!("case `{description}` was accepted"));
    assert_eq!(err.code(), ErrorCode::InvalidSchema, "case `{description}`: {err}");
    let err = conn.subscribe("h", None, &schema).err().unwrap_or_else(|| panic!("case `{description}` was accepted"));
    assert_eq!(err.code(), ErrorCode::InvalidSchema, "case `{description}`");
  }
  drop(conn);
  broker.stop();
}

/// Defence in depth: whatever the validation misses, a panic while handling one request fails that
/// request and the bus goes on. Debug builds of the broker panic on purpose on the record named in
/// `IMPULSED_TEST_PANIC_ON`.
#[test]
fn a_panic_while_handling_a_request_fails_only_that_request() {
  let ns = impulse_ring_test_support::ns::namespace("bh-panic");
  let mut broker = Broker::spawn_with_env(&ns, &[], &[("IMPULSED_TEST_PANIC_ON", "List")]);
  broker.wait_ready();
  let mut app = RawApp::register(&broker.ns, "panicky");
  let (code, message) = failure(&app.request(List { request_id: 0 }.into()));
  assert_eq!(code, ErrorCode::Protocol, "{message}");
  assert!(message.contains("the broker failed on this List"), "{message}");
  assert!(broker.wait_log("handling a request panicked", std::time::Duration::from_secs(5)), "{}", broker.log());
  // The same app and the same broker go on.
  let published = app.request(
    PublishChannel { request_id: 0, name: "after".into(), schema: GOOD.into(), key: None, capacity: 0, lossy: false }
      .into(),
  );
  assert!(matches!(published, ControlMessage::ChannelPublished(_)), "{published:?}");
  assert!(broker.alive());
  app.unregister();
  broker.stop();
}
