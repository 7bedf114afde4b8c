//! Avro schemas: parsing through `apache-avro` (after [`super::validate`] bounded what it may see), the
//! Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint, and the hex form Ring prints.

use std::fmt::Write as _;

use apache_avro::Schema;
use serde_json::Value;

/// A schema parsed and validated by `apache-avro`, with its canonical form and fingerprint.
#[derive(Clone, Debug)]
pub struct ParsedSchema {
  /// The parsed schema.
  pub schema: Schema,
  /// The Parsing Canonical Form, the text the fingerprint is computed over.
  pub canonical: String,
  /// The CRC-64-AVRO (Rabin) fingerprint of [`Self::canonical`].
  pub fingerprint: u64,
}

/// Why a schema was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
  /// The text is not JSON at all.
  #[error("schema is not valid json: {reason}")]
  InvalidJson {
    /// What the JSON parser objected to, with line and column.
    reason: String,
  },
  /// The text is JSON but not a valid Avro schema.
  #[error("json is not a valid avro schema: {reason}")]
  InvalidSchema {
    /// What the Avro parser objected to.
    reason: String,
  },
  /// The schema breaks one of Ring's bounds ([`super::validate`]): too long, too deep, a name too long,
  /// a size or precision out of range, or a value where only a schema may stand.
  #[error("schema refused: {reason}")]
  OutOfBounds {
    /// Which bound, and where in the schema.
    reason: String,
  },
}

/// Parses schema JSON and computes its Parsing Canonical Form and CRC-64-AVRO fingerprint.
///
/// Never panics, whatever the text: [`super::validate`] bounds it before apache-avro sees it, and a
/// panic inside apache-avro that the bounds missed is still caught and reported as `InvalidSchema`.
pub fn parse_schema(json: &str) -> Result<ParsedSchema, SchemaError> {
  super::validate::check_schema_len(json).map_err(|reason| SchemaError::OutOfBounds { reason })?;
  let value: Value = serde_json::from_str(json).map_err(|e| SchemaError::InvalidJson { reason: e.to_string() })?;
  super::validate::check_schema_json(&value).map_err(|reason| SchemaError::OutOfBounds { reason })?;
  let parsed = std::panic::catch_unwind(|| {
    let schema =
      Schema::parse(&value).map_err(|e| SchemaError::InvalidSchema { reason: lower_first(&e.to_string()) })?;
    let canonical = canonical_form(&schema);
    let fingerprint = rabin_fingerprint(canonical.as_bytes());
    Ok(ParsedSchema { schema, canonical, fingerprint })
  });
  parsed.unwrap_or_else(|_| {
    Err(SchemaError::InvalidSchema {
      reason: "the avro library failed on this schema (a bound ring does not check yet)".into(),
    })
  })
}

/// The Parsing Canonical Form of a parsed schema, exactly as the Avro specification defines it.
///
/// apache-avro 0.22 resolves full names and orders attributes, but keeps `order`, `precision` and
/// `scale`, which the specification's [STRIP] rule removes (only `name`, `type`, `fields`, `symbols`,
/// `items`, `values` and `size` stay). We strip them here so our fingerprints match every other Avro
/// library's: `spec/vectors/fingerprints.txt` case 26 is the Avro test suite's own case for `order`.
pub fn canonical_form(schema: &Schema) -> String {
  let avro_form = schema.canonical_form();
  match serde_json::from_str::<Value>(&avro_form) {
    Ok(value) => {
      let mut out = String::with_capacity(avro_form.len());
      write_canonical(&mut out, &value);
      out
    }
    // apache-avro always produces JSON; keep its form rather than fail if that ever changes.
    Err(_) => avro_form,
  }
}

/// Attributes the [STRIP] rule keeps, in the order the [ORDER] rule writes them.
const CANONICAL_ATTRIBUTES: [&str; 7] = ["name", "type", "fields", "symbols", "items", "values", "size"];

fn write_canonical(out: &mut String, value: &Value) {
  match value {
    Value::Object(map) => {
      // [PRIMITIVES]: once stripped, `{"type": "bytes", "logicalType": ...}` is just `"bytes"`.
      if let (1, Some(Value::String(name))) = (map.len(), map.get("type")) {
        write_canonical(out, &Value::from(name.as_str()));
        return;
      }
      let kept: Vec<(&str, &Value)> =
        CANONICAL_ATTRIBUTES.iter().filter_map(|key| map.get(*key).map(|v| (*key, v))).collect();
      if let [("type", Value::String(name))] = kept.as_slice() {
        write_canonical(out, &Value::from(name.as_str()));
        return;
      }
      out.push('{');
      for (i, (key, item)) in kept.into_iter().enumerate() {
        if i > 0 {
          out.push(',');
        }
        let _ = write!(out, "\"{key}\":");
        write_canonical(out, item);
      }
      out.push('}');
    }
    Value::Array(items) => {
      out.push('[');
      for (i, item) in items.iter().enumerate() {
        if i > 0 {
          out.push(',');
        }
        write_canonical(out, item);
      }
      out.push(']');
    }
    // serde_json writes non-ASCII as UTF-8, never as \u escapes ([STRINGS]).
    scalar => {
      let _ = write!(out, "{scalar}");
    }
  }
}

/// The fingerprint of a parsed schema: [`rabin_fingerprint`] of its [`canonical_form`].
pub fn fingerprint_of(schema: &Schema) -> u64 {
  rabin_fingerprint(canonical_form(schema).as_bytes())
}

/// The CRC-64-AVRO (Rabin) fingerprint of bytes, as the Avro specification defines it; the same
/// function as apache-avro's `Rabin` digest (the unit tests compare them).
pub fn rabin_fingerprint(bytes: &[u8]) -> u64 {
  let mut fp = RABIN_EMPTY;
  for &b in bytes {
    fp = (fp >> 8) ^ RABIN_TABLE[((fp ^ u64::from(b)) & 0xff) as usize];
  }
  fp
}

/// The fingerprint of the empty string, also the polynomial of CRC-64-AVRO.
const RABIN_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const RABIN_TABLE: [u64; 256] = {
  let mut table = [0u64; 256];
  let mut i = 0;
  while i < 256 {
    let mut fp = i as u64;
    let mut j = 0;
    while j < 8 {
      fp = (fp >> 1) ^ (RABIN_EMPTY & (fp & 1).wrapping_neg());
      j += 1;
    }
    table[i] = fp;
    i += 1;
  }
  table
};

/// A fingerprint as Ring prints it everywhere: 16 lowercase hex digits of the `u64`.
pub fn fingerprint_hex(fingerprint: u64) -> String {
  format!("{fingerprint:016x}")
}

/// Parses the 16-hex-digit form printed by [`fingerprint_hex`].
pub fn parse_fingerprint_hex(text: &str) -> Option<u64> {
  if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
    return None;
  }
  u64::from_str_radix(text, 16).ok()
}

fn lower_first(text: &str) -> String {
  let mut chars = text.chars();
  match chars.next() {
    Some(first) => first.to_lowercase().chain(chars).collect(),
    None => String::new(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn our_rabin_matches_apache_avro_rabin() {
    for json in
      ["\"int\"", "[\"null\",\"string\"]", r#"{"type":"record","name":"a.B","fields":[{"name":"x","type":"long"}]}"#]
    {
      let schema = Schema::parse_str(json).expect("valid schema");
      let theirs = schema.fingerprint::<apache_avro::rabin::Rabin>();
      assert_eq!(fingerprint_of(&schema).to_le_bytes().as_slice(), theirs.bytes.as_slice(), "{json}");
    }
    assert_eq!(rabin_fingerprint(b""), RABIN_EMPTY);
  }

  #[test]
  fn int_fingerprint_prints_as_16_hex_digits() {
    let parsed = parse_schema("\"int\"").expect("valid schema");
    assert_eq!(fingerprint_hex(parsed.fingerprint), "7275d51a3f395c8f");
    assert_eq!(parse_fingerprint_hex("7275d51a3f395c8f"), Some(parsed.fingerprint));
    assert_eq!(parse_fingerprint_hex("7275d51a3f395c8"), None);
    assert_eq!(parse_fingerprint_hex("+275d51a3f395c8f"), None);
  }

  #[test]
  fn canonical_form_strips_order_precision_and_scale() {
    let decimal = parse_schema(r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#).expect("valid");
    assert_eq!(decimal.canonical, "\"bytes\"");
    let ordered =
      parse_schema(r#"{"type":"record","name":"R","fields":[{"name":"f","type":"int","order":"descending"}]}"#)
        .expect("valid");
    assert_eq!(ordered.canonical, r#"{"name":"R","type":"record","fields":[{"name":"f","type":"int"}]}"#);
  }

  #[test]
  fn schema_errors_tell_bad_json_from_bad_schema() {
    let bad_json = parse_schema("{\"type\":").expect_err("not json");
    assert!(matches!(bad_json, SchemaError::InvalidJson { .. }), "{bad_json:?}");
    let bad_schema = parse_schema("{\"type\":\"recrd\"}").expect_err("not a schema");
    assert!(matches!(bad_schema, SchemaError::InvalidSchema { .. }), "{bad_schema:?}");
    for message in [bad_json.to_string(), bad_schema.to_string()] {
      assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
      assert!(!message.ends_with('.'), "{message}");
    }
  }
}
