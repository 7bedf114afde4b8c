//! Bounds on schema JSON, checked before `apache-avro` sees it. Schemas come from apps (and files), so
//! they are hostile input: apache-avro 0.22 panics on some valid-looking ones (a fixed `size`, a decimal
//! `precision` or any attribute named `size`, `precision` or `scale` that does not fit an `i64`, a
//! number where its canonical form expects a schema), and nothing in it bounds depth or name lengths.
//! [`check_schema_json`] refuses all of those with a sentence that names what was wrong.
//!
//! The walk covers every value apache-avro's canonical form descends into: the attributes `name`,
//! `type`, `fields`, `symbols`, `items`, `values` and `order` of any object met at a schema position
//! (including custom attributes of those names on any type), the fields of records and every element
//! of an array. `default`, `doc`, `aliases` and `logicalType` are stripped by the canonical form and
//! are only bounded by the total length.

use serde_json::Value;

/// Longest schema text accepted, in bytes. A schema travels in one control record, whose payload is at
/// most 32 752 bytes (spec/wire-format.md §10); twice that leaves room for files `ring schema` reads.
pub const MAX_SCHEMA_LEN: usize = 64 * 1024;

/// Deepest nesting of JSON objects and arrays accepted (a record nested in a record takes three levels:
/// the record, its `fields` array, the field).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// Longest `name`, `namespace`, alias or enum symbol, in bytes.
pub const MAX_SCHEMA_NAME_LEN: usize = 256;

/// Largest fixed `size`. Larger could never travel (a frame payload is below 2^29 bytes), and
/// apache-avro computes `8 * size - 1` in an `i32` for fixed decimals.
pub const MAX_FIXED_SIZE: u64 = 1 << 28;

/// Largest decimal `precision` or `scale`; other Avro libraries hold them in 32-bit ints.
pub const MAX_DECIMAL_DIGITS: u64 = i32::MAX as u64;

/// Checks the length of the schema text, before it is even parsed as JSON.
pub fn check_schema_len(json: &str) -> Result<(), String> {
  if json.len() > MAX_SCHEMA_LEN {
    return Err(format!("schema is {} bytes, more than the {MAX_SCHEMA_LEN} allowed", json.len()));
  }
  Ok(())
}

/// Checks parsed schema JSON against the bounds of this module; the error says what was wrong and where
/// (a path of attribute names and array indices from the top).
pub fn check_schema_json(value: &Value) -> Result<(), String> {
  let mut path = Vec::new();
  check_schema(value, 1, &mut path).map_err(|reason| {
    if path.is_empty() {
      reason
    } else {
      format!("{reason} (at {})", path.join("."))
    }
  })
}

/// A value at a schema position: a type name, a union or a schema object.
fn check_schema(value: &Value, depth: usize, path: &mut Vec<String>) -> Result<(), String> {
  if depth > MAX_SCHEMA_DEPTH {
    return Err(format!("schema nests deeper than {MAX_SCHEMA_DEPTH} levels"));
  }
  match value {
    Value::String(name) => check_name("type name", name),
    Value::Array(items) => {
      for (i, item) in items.iter().enumerate() {
        path.push(i.to_string());
        check_schema(item, depth + 1, path)?;
        path.pop();
      }
      Ok(())
    }
    Value::Object(map) => {
      for (key, item) in map {
        path.push(key.clone());
        check_attribute(key, item, depth, path)?;
        path.pop();
      }
      Ok(())
    }
    other => Err(format!("expected a schema (a string, an array or an object), found {}", kind(other))),
  }
}

/// One attribute of a schema object or of a record field.
fn check_attribute(key: &str, item: &Value, depth: usize, path: &mut Vec<String>) -> Result<(), String> {
  match key {
    "size" => check_integer(key, item, MAX_FIXED_SIZE),
    "precision" | "scale" => check_integer(key, item, MAX_DECIMAL_DIGITS),
    "namespace" => match item {
      Value::String(name) => check_name("namespace", name),
      // apache-avro refuses a non-string namespace itself; only its length is ours to bound.
      _ => Ok(()),
    },
    "name" => match item {
      Value::String(name) => check_name("name", name),
      other => Err(format!("`name` must be a string, found {}", kind(other))),
    },
    "symbols" => match item {
      Value::Array(symbols) => symbols.iter().try_for_each(|symbol| match symbol {
        Value::String(symbol) => check_name("enum symbol", symbol),
        other => Err(format!("enum symbols must be strings, found {}", kind(other))),
      }),
      other => Err(format!("`symbols` must be an array, found {}", kind(other))),
    },
    "aliases" => match item {
      Value::Array(aliases) => {
        aliases.iter().filter_map(Value::as_str).try_for_each(|alias| check_name("alias", alias))
      }
      _ => Ok(()),
    },
    "fields" => match item {
      Value::Array(fields) => {
        if depth + 1 > MAX_SCHEMA_DEPTH {
          return Err(format!("schema nests deeper than {MAX_SCHEMA_DEPTH} levels"));
        }
        for (i, field) in fields.iter().enumerate() {
          path.push(i.to_string());
          match field {
            // A field is an object with the same attribute rules as a schema object.
            Value::Object(_) => check_schema(field, depth + 2, path)?,
            other => return Err(format!("a record field must be an object, found {}", kind(other))),
          }
          path.pop();
        }
        Ok(())
      }
      other => Err(format!("`fields` must be an array, found {}", kind(other))),
    },
    "order" => match item {
      Value::String(_) => Ok(()),
      other => Err(format!("`order` must be a string, found {}", kind(other))),
    },
    // Schemas in their own right (apache-avro's canonical form panics on a number here).
    "type" | "items" | "values" => check_schema(item, depth + 1, path),
    // `default`, `doc`, `logicalType` and custom metadata: stripped by the canonical form.
    _ => Ok(()),
  }
}

fn check_integer(key: &str, item: &Value, max: u64) -> Result<(), String> {
  match item.as_u64() {
    Some(n) if n <= max => Ok(()),
    Some(n) => Err(format!("`{key}` is {n}, more than the {max} allowed")),
    None => Err(format!("`{key}` must be an integer from 0 to {max}, found {item}")),
  }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
  if name.len() > MAX_SCHEMA_NAME_LEN {
    return Err(format!("{what} is {} bytes, more than the {MAX_SCHEMA_NAME_LEN} allowed", name.len()));
  }
  Ok(())
}

fn kind(value: &Value) -> &'static str {
  match value {
    Value::Null => "null",
    Value::Bool(_) => "a boolean",
    Value::Number(_) => "a number",
    Value::String(_) => "a string",
    Value::Array(_) => "an array",
    Value::Object(_) => "an object",
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn check(json: &str) -> Result<(), String> {
    check_schema_json(&serde_json::from_str(json).expect("test input is json"))
  }

  #[test]
  fn ordinary_schemas_pass() {
    for json in [
      r#""int""#,
      r#"["null","string"]"#,
      r#"{"type":"fixed","name":"F","size":16}"#,
      r#"{"type":"bytes","logicalType":"decimal","precision":38,"scale":9}"#,
      r#"{"type":"record","name":"R","fields":[{"name":"f","type":"int","order":"descending","default":{"size":"x"}}]}"#,
      r#"{"type":"enum","name":"E","symbols":["A","B"],"aliases":["Old"]}"#,
      r#"{"type":"map","values":{"type":"array","items":"long"},"custom":{"size":-1}}"#,
    ] {
      assert_eq!(check(json), Ok(()), "{json}");
    }
  }

  #[test]
  fn out_of_range_integers_are_named_with_their_path() {
    let err = check(r#"{"type":"fixed","name":"F","size":18446744073709551615}"#).expect_err("huge size");
    assert_eq!(err, "`size` is 18446744073709551615, more than the 268435456 allowed (at size)");
    let err = check(r#"{"type":"record","name":"R","fields":[{"name":"f","type":{"type":"bytes","logicalType":"decimal","precision":9223372036854775808}}]}"#)
      .expect_err("huge precision");
    assert!(
      err.contains("`precision` is 9223372036854775808") && err.ends_with("(at fields.0.type.precision)"),
      "{err}"
    );
    assert!(check(r#"{"type":"fixed","name":"F","size":-1}"#).is_err());
    assert!(check(r#"{"type":"fixed","name":"F","size":1.5}"#).is_err());
    assert!(check(r#"{"type":"record","name":"R","fields":[],"scale":"7"}"#).is_err());
  }

  #[test]
  fn numbers_where_a_schema_belongs_are_refused() {
    for json in
      [r#"5"#, r#"["int",true]"#, r#"{"type":"array","items":"int","name":5}"#, r#"{"type":"map","values":null}"#]
    {
      assert!(check(json).is_err(), "{json}");
    }
  }

  #[test]
  fn depth_and_name_length_are_bounded() {
    let deep = format!("{}\"int\"{}", "[".repeat(MAX_SCHEMA_DEPTH), "]".repeat(MAX_SCHEMA_DEPTH));
    assert!(check(&deep).expect_err("too deep").contains("deeper than 64"));
    let long = format!(r#"{{"type":"fixed","name":"{}","size":1}}"#, "N".repeat(MAX_SCHEMA_NAME_LEN + 1));
    assert!(check(&long).expect_err("too long").starts_with("name is 257 bytes"));
    assert!(check_schema_len(&" ".repeat(MAX_SCHEMA_LEN + 1)).is_err());
  }
}
