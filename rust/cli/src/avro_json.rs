//! Avro's JSON encoding (Avro specification, "JSON Encoding") for the schemas Ring carries: `ring call`
//! and `ring publish` turn a JSON argument into an Avro datum, `ring tap` and `ring call` turn datums
//! back into JSON. Unions are `null` or `{"<branch type name>": value}`; `bytes` and `fixed` are
//! strings whose code points 0–255 are the bytes. A value that does not fit the schema is an error
//! naming where (`.point.x`) and what was expected, before anything is sent.

use std::collections::HashMap;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema, Schema};
use apache_avro::types::Value as Avro;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::{Map, Number, Value as Json};

/// A parsed schema with its named types, ready to convert values both ways.
pub struct Codec {
  schema: Schema,
  names: HashMap<Name, Schema>,
}

impl Codec {
  /// Parses `schema_json`.
  pub fn new(schema_json: &str) -> Result<Codec, String> {
    let schema = Schema::parse_str(schema_json).map_err(|e| format!("invalid schema: {e}"))?;
    let names = ResolvedSchema::try_from(&schema)
      .map_err(|e| format!("invalid schema: {e}"))?
      .get_names()
      .iter()
      .map(|(name, schema)| (name.clone(), (*schema).clone()))
      .collect();
    Ok(Codec { schema, names })
  }

  /// The Avro datum of the JSON value `json`.
  pub fn encode(&self, json: &Json) -> Result<Vec<u8>, String> {
    let value = self.to_avro(&self.schema, json, &mut String::new())?;
    let writer = GenericDatumWriter::builder(&self.schema).build().map_err(|e| format!("cannot encode: {e}"))?;
    writer.write_value_to_vec(value).map_err(|e| format!("cannot encode: {e}"))
  }

  /// The JSON value of the Avro datum `datum` (which must be exactly one value).
  pub fn decode(&self, datum: &[u8]) -> Result<Json, String> {
    let mut input = datum;
    let reader = GenericDatumReader::builder(&self.schema).build().map_err(|e| format!("invalid schema: {e}"))?;
    let value = reader.read_value(&mut input).map_err(|e| format!("the datum does not decode with the schema: {e}"))?;
    if !input.is_empty() {
      return Err(format!("{} bytes are left after the datum", input.len()));
    }
    self.to_json(&self.schema, &value)
  }

  fn resolve<'a>(&'a self, schema: &'a Schema) -> Result<&'a Schema, String> {
    match schema {
      Schema::Ref { name } => self.names.get(name).ok_or_else(|| format!("unknown type `{}`", name.fullname(None))),
      other => Ok(other),
    }
  }

  fn to_avro(&self, schema: &Schema, json: &Json, path: &mut String) -> Result<Avro, String> {
    let schema = self.resolve(schema)?;
    let wrong = |expected: &str, path: &str| {
      let at = if path.is_empty() { "the value".to_string() } else { format!("`{path}`") };
      format!("{at}: expected {expected}, got {}", describe(json))
    };
    Ok(match schema {
      Schema::Null => match json {
        Json::Null => Avro::Null,
        _ => return Err(wrong("null", path)),
      },
      Schema::Boolean => Avro::Boolean(json.as_bool().ok_or_else(|| wrong("a boolean", path))?),
      Schema::Int | Schema::Date | Schema::TimeMillis => {
        let n = json.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| wrong("an int (32 bits)", path))?;
        match schema {
          Schema::Date => Avro::Date(n),
          Schema::TimeMillis => Avro::TimeMillis(n),
          _ => Avro::Int(n),
        }
      }
      Schema::Long
      | Schema::TimeMicros
      | Schema::TimestampMillis
      | Schema::TimestampMicros
      | Schema::TimestampNanos
      | Schema::LocalTimestampMillis
      | Schema::LocalTimestampMicros
      | Schema::LocalTimestampNanos => {
        let n = json.as_i64().ok_or_else(|| wrong("a long (64 bits)", path))?;
        match schema {
          Schema::TimeMicros => Avro::TimeMicros(n),
          Schema::TimestampMillis => Avro::TimestampMillis(n),
          Schema::TimestampMicros => Avro::TimestampMicros(n),
          Schema::TimestampNanos => Avro::TimestampNanos(n),
          Schema::LocalTimestampMillis => Avro::LocalTimestampMillis(n),
          Schema::LocalTimestampMicros => Avro::LocalTimestampMicros(n),
          Schema::LocalTimestampNanos => Avro::LocalTimestampNanos(n),
          _ => Avro::Long(n),
        }
      }
      Schema::Float => Avro::Float(json.as_f64().ok_or_else(|| wrong("a float", path))? as f32),
      Schema::Double => Avro::Double(json.as_f64().ok_or_else(|| wrong("a double", path))?),
      Schema::Bytes => Avro::Bytes(bytes_of(json).ok_or_else(|| wrong("bytes (a string of code points 0-255)", path))?),
      Schema::String => Avro::String(json.as_str().ok_or_else(|| wrong("a string", path))?.to_string()),
      Schema::Uuid(_) => {
        let text = json.as_str().ok_or_else(|| wrong("a uuid string", path))?;
        Avro::Uuid(text.parse().map_err(|_| wrong("a uuid string", path))?)
      }
      Schema::Fixed(fixed) => {
        let bytes = bytes_of(json).filter(|b| b.len() == fixed.size);
        let expected = format!("{} bytes (a string of {} code points 0-255)", fixed.size, fixed.size);
        Avro::Fixed(fixed.size, bytes.ok_or_else(|| wrong(&expected, path))?)
      }
      Schema::Enum(e) => {
        let expected = format!("one of {}", e.symbols.join(", "));
        let symbol = json.as_str().ok_or_else(|| wrong(&expected, path))?;
        let index = e.symbols.iter().position(|s| s == symbol).ok_or_else(|| wrong(&expected, path))?;
        Avro::Enum(index as u32, symbol.to_string())
      }
      Schema::Array(array) => {
        let items = json.as_array().ok_or_else(|| wrong("an array", path))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
          let len = path.len();
          path.push_str(&format!("[{i}]"));
          out.push(self.to_avro(&array.items, item, path)?);
          path.truncate(len);
        }
        Avro::Array(out)
      }
      Schema::Map(map) => {
        let entries = json.as_object().ok_or_else(|| wrong("an object (a map)", path))?;
        let mut out = HashMap::with_capacity(entries.len());
        for (key, item) in entries {
          let len = path.len();
          path.push_str(&format!("[{key:?}]"));
          out.insert(key.clone(), self.to_avro(&map.types, item, path)?);
          path.truncate(len);
        }
        Avro::Map(out)
      }
      Schema::Record(record) => {
        let object = json.as_object().ok_or_else(|| wrong(&format!("a `{}` record (an object)", record.name), path))?;
        if let Some(extra) = object.keys().find(|k| !record.lookup.contains_key(*k)) {
          return Err(format!("`{path}.{extra}`: `{}` has no field `{extra}`", record.name.fullname(None)));
        }
        let mut out = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
          let len = path.len();
          path.push('.');
          path.push_str(&field.name);
          let value = match (object.get(&field.name), &field.default) {
            (Some(value), _) => self.to_avro(&field.schema, value, path)?,
            (None, Some(default)) => self.to_avro(&field.schema, &default_as_json(&field.schema, default), path)?,
            (None, None) => return Err(format!("`{path}`: missing (the field has no default)")),
          };
          path.truncate(len);
          out.push((field.name.clone(), value));
        }
        Avro::Record(out)
      }
      Schema::Union(union) => {
        let variants = union.variants();
        if json.is_null() {
          let index =
            variants.iter().position(|v| matches!(v, Schema::Null)).ok_or_else(|| wrong("a union branch", path))?;
          return Ok(Avro::Union(index as u32, Box::new(Avro::Null)));
        }
        let names: Vec<String> = variants.iter().map(|v| self.branch_name(v)).collect();
        let expected = format!("{{\"<branch>\": value}} with a branch of {}", names.join(", "));
        let object = json.as_object().filter(|o| o.len() == 1).ok_or_else(|| wrong(&expected, path))?;
        let (branch, inner) = object.iter().next().expect("one entry");
        let index =
          names.iter().position(|n| n == branch || short(n) == branch).ok_or_else(|| wrong(&expected, path))?;
        let len = path.len();
        path.push_str(&format!("<{branch}>"));
        let value = self.to_avro(&variants[index], inner, path)?;
        path.truncate(len);
        Avro::Union(index as u32, Box::new(value))
      }
      other => return Err(format!("`{path}`: the {other:?} type is not supported by the command-line tool")),
    })
  }

  /// The name a union branch goes by in JSON: the type name, or the full name of a named type.
  fn branch_name(&self, schema: &Schema) -> String {
    match schema {
      Schema::Null => "null".into(),
      Schema::Boolean => "boolean".into(),
      Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
      Schema::Float => "float".into(),
      Schema::Double => "double".into(),
      Schema::Bytes => "bytes".into(),
      Schema::String | Schema::Uuid(_) => "string".into(),
      Schema::Array(_) => "array".into(),
      Schema::Map(_) => "map".into(),
      Schema::Record(r) => r.name.fullname(None),
      Schema::Enum(e) => e.name.fullname(None),
      Schema::Fixed(f) => f.name.fullname(None),
      Schema::Ref { name } => name.fullname(None),
      _ => "long".into(),
    }
  }

  fn to_json(&self, schema: &Schema, value: &Avro) -> Result<Json, String> {
    let schema = self.resolve(schema)?;
    Ok(match (schema, value) {
      (_, Avro::Null) => Json::Null,
      (_, Avro::Boolean(b)) => Json::Bool(*b),
      (_, Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n)) => Json::from(*n),
      (
        _,
        Avro::Long(n)
        | Avro::TimeMicros(n)
        | Avro::TimestampMillis(n)
        | Avro::TimestampMicros(n)
        | Avro::TimestampNanos(n)
        | Avro::LocalTimestampMillis(n)
        | Avro::LocalTimestampMicros(n)
        | Avro::LocalTimestampNanos(n),
      ) => Json::from(*n),
      (_, Avro::Float(x)) => Number::from_f64(*x as f64).map_or(Json::Null, Json::Number),
      (_, Avro::Double(x)) => Number::from_f64(*x).map_or(Json::Null, Json::Number),
      (_, Avro::Bytes(b) | Avro::Fixed(_, b)) => Json::String(b.iter().map(|&c| c as char).collect()),
      (_, Avro::String(s)) => Json::String(s.clone()),
      (_, Avro::Uuid(u)) => Json::String(u.to_string()),
      (_, Avro::Enum(_, symbol)) => Json::String(symbol.clone()),
      (Schema::Array(array), Avro::Array(items)) => {
        Json::Array(items.iter().map(|v| self.to_json(&array.items, v)).collect::<Result<_, _>>()?)
      }
      (Schema::Map(map), Avro::Map(entries)) => {
        let mut keys: Vec<_> = entries.keys().collect();
        keys.sort();
        let mut out = Map::new();
        for key in keys {
          out.insert(key.clone(), self.to_json(&map.types, &entries[key])?);
        }
        Json::Object(out)
      }
      (Schema::Record(record), Avro::Record(fields)) => {
        let mut out = Map::new();
        for ((name, value), field) in fields.iter().zip(&record.fields) {
          out.insert(name.clone(), self.to_json(&field.schema, value)?);
        }
        Json::Object(out)
      }
      (Schema::Union(union), Avro::Union(index, inner)) => {
        let branch = union.variants().get(*index as usize).ok_or("a union branch out of range")?;
        if matches!(branch, Schema::Null) {
          Json::Null
        } else {
          let mut out = Map::new();
          out.insert(self.branch_name(branch), self.to_json(branch, inner)?);
          Json::Object(out)
        }
      }
      (schema, value) => return Err(format!("cannot show {value:?} as {schema:?}")),
    })
  }
}

/// A field default, as the schema gives it, in the JSON form `to_avro` takes: the default of a union
/// field is for its first branch, so it is wrapped like any union value.
fn default_as_json(schema: &Schema, default: &Json) -> Json {
  match schema {
    Schema::Union(union) if !default.is_null() => match union.variants().first() {
      Some(first) => {
        let mut out = Map::new();
        out.insert(union_type_name(first), default.clone());
        Json::Object(out)
      }
      None => default.clone(),
    },
    _ => default.clone(),
  }
}

fn union_type_name(schema: &Schema) -> String {
  match schema {
    Schema::Record(r) => r.name.fullname(None),
    Schema::Enum(e) => e.name.fullname(None),
    Schema::Fixed(f) => f.name.fullname(None),
    Schema::Ref { name } => name.fullname(None),
    Schema::Boolean => "boolean".into(),
    Schema::Int => "int".into(),
    Schema::Long => "long".into(),
    Schema::Float => "float".into(),
    Schema::Double => "double".into(),
    Schema::Bytes => "bytes".into(),
    Schema::String => "string".into(),
    Schema::Array(_) => "array".into(),
    Schema::Map(_) => "map".into(),
    _ => "null".into(),
  }
}

/// The last part of a full name (`Point` of `geo.Point`).
fn short(name: &str) -> &str {
  name.rsplit('.').next().unwrap_or(name)
}

/// Bytes from a JSON string whose code points are all 0–255.
fn bytes_of(json: &Json) -> Option<Vec<u8>> {
  json.as_str()?.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// What a JSON value is, for error messages.
fn describe(json: &Json) -> String {
  match json {
    Json::Null => "null".into(),
    Json::Bool(b) => format!("the boolean {b}"),
    Json::Number(n) => format!("the number {n}"),
    Json::String(s) if s.len() > 40 => "a string".into(),
    Json::String(s) => format!("the string {s:?}"),
    Json::Array(_) => "an array".into(),
    Json::Object(_) => "an object".into(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const EVERYTHING: &str = r#"{"type":"record","name":"Everything","namespace":"t","fields":[
    {"name":"id","type":"long"},
    {"name":"tag","type":["null","string"]},
    {"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
    {"name":"mac","type":{"type":"fixed","name":"Mac","size":6}},
    {"name":"blob","type":"bytes"},
    {"name":"points","type":{"type":"array","items":{"type":"record","name":"Point","fields":[
      {"name":"x","type":"double"},{"name":"y","type":"double"}]}}},
    {"name":"scores","type":{"type":"map","values":"int"}},
    {"name":"origin","type":["null","Point"],"default":null},
    {"name":"flag","type":"boolean","default":true}]}"#;

  #[test]
  fn json_round_trips_through_avro_for_every_kind_of_type() {
    let codec = Codec::new(EVERYTHING).unwrap();
    let input: Json = serde_json::from_str(
      r#"{"id": -5, "tag": {"string": "x"}, "color": "GREEN", "mac": "\u0000\u0001\u0002\u00ff\u0010\u0020",
          "blob": "ab\u00ff", "points": [{"x": 1.5, "y": -2.0}], "scores": {"a": 1, "b": -2},
          "origin": {"t.Point": {"x": 0.0, "y": 1.0}}, "flag": false}"#,
    )
    .unwrap();
    let datum = codec.encode(&input).unwrap();
    assert_eq!(codec.decode(&datum).unwrap(), input);
  }

  #[test]
  fn missing_fields_take_their_defaults_and_unknown_ones_are_refused() {
    let codec = Codec::new(EVERYTHING).unwrap();
    let input: Json = serde_json::from_str(
      r#"{"id": 1, "tag": null, "color": "RED", "mac": "abcdef", "blob": "", "points": [], "scores": {}}"#,
    )
    .unwrap();
    let back = codec.decode(&codec.encode(&input).unwrap()).unwrap();
    assert_eq!(back["origin"], Json::Null);
    assert_eq!(back["flag"], Json::Bool(true));
    let mut extra = input.clone();
    extra["nope"] = Json::from(1);
    assert_eq!(codec.encode(&extra).unwrap_err(), "`.nope`: `t.Everything` has no field `nope`");
  }

  #[test]
  fn a_value_that_does_not_fit_names_the_field_and_what_was_expected() {
    let codec = Codec::new(EVERYTHING).unwrap();
    let input: Json = serde_json::from_str(
      r#"{"id": 1, "tag": null, "color": "RED", "mac": "abcdef", "blob": "", "points": [{"x": 1, "y": "no"}],
          "scores": {}}"#,
    )
    .unwrap();
    assert_eq!(codec.encode(&input).unwrap_err(), "`.points[0].y`: expected a double, got the string \"no\"");
    let bad_enum = serde_json::json!({"id": 1, "tag": null, "color": "BLUE"});
    assert_eq!(codec.encode(&bad_enum).unwrap_err(), "`.color`: expected one of RED, GREEN, got the string \"BLUE\"");
    let bad_union = serde_json::json!({"id": 1, "tag": "plain"});
    assert!(codec.encode(&bad_union).unwrap_err().starts_with("`.tag`: expected {\"<branch>\": value}"));
  }
}
