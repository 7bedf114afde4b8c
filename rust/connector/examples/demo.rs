//! The demo: two apps on one bus. `sensor` publishes readings on a keyed channel and exposes an
//! `add` function; `dashboard` subscribes to the readings and calls `add`. Run a broker first
//! (`cargo run -p impulsed`), then `cargo run -p impulse-ring-connector --example demo`.

use std::time::Duration;

use impulse_ring_connector::{Connection, Error, PublishOptions};
use serde::{Deserialize, Serialize};

const READING: &str = r#"{"type":"record","name":"Reading","namespace":"demo",
  "fields":[{"name":"seq","type":"long"},{"name":"celsius","type":"double"},{"name":"sensor","type":"string"}]}"#;
const ADD_REQUEST: &str = r#"{"type":"record","name":"AddRequest","namespace":"demo","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}"#;
const ADD_RESPONSE: &str =
  r#"{"type":"record","name":"AddResponse","namespace":"demo","fields":[{"name":"sum","type":"long"}]}"#;

#[derive(Serialize, Deserialize, Debug)]
struct Reading {
  seq: i64,
  celsius: f64,
  sensor: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct AddRequest {
  a: i64,
  b: i64,
}

#[derive(Serialize, Deserialize, Debug)]
struct AddResponse {
  sum: i64,
}

fn main() -> Result<(), Error> {
  let sensor = Connection::connect("sensor")?;
  println!("sensor connected as app {} in namespace `{}`", sensor.app_id(), sensor.namespace());
  let dashboard = Connection::connect("dashboard")?;
  println!("dashboard connected as app {}", dashboard.app_id());

  let mut publisher = sensor.publish_channel("readings", READING, Some("demo-key"), PublishOptions::default())?;
  println!("sensor publishes `readings` (schema {:016x})", publisher.fingerprint());
  let _add = sensor.expose_function::<AddRequest, AddResponse, _>("add", ADD_REQUEST, ADD_RESPONSE, None, |r| {
    r.a.checked_add(r.b).map(|sum| AddResponse { sum }).ok_or_else(|| "overflow".to_string())
  })?;
  println!("sensor exposes `add`");

  match dashboard.subscribe("readings", Some("wrong-key"), READING) {
    Err(e) => println!("dashboard with a wrong key: {e}"),
    Ok(_) => println!("dashboard with a wrong key was let in (unexpected)"),
  }
  let mut subscriber = dashboard.subscribe("readings", Some("demo-key"), READING)?;
  for seq in 0..5 {
    publisher.publish(&Reading { seq, celsius: 20.0 + seq as f64 / 2.0, sensor: "greenhouse".into() })?;
  }
  for _ in 0..5 {
    match subscriber.recv::<Reading>(Duration::from_secs(2))? {
      Some(r) => println!("dashboard received {r:?}"),
      None => println!("dashboard: no reading within 2 s"),
    }
  }

  let sum: AddResponse = dashboard.call_blocking(
    "add",
    None,
    &AddRequest { a: 40, b: 2 },
    ADD_REQUEST,
    ADD_RESPONSE,
    Duration::from_secs(5),
  )?;
  println!("dashboard called add(40, 2) = {}", sum.sum);
  match dashboard.call_blocking::<_, AddResponse>(
    "add",
    None,
    &AddRequest { a: i64::MAX, b: 1 },
    ADD_REQUEST,
    ADD_RESPONSE,
    Duration::from_secs(5),
  ) {
    Err(e) => println!("dashboard called add(i64::MAX, 1): {e}"),
    Ok(r) => println!("add(i64::MAX, 1) = {} (unexpected)", r.sum),
  }
  match dashboard.call_blocking::<_, AddResponse>(
    "nope",
    None,
    &AddRequest { a: 1, b: 2 },
    ADD_REQUEST,
    ADD_RESPONSE,
    Duration::from_secs(1),
  ) {
    Err(e) => println!("dashboard called nope: {e}"),
    Ok(_) => println!("nope answered (unexpected)"),
  }

  drop(publisher);
  match subscriber.recv::<Reading>(Duration::from_secs(2)) {
    Err(e) => println!("dashboard after the sensor closed the channel: {e}"),
    Ok(r) => println!("dashboard after close: {r:?} (unexpected)"),
  }
  println!("demo done");
  Ok(())
}
