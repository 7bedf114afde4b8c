//! Checks the shared test vectors in `spec/vectors/` against the Rust core, the reference every other
//! connector is tested against: schema fingerprints and canonical forms, and control frame payloads
//! in both directions. Also checks that the generated `spec/schemas/control.avsc` is current.

use std::path::{Path, PathBuf};

use impulse_ring_core::avro::{fingerprint_hex, parse_fingerprint_hex, parse_schema};
use impulse_ring_core::control::{control_fingerprint, control_schema_json, ControlMessage, CONTROL_BRANCHES};

fn spec_path(relative: &str) -> PathBuf {
  Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec").join(relative)
}

/// One numbered case: its header line and its `key: value` lines.
struct Case {
  number: usize,
  title: String,
  fields: Vec<(String, String)>,
}

impl Case {
  fn get(&self, key: &str) -> &str {
    match self.fields.iter().find(|(k, _)| k == key) {
      Some((_, value)) => value,
      None => panic!("case {} ({}) has no `{key}:` line", self.number, self.title),
    }
  }
}

/// Reads the line-oriented vector format: `# N title`, then `key: value` lines, then a blank line.
/// Comment lines (`#` not followed by a number) are skipped.
fn read_cases(relative: &str) -> Vec<Case> {
  let path = spec_path(relative);
  let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
  let mut cases: Vec<Case> = Vec::new();
  for line in text.lines() {
    if let Some(header) = line.strip_prefix("# ") {
      let (number, title) = header.split_once(' ').unwrap_or((header, ""));
      if let Ok(number) = number.parse() {
        cases.push(Case { number, title: title.to_owned(), fields: Vec::new() });
      }
    } else if let Some((key, value)) = line.split_once(": ") {
      let case = cases.last_mut().unwrap_or_else(|| panic!("`{line}` before any case header"));
      case.fields.push((key.to_owned(), value.to_owned()));
    }
  }
  for (i, case) in cases.iter().enumerate() {
    assert_eq!(case.number, i, "{relative}: cases must be numbered 0, 1, 2, ... in order");
  }
  cases
}

fn from_hex(hex: &str) -> Vec<u8> {
  assert!(hex.len() % 2 == 0, "odd number of hex digits");
  (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit")).collect()
}

fn to_hex(bytes: &[u8]) -> String {
  bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_fingerprint_vector_matches_canonical_form_and_fingerprint() {
  let cases = read_cases("vectors/fingerprints.txt");
  assert!(cases.len() >= 34, "the Avro specification's cases are missing");
  let mut failures = Vec::new();
  for case in &cases {
    let expected_fp = parse_fingerprint_hex(case.get("fingerprint")).expect("16 hex digits");
    match parse_schema(case.get("schema")) {
      Ok(parsed) => {
        if parsed.canonical != case.get("canonical") || parsed.fingerprint != expected_fp {
          failures.push(format!(
            "case {} ({}): got canonical {} fingerprint {}",
            case.number,
            case.title,
            parsed.canonical,
            fingerprint_hex(parsed.fingerprint)
          ));
        }
      }
      Err(e) => failures.push(format!("case {} ({}): {e}", case.number, case.title)),
    }
  }
  assert!(failures.is_empty(), "fingerprint vectors failed:\n{}", failures.join("\n"));
}

#[test]
fn int_schema_prints_the_fingerprint_every_connector_agrees_on() {
  let parsed = parse_schema("\"int\"").expect("valid schema");
  assert_eq!(fingerprint_hex(parsed.fingerprint), "7275d51a3f395c8f");
}

#[test]
fn every_control_vector_decodes_to_its_message_and_encodes_to_its_bytes() {
  let cases = read_cases("vectors/control.txt");
  let mut opcodes_seen = [false; CONTROL_BRANCHES];
  for case in &cases {
    let bytes = from_hex(case.get("bytes"));
    let (name, json) = case.get("message").split_once(' ').expect("`message: Name {json}`");
    let expected_json: serde_json::Value = serde_json::from_str(json).expect("message json");
    let message = ControlMessage::decode_frame_payload(&bytes)
      .unwrap_or_else(|e| panic!("case {} ({}): does not decode: {e}", case.number, case.title));
    assert_eq!(message.name(), name, "case {}", case.number);
    assert_eq!(message.to_json(), expected_json, "case {}", case.number);
    assert_eq!(to_hex(&message.encode_frame_payload()), case.get("bytes"), "case {}", case.number);
    opcodes_seen[message.opcode()] = true;
  }
  let missing: Vec<usize> = (0..CONTROL_BRANCHES).filter(|&i| !opcodes_seen[i]).collect();
  assert!(missing.is_empty(), "opcodes without a control vector: {missing:?}");
}

#[test]
fn control_vectors_carry_the_current_control_fingerprint() {
  let text = std::fs::read_to_string(spec_path("vectors/control.txt")).expect("control.txt");
  let line = format!("# control union fingerprint: {}", fingerprint_hex(control_fingerprint()));
  assert!(text.contains(&line), "control.txt is stale; regenerate it with the dump_schemas example");
}

#[test]
fn checked_in_control_avsc_is_current() {
  let checked_in = std::fs::read_to_string(spec_path("schemas/control.avsc")).expect("control.avsc");
  assert_eq!(
    checked_in,
    control_schema_json(),
    "spec/schemas/control.avsc is stale; run `cargo ringctl gen` and commit the result"
  );
}

#[test]
fn the_control_fingerprint_constant_matches_the_generated_schema() {
  assert_eq!(
    impulse_ring_core::control::control_fingerprint(),
    impulse_ring_core::layout::IR_CONTROL_FINGERPRINT,
    "the control records changed: update IR_CONTROL_FINGERPRINT in layout.rs to the printed value, then run `cargo ringctl gen`"
  );
}

/// `spec/vectors/errors.txt` (generated from `ErrorCode`): every row names a code this core knows,
/// with the same name and description, and every code has a row.
#[test]
fn error_vocabulary_vectors_match_error_code() {
  use impulse_ring_core::error_code::ErrorCode;
  let path = spec_path("vectors/errors.txt");
  let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
  let rows: Vec<(i32, &str, &str)> = text
    .lines()
    .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    .map(|l| {
      let mut parts = l.splitn(3, ' ');
      let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad code in `{l}`"));
      let name = parts.next().unwrap_or_else(|| panic!("no name in `{l}`"));
      (code, name, parts.next().unwrap_or_else(|| panic!("no description in `{l}`")))
    })
    .collect();
  assert_eq!(rows.len(), ErrorCode::ALL.len(), "one row per code");
  for (code, name, description) in rows {
    let known = ErrorCode::from_i32(code).unwrap_or_else(|| panic!("errors.txt has code {code}, the core does not"));
    assert_eq!(known.name(), name, "name of code {code}");
    assert_eq!(known.description(), description, "description of code {code}");
  }
}
