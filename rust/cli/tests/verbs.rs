//! The live verbs against a real broker, with real apps beside them (this test process, `ring publish`
//! and the Rust testee): `tap` prints exactly what was published, decoded; `call` round-trips JSON →
//! Avro → JSON through every kind of Avro type; `describe` and `monitor` show what happens; each
//! failure is one line on stderr with the documented exit status (1 runtime, 2 bad input).

mod common;

use std::time::Duration;

use common::*;
use impulse_ring_connector::PublishOptions;
use impulse_ring_test_support::{duct, ns::namespace, Child, Echo, Signal};
use serde::Serialize;
use serde_json::{json, Value};

const READING: &str = r#"{"type":"record","name":"Reading","namespace":"demo",
  "fields":[{"name":"seq","type":"long"},{"name":"celsius","type":"double"},{"name":"sensor","type":"string"}]}"#;

/// A record with every kind of Avro type the tool converts: unions (with a named record branch), array,
/// map, enum, fixed, bytes, and a field with a default.
const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},
  {"name":"note","type":["null","string"]},
  {"name":"price","type":["null","double",{"type":"record","name":"Money","fields":[
    {"name":"units","type":"long"},{"name":"currency","type":"string"}]}]},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"stock","type":{"type":"map","values":"int"}},
  {"name":"state","type":{"type":"enum","name":"State","symbols":["OPEN","PAID","SHIPPED"]}},
  {"name":"code","type":{"type":"fixed","name":"Code","size":4}},
  {"name":"blob","type":"bytes"},
  {"name":"paid","type":"boolean","default":false}]}"#;

#[derive(Serialize)]
struct Reading {
  seq: i64,
  celsius: f64,
  sensor: String,
}

fn scratch(test: &str, name: &str, contents: &str) -> String {
  let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
  std::fs::create_dir_all(&dir).unwrap();
  let path = dir.join(name);
  std::fs::write(&path, contents).unwrap();
  path.to_string_lossy().into_owned()
}

/// Asserts a failed run: exit `code`, exactly one line on stderr, containing `needle`.
fn assert_fails(out: &std::process::Output, code: i32, needle: &str) {
  let err = stderr(out);
  assert_eq!(out.status.code(), Some(code), "stderr: {err}");
  assert_eq!(err.lines().count(), 1, "one line expected: {err}");
  assert!(err.contains(needle), "`{needle}` expected in: {err}");
}

#[test]
fn tap_prints_each_message_decoded_with_its_sequence_number() {
  let ns = namespace("cli-tap");
  let _broker = LiveBroker::start(&ns);
  let sensor = app("sensor", &ns);
  let mut publisher = sensor.publish_channel("readings", READING, None, PublishOptions::default()).unwrap();
  let mut tap = ring_child(&ns, &["tap", "readings", "--count", "3"]);
  wait_subscribers(&sensor, "readings", 1);
  for seq in 0..3 {
    publisher.publish(&Reading { seq, celsius: 20.0 + seq as f64 / 4.0, sensor: "greenhouse".into() }).unwrap();
  }
  let status = tap.wait_exit(Duration::from_secs(10)).unwrap();
  tap.close_stdin();
  assert!(status.success(), "{}", tap.transcript());
  assert_eq!(
    tap.lines(),
    [
      r#"0 {"seq":0,"celsius":20.0,"sensor":"greenhouse"}"#,
      r#"1 {"seq":1,"celsius":20.25,"sensor":"greenhouse"}"#,
      r#"2 {"seq":2,"celsius":20.5,"sensor":"greenhouse"}"#,
    ]
  );
}

#[test]
fn publish_reads_json_lines_and_tap_prints_them_back_raw_and_as_json() {
  let test = "cli-publish";
  let ns = namespace(test);
  let _broker = LiveBroker::start(&ns);
  let schema = scratch(test, "order.avsc", ORDER);
  let mut publisher = ring_child(&ns, &["publish", "orders", "--schema", &schema]);
  let watcher = app("watcher", &ns);
  wait_until("channel `orders`", || watcher.describe("orders").is_ok());
  let fingerprint = watcher.describe("orders").unwrap().channels[0].fingerprint;
  let mut tap = ring_child(&ns, &["tap", "orders", "--count", "2", "--json"]);
  let mut raw = ring_child(&ns, &["tap", "orders", "--count", "1", "--raw"]);
  wait_subscribers(&watcher, "orders", 2);
  let first = json!({"id": 7, "note": {"string": "fragile"}, "price": {"shop.Money": {"units": 1250, "currency": "EUR"}},
    "tags": ["a", "b"], "stock": {"x": 3}, "state": "PAID", "code": "\u{0}\u{1}\u{fe}\u{ff}", "blob": "hi\u{0}", "paid": true});
  let second = json!({"id": 8, "note": null, "price": {"double": 2.5}, "tags": [], "stock": {}, "state": "OPEN",
    "code": "abcd", "blob": "", "paid": false});
  publisher.send_line(&first.to_string()).unwrap();
  publisher.send_line(&second.to_string()).unwrap();
  for child in [&tap, &raw] {
    assert!(child.wait_exit(Duration::from_secs(10)).unwrap().success(), "{}", child.transcript());
  }
  publisher.close_stdin();
  assert!(publisher.wait_exit(Duration::from_secs(10)).unwrap().success(), "{}", publisher.transcript());
  let lines: Vec<Value> = tap.lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
  assert_eq!(lines, [json!({"seq": 0, "message": first}), json!({"seq": 1, "message": second})]);
  // The first message's Single Object Encoding: marker, fingerprint, then the datum (id 7 is 0x0e).
  let soe = raw.lines().concat();
  let expected = format!("0 c301{}0e", hex_le(fingerprint as u64));
  assert!(soe.starts_with(&expected), "{soe} does not start with {expected}");
  tap.close_stdin();
  raw.close_stdin();
}

fn hex_le(fingerprint: u64) -> String {
  fingerprint.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn call_round_trips_every_avro_type_through_json() {
  let ns = namespace("cli-call");
  let _broker = LiveBroker::start(&ns);
  let provider = app("shop", &ns);
  let _echo = provider.expose_function_raw("orders.echo", ORDER, ORDER, None, |datum| Ok(datum.to_vec()));
  let request = json!({"id": -3, "note": {"string": "ünïcødé"}, "price": {"Money": {"units": 9, "currency": "USD"}},
    "tags": ["x"], "stock": {"left": -1, "right": 2}, "state": "SHIPPED", "code": "\u{80}\u{81}zz", "blob": "\u{ff}"});
  let out = ring(&ns, &["call", "orders.echo", &request.to_string()]);
  assert!(out.status.success(), "{}", stderr(&out));
  // The short branch name is accepted and the full one printed; the missing field took its default.
  let mut expected = request.clone();
  expected["price"] = json!({"shop.Money": {"units": 9, "currency": "USD"}});
  expected["paid"] = json!(false);
  let printed: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
  assert_eq!(printed, expected);
}

#[test]
fn call_refuses_an_argument_that_does_not_fit_naming_the_field() {
  let ns = namespace("cli-call-bad");
  let _broker = LiveBroker::start(&ns);
  let provider = app("shop", &ns);
  let served = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
  let counter = served.clone();
  let _echo = provider.expose_function_raw("orders.echo", ORDER, ORDER, None, move |d| {
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(d.to_vec())
  });
  let wrong_type = ring(&ns, &["call", "orders.echo", r#"{"id": "seven"}"#]);
  assert_fails(&wrong_type, 2, "`.id`: expected a long (64 bits), got the string \"seven\"");
  let bad_enum = json!({"id": 1, "note": null, "price": null, "tags": [], "stock": {}, "state": "LOST",
    "code": "abcd", "blob": ""});
  assert_fails(
    &ring(&ns, &["call", "orders.echo", &bad_enum.to_string()]),
    2,
    "`.state`: expected one of OPEN, PAID, SHIPPED",
  );
  let short_fixed = json!({"id": 1, "note": null, "price": null, "tags": [], "stock": {}, "state": "OPEN",
    "code": "abc", "blob": ""});
  assert_fails(&ring(&ns, &["call", "orders.echo", &short_fixed.to_string()]), 2, "`.code`: expected 4 bytes");
  assert_fails(&ring(&ns, &["call", "orders.echo", "{not json"]), 2, "the request is not JSON");
  assert_eq!(served.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing may be sent for a bad argument");
}

#[test]
fn unknown_names_wrong_keys_and_a_missing_broker_are_one_line_errors() {
  let ns = namespace("cli-errors");
  let nobody = namespace("cli-nobody");
  assert_fails(&ring(&nobody, &["tap", "readings"]), 1, &nobody);
  assert_fails(&ring(&nobody, &["call", "add", "{}"]), 1, &nobody);
  let _broker = LiveBroker::start(&ns);
  let owner = app("owner", &ns);
  let _channel = owner.publish_channel("secret", READING, Some("right"), PublishOptions::default()).unwrap();
  let _function =
    owner.expose_function_raw("vault", "\"long\"", "\"long\"", Some("right"), |d| Ok(d.to_vec())).unwrap();
  assert_fails(&ring(&ns, &["tap", "secret", "--key", "wrong"]), 1, "WrongKey");
  assert_fails(&ring(&ns, &["tap", "secret"]), 1, "WrongKey");
  assert_fails(&ring(&ns, &["call", "vault", "5", "--key", "wrong"]), 1, "WrongKey");
  assert_fails(&ring(&ns, &["tap", "nothing"]), 1, "UnknownChannel");
  assert_fails(&ring(&ns, &["call", "nothing", "{}"]), 1, "UnknownFunction");
  assert_fails(&ring(&ns, &["describe", "nothing"]), 1, "no channel or function is named `nothing`");
  assert_fails(&ring(&ns, &["call", "secret", "{}"]), 1, "is a channel, not a function");
  let ok = ring(&ns, &["call", "vault", "5", "--key", "right"]);
  assert!(ok.status.success(), "{}", stderr(&ok));
  assert_eq!(stdout(&ok), "5\n");
}

#[test]
fn monitor_sees_apps_join_publish_and_die() {
  let ns = namespace("cli-monitor");
  let _broker = LiveBroker::start(&ns);
  let monitor = ring_child(&ns, &["monitor", "--json"]);
  // The monitor is on the bus (and has sent Monitor) once the listing shows it and it printed nothing
  // else: its own Register precedes its Monitor, so wait for the broker to list it, then a bit more.
  // The monitor watches once it reports a probe app coming and going (its Monitor request may be
  // handled after the first probes).
  wait_until("the monitor to report a probe", || {
    drop(app("probe", &ns));
    monitor.lines().iter().any(|l| l.contains(r#""app":"probe""#))
  });
  let testee = Child::start(
    "testee",
    duct::cmd(built("examples/testee"), ["publisher", "--channel", "doomed", "--count", "0", "--hold-ms", "60000"])
      .env("IMPULSE_RING_NS", &ns),
    Echo::Quiet,
  )
  .unwrap();
  testee.wait_line("published 0", Duration::from_secs(10)).unwrap();
  let pid = testee.pid() as i64;
  testee.kill().unwrap();
  wait_until("app-died in the monitor", || monitor.lines().iter().any(|l| l.contains("app-died")));
  let events: Vec<Value> = monitor.lines().iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
  let of_testee: Vec<(&str, &str)> = events
    .iter()
    .filter(|e| e["pid"] == pid)
    .map(|e| (e["kind"].as_str().unwrap(), e["subject"].as_str().unwrap()))
    .collect();
  assert_eq!(
    of_testee,
    [("app-joined", ""), ("channel-published", "doomed"), ("channel-closed", "doomed"), ("app-died", "")],
    "{}",
    monitor.transcript()
  );
  assert!(events.iter().all(|e| e["app"] != "ring"), "the monitor does not report itself");
}

#[test]
fn describe_json_matches_the_golden_file() {
  let test = "cli-describe";
  let ns = namespace(test);
  let _broker = LiveBroker::start(&ns);
  let sensor = app("sensor", &ns);
  let mut publisher = sensor.publish_channel("readings", READING, Some("k"), PublishOptions::default()).unwrap();
  let _add = sensor.expose_function_raw("readings", "\"long\"", "\"double\"", None, |d| Ok(d.to_vec())).unwrap();
  let dashboard = app("dashboard", &ns);
  let mut subscriber = dashboard.subscribe("readings", Some("k"), READING).unwrap();
  for seq in 0..3 {
    publisher.publish(&Reading { seq, celsius: 1.5, sensor: "s".into() }).unwrap();
  }
  assert!(subscriber.recv_raw(Duration::from_secs(5)).unwrap().is_some());
  let out = ring(&ns, &["describe", "readings", "--json"]);
  assert!(out.status.success(), "{}", stderr(&out));
  let mut printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
  // Pids differ from run to run; the rest is deterministic.
  for kind in ["channels", "functions"] {
    for entry in printed[kind].as_array_mut().unwrap() {
      entry["owner"]["pid"] = json!(0);
      for s in entry.get_mut("subscribers").and_then(Value::as_array_mut).into_iter().flatten() {
        s["pid"] = json!(0);
      }
    }
  }
  let golden_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/describe.json");
  let text = serde_json::to_string_pretty(&printed).unwrap() + "\n";
  if std::env::var_os("RING_UPDATE_GOLDEN").is_some() {
    std::fs::write(&golden_path, &text).unwrap();
  }
  let golden = std::fs::read_to_string(&golden_path).unwrap_or_default();
  assert_eq!(text, golden, "rerun with RING_UPDATE_GOLDEN=1 to accept the new output");
  drop(subscriber);
}

#[test]
fn a_stalled_tap_never_holds_up_a_block_publisher_and_reports_what_it_missed() {
  let ns = namespace("cli-tap-block");
  let _broker = LiveBroker::start(&ns);
  let producer = app("producer", &ns);
  let options = PublishOptions { capacity: 4096, ..PublishOptions::default() };
  let mut publisher = producer.publish_channel("fast", "\"long\"", None, options).unwrap();
  let tap = ring_child(&ns, &["tap", "fast"]);
  // `Describe` lists the tap; the listing does not count it as a subscriber (it never gates).
  wait_subscribers(&producer, "fast", 1);
  assert_eq!(producer.list().unwrap().channels[0].subscribers, 0);
  tap.signal(Signal::STOP).unwrap();
  let datum = |n: i64| {
    let mut out = Vec::new();
    impulse_ring_core::avro::put_long(&mut out, n);
    out
  };
  // Ten rings' worth while the tap cannot read: a gated publisher would get WouldBlock at once.
  for n in 0..2000 {
    publisher.try_publish_raw(&datum(n)).unwrap_or_else(|e| panic!("message {n}: {e}"));
  }
  tap.signal(Signal::CONT).unwrap();
  let missed = tap.wait_line("missed ", Duration::from_secs(10)).unwrap();
  let count: u64 = missed["missed ".len()..].parse().unwrap();
  assert!((1..2000).contains(&count), "{missed}");
  publisher.try_publish_raw(&datum(-1)).unwrap();
  tap.wait_line("2000 -1", Duration::from_secs(10)).unwrap();
  // Every line after the gap is the next message, in order, up to the marker.
  let lines = tap.lines();
  let after: Vec<&String> = lines.iter().skip_while(|l| !l.starts_with("missed ")).skip(1).collect();
  for pair in after.windows(2) {
    let seq = |l: &str| l.split(' ').next().unwrap().parse::<u64>().unwrap();
    if !pair[1].starts_with("missed ") && !pair[0].starts_with("missed ") {
      assert_eq!(seq(pair[1]), seq(pair[0]) + 1, "{}", tap.transcript());
    }
  }
}

#[test]
fn top_prints_plain_refreshes_when_stdout_is_not_a_terminal() {
  let ns = namespace("cli-top");
  let _broker = LiveBroker::start(&ns);
  let sensor = app("sensor", &ns);
  let _publisher = sensor.publish_channel("readings", READING, None, PublishOptions::default()).unwrap();
  let _add = sensor.expose_function_raw("add", "\"long\"", "\"long\"", None, |d| Ok(d.to_vec())).unwrap();
  let out = ring(&ns, &["top", "--iterations", "2"]);
  assert!(out.status.success(), "{}", stderr(&out));
  let text = stdout(&out);
  assert_eq!(text.matches("ring top —").count(), 2, "two refreshes: {text}");
  assert!(text.contains("CHANNELS (by rate)") && text.contains("readings"), "{text}");
  assert!(text.contains("FUNCTIONS (by calls/s)") && text.contains("add"), "{text}");
}

#[test]
fn completions_cover_every_verb() {
  let out = ring(&namespace("cli-completions"), &[]);
  assert_eq!(out.status.code(), Some(2), "no verb is a usage error");
  let out = std::process::Command::new(env!("CARGO_BIN_EXE_ring")).args(["completions", "bash"]).output().unwrap();
  assert!(out.status.success());
  let script = stdout(&out);
  for verb in ["schema", "ls", "describe", "tap", "call", "publish", "top", "monitor"] {
    assert!(script.contains(verb), "`{verb}` missing from the bash completions");
  }
}
