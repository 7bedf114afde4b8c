//! `ring ls` against a real broker: the table lists a channel and a function an app put on the bus;
//! with no broker, one line names the namespace and the exit status is 1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::LiveBroker;
use impulse_ring_connector::{ConnectOptions, Connection, PublishOptions};

#[test]
fn ls_without_a_broker_names_the_namespace_and_exits_1() {
  let ns = impulse_ring_test_support::ns::namespace("ls-nobody");
  let out = Command::new(env!("CARGO_BIN_EXE_ring")).args(["ls", "--ns", &ns]).output().unwrap();
  assert_eq!(out.status.code(), Some(1));
  let err = String::from_utf8_lossy(&out.stderr);
  assert!(err.contains(&ns) && err.lines().count() == 1, "{err}");
}

#[test]
fn ls_lists_apps_channels_and_functions() {
  let ns = impulse_ring_test_support::ns::namespace("ls");
  let _broker = LiveBroker::start(&ns);
  let conn =
    Connection::connect_with("lister-test", ConnectOptions { namespace: Some(ns.clone()), ..Default::default() })
      .unwrap();
  let _publisher = conn.publish_channel("temperatures", "\"double\"", None, PublishOptions::default()).unwrap();
  let _function = conn.expose_function_raw("echo", "\"bytes\"", "\"bytes\"", None, |d| Ok(d.to_vec())).unwrap();
  let out = Command::new(env!("CARGO_BIN_EXE_ring")).args(["ls", "--ns", &ns]).output().unwrap();
  assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
  let text = String::from_utf8_lossy(&out.stdout);
  assert!(text.contains("lister-test"), "{text}");
  assert!(text.contains("temperatures") && text.contains("block"), "{text}");
  // The fingerprint of "double" and of "bytes".
  assert!(text.contains("echo"), "{text}");
  assert!(text.contains("CHANNELS (1)") && text.contains("FUNCTIONS (1)"), "{text}");
  // The live figures: one call answered, and a subscriber two messages behind.
  let subscriber = conn.subscribe("temperatures", None, "\"double\"").unwrap();
  let mut publisher = _publisher;
  publisher.publish(&1.5f64).unwrap();
  publisher.publish(&2.5f64).unwrap();
  let reply =
    conn.call_raw_blocking("echo", None, b"\x04hi", "\"bytes\"", "\"bytes\"", Duration::from_secs(5)).unwrap();
  assert_eq!(reply, b"\x04hi");
  let out = Command::new(env!("CARGO_BIN_EXE_ring")).args(["ls", "--ns", &ns, "--json"]).output().unwrap();
  let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
  assert_eq!(listing["channels"][0]["max_lag"], 2, "{listing}");
  assert_eq!(listing["channels"][0]["missed"], 0, "{listing}");
  assert_eq!(listing["functions"][0]["calls"], 1, "{listing}");
  assert_eq!(listing["functions"][0]["in_flight"], 0, "{listing}");
  drop(subscriber);
  drop(_function);
  drop(publisher);
  drop(conn);
}

#[test]
fn a_channel_can_be_subscribed_to_by_its_id() {
  let ns = impulse_ring_test_support::ns::namespace("ls-id");
  let _broker = LiveBroker::start(&ns);
  let conn =
    Connection::connect_with("by-id", ConnectOptions { namespace: Some(ns.clone()), ..Default::default() }).unwrap();
  let mut publisher = conn.publish_channel("numbers", "\"long\"", None, PublishOptions::default()).unwrap();
  let mut subscriber = conn.subscribe_by_id(publisher.channel_id(), None, "\"long\"").unwrap();
  publisher.publish(&42i64).unwrap();
  assert_eq!(subscriber.recv::<i64>(std::time::Duration::from_secs(5)).unwrap(), Some(42));
  let missing = conn.subscribe_by_id(999_999, None, "\"long\"").err().unwrap();
  assert_eq!(missing.code(), impulse_ring_connector::ErrorCode::UnknownChannel, "{missing}");
  drop(subscriber);
  drop(publisher);
  drop(conn);
}
