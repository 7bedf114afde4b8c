//! Proves the hand-written control codec is real Avro: apache-avro's own datum reader decodes every
//! control vector against `spec/schemas/control.avsc` to the same values, and computes the same
//! fingerprint for the schema.

use std::path::Path;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as AvroValue;
use apache_avro::Schema;
use impulse_ring_core::avro::{fingerprint_of, split_soe};
use impulse_ring_core::control::{control_fingerprint, control_schema_json, ControlMessage};

fn from_hex(hex: &str) -> Vec<u8> {
  (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit")).collect()
}

fn control_vector_payloads() -> Vec<Vec<u8>> {
  let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/control.txt");
  let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
  text.lines().filter_map(|line| line.strip_prefix("bytes: ")).map(from_hex).collect()
}

#[test]
fn apache_avro_decodes_every_control_vector_to_the_same_values() {
  let schema = Schema::parse_str(&control_schema_json()).expect("control schema parses");
  let reader = GenericDatumReader::builder(&schema).build().expect("datum reader");
  let payloads = control_vector_payloads();
  assert!(!payloads.is_empty());
  for payload in payloads {
    let ours = ControlMessage::decode_frame_payload(&payload).expect("our decoder");
    let (_, mut datum) = split_soe(&payload).expect("soe");
    let theirs = reader.read_value(&mut datum).expect("apache-avro decodes our bytes");
    assert!(datum.is_empty(), "apache-avro left bytes unread for {}", ours.name());
    let AvroValue::Union(branch, record) = theirs else { panic!("not a union value: {theirs:?}") };
    assert_eq!(branch as usize, ours.opcode());
    let json = serde_json::Value::try_from(*record).expect("json");
    assert_eq!(json, ours.to_json(), "{}", ours.name());
  }
}

#[test]
fn apache_avro_agrees_on_the_control_fingerprint() {
  let schema = Schema::parse_str(&control_schema_json()).expect("control schema parses");
  let theirs = schema.fingerprint::<apache_avro::rabin::Rabin>();
  assert_eq!(theirs.bytes, control_fingerprint().to_le_bytes());
  assert_eq!(fingerprint_of(&schema), control_fingerprint());
}
