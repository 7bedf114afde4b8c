//! Schemas from apps (spec/authoring-schemas.md, Limits): `parse_schema` over arbitrary text, which runs
//! the hostile-schema validator (rust/core/src/avro/validate.rs) before apache-avro sees anything.
//! `parse_schema` catches a panic inside apache-avro and reports it, but libFuzzer's panic hook aborts
//! first: a schema the validator let through that makes apache-avro panic is a crash here. Whatever
//! parses has a canonical form that parses again to itself, with the same fingerprint.
#![no_main]

use impulse_ring_core::avro;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
  let Ok(text) = std::str::from_utf8(data) else { return };
  if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
    let _ = avro::validate::check_schema_json(&value);
  }
  if let Ok(parsed) = avro::parse_schema(text) {
    assert_eq!(parsed.fingerprint, avro::rabin_fingerprint(parsed.canonical.as_bytes()));
    let again = avro::parse_schema(&parsed.canonical).expect("a canonical form parses");
    assert_eq!(again.canonical, parsed.canonical, "canonical form is not a fixed point");
    assert_eq!(again.fingerprint, parsed.fingerprint);
  }
});
