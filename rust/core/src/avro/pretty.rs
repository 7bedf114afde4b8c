//! Pretty printing of schema JSON, for the generated `spec/schemas/*.avsc` and [`super::AvroRecord::schema_json`].

use std::fmt::Write as _;

use serde_json::Value;

/// Prints schema JSON with two-space indents, keys in the order of the canonical form (`name`, `type`,
/// then `namespace`, `doc`, ..., `fields` last) and short objects and arrays kept on one line.
pub fn schema_to_pretty_json(value: &Value) -> String {
  let mut out = String::new();
  write_pretty(&mut out, value, 0);
  out.push('\n');
  out
}

const KEY_ORDER: [&str; 11] =
  ["name", "type", "namespace", "aliases", "doc", "symbols", "size", "items", "values", "default", "fields"];

fn ordered_entries(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
  let mut entries: Vec<_> = map.iter().collect();
  entries.sort_by_key(|(key, _)| KEY_ORDER.iter().position(|k| k == key).unwrap_or(KEY_ORDER.len()));
  entries
}

fn write_inline(out: &mut String, value: &Value) {
  match value {
    Value::Array(items) => {
      out.push('[');
      for (i, item) in items.iter().enumerate() {
        if i > 0 {
          out.push_str(", ");
        }
        write_inline(out, item);
      }
      out.push(']');
    }
    Value::Object(map) => {
      out.push('{');
      for (i, (key, item)) in ordered_entries(map).into_iter().enumerate() {
        if i > 0 {
          out.push_str(", ");
        }
        let _ = write!(out, "{}: ", Value::from(key.as_str()));
        write_inline(out, item);
      }
      out.push('}');
    }
    scalar => {
      let _ = write!(out, "{scalar}");
    }
  }
}

fn write_pretty(out: &mut String, value: &Value, indent: usize) {
  let mut inline = String::new();
  write_inline(&mut inline, value);
  if 2 * indent + inline.len() <= 110 && !inline.contains("\"fields\"") {
    out.push_str(&inline);
    return;
  }
  let pad = "  ".repeat(indent + 1);
  match value {
    Value::Array(items) => {
      out.push_str("[\n");
      for (i, item) in items.iter().enumerate() {
        out.push_str(&pad);
        write_pretty(out, item, indent + 1);
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
      }
      out.push_str(&"  ".repeat(indent));
      out.push(']');
    }
    Value::Object(map) => {
      out.push_str("{\n");
      let entries = ordered_entries(map);
      let last = entries.len();
      for (i, (key, item)) in entries.into_iter().enumerate() {
        let _ = write!(out, "{pad}{}: ", Value::from(key.as_str()));
        write_pretty(out, item, indent + 1);
        out.push_str(if i + 1 < last { ",\n" } else { "\n" });
      }
      out.push_str(&"  ".repeat(indent));
      out.push('}');
    }
    scalar => {
      let _ = write!(out, "{scalar}");
    }
  }
}
