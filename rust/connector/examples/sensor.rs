//! `sensor`: publishes a `SensorReading` (spec/schemas/examples/sensor_reading.avsc) on channel
//! `readings` every 300 ms until its stdin ends or it is stopped; every tenth reading is `null`, as
//! from a sensor that failed. `ringctl dev` runs it beside a dashboard and an `add` provider in other
//! languages; alone: run a broker (`cargo run -p impulsed`), then
//! `cargo run -p impulse-ring-connector --example sensor`.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use impulse_ring_connector::{Connection, Error, PublishOptions};

const SCHEMA: &str = include_str!("../../../spec/schemas/examples/sensor_reading.avsc");

/// The reading as an Avro datum. The union of `reading` has three branches (`null`, `double`,
/// `string`), more than serde's `Option` maps to, so the datum is built as an Avro value.
fn datum(schema: &Schema, seq: u64) -> Vec<u8> {
  let (kind, base) = [("TEMPERATURE", 21.0), ("HUMIDITY", 55.0), ("PRESSURE", 1013.0)][(seq % 3) as usize];
  let value = ((base + (seq as f64 / 7.0).sin() * 2.0) * 100.0).round() / 100.0;
  // Every tenth reading failed: the `null` branch.
  let reading = if seq % 10 == 9 {
    Value::Union(0, Box::new(Value::Null))
  } else {
    Value::Union(1, Box::new(Value::Double(value)))
  };
  let taken_at_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
  let record = Value::Record(vec![
    ("sensor_id".into(), Value::String(format!("greenhouse-{}", seq % 3))),
    ("kind".into(), Value::Enum((seq % 3) as u32, kind.into())),
    ("reading".into(), reading),
    ("taken_at_ns".into(), Value::Long(taken_at_ns)),
  ]);
  let writer = GenericDatumWriter::builder(schema).build().expect("a parsed schema has a writer");
  writer.write_value_to_vec(record).expect("the reading fits its schema")
}

fn main() -> Result<(), Error> {
  let schema = Schema::parse_str(SCHEMA).expect("the example schema parses");
  let conn = Connection::connect("sensor")?;
  let mut publisher = conn.publish_channel("readings", SCHEMA, None, PublishOptions::default())?;
  println!(
    "sensor publishes `readings` every 300 ms in namespace `{}` (schema {:016x})",
    conn.namespace(),
    publisher.fingerprint()
  );
  // Stops when stdin ends: `ringctl dev` closes it to stop the sensor cleanly.
  let stop = Arc::new(AtomicBool::new(false));
  let flag = stop.clone();
  std::thread::spawn(move || {
    let _ = std::io::copy(&mut std::io::stdin().lock().take(u64::MAX), &mut std::io::sink());
    flag.store(true, Ordering::Relaxed);
  });
  let mut seq = 0u64;
  while !stop.load(Ordering::Relaxed) && !conn.broker_gone() {
    publisher.publish_raw(&datum(&schema, seq))?;
    seq += 1;
    std::thread::sleep(Duration::from_millis(300));
  }
  println!("sensor published {seq} readings");
  Ok(())
}
