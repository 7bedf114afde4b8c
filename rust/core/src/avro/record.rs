//! Typed Avro fields and records: the [`AvroField`] impls of the Rust types control records use, and
//! the [`avro_record!`](crate::avro_record) macro that declares a record with its schema and codec.

use std::collections::BTreeSet;

use serde_json::Value;

use super::codec::*;
use super::schema_to_pretty_json;

/// A Rust type with an Avro schema and binary encoding: the field types [`avro_record!`](crate::avro_record) accepts.
pub trait AvroField: Sized {
  /// The schema of this type as JSON. Named types already in `defined` are referred to by full name.
  fn schema(defined: &mut BTreeSet<String>) -> Value;
  /// The fewest bytes an encoded value takes; bounds array counts read from untrusted input.
  fn min_encoded_len() -> usize;
  /// Appends the Avro binary encoding.
  fn encode(&self, out: &mut Vec<u8>);
  /// Reads a value, advancing `input`.
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;
  /// A readable JSON form: bytes as an array of numbers, an absent optional as `null`, records as
  /// objects. It is also what apache-avro's `Value` converts to.
  fn to_json(&self) -> Value;
}

/// An Avro record declared with [`avro_record!`](crate::avro_record).
pub trait AvroRecord: AvroField {
  /// The record's full name (`namespace.Name`).
  const FULL_NAME: &'static str;

  /// The record's schema as pretty JSON, nested records defined once.
  fn schema_json() -> String {
    schema_to_pretty_json(&Self::schema(&mut BTreeSet::new()))
  }
}

/// Decodes a whole datum: fails with [`DecodeError::TrailingBytes`] when bytes are left over.
pub fn decode_exact<T: AvroField>(bytes: &[u8]) -> Result<T, DecodeError> {
  let mut input = bytes;
  let value = T::decode(&mut input)?;
  if !input.is_empty() {
    return Err(DecodeError::TrailingBytes { count: input.len() });
  }
  Ok(value)
}

/// Encodes a datum into a new buffer.
pub fn encode_to_vec<T: AvroField>(value: &T) -> Vec<u8> {
  let mut out = Vec::new();
  value.encode(&mut out);
  out
}

impl AvroField for i32 {
  fn schema(_: &mut BTreeSet<String>) -> Value {
    Value::from("int")
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    put_int(out, *self);
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    get_int(input)
  }
  fn to_json(&self) -> Value {
    Value::from(*self)
  }
}

impl AvroField for i64 {
  fn schema(_: &mut BTreeSet<String>) -> Value {
    Value::from("long")
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    put_long(out, *self);
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    get_long(input)
  }
  fn to_json(&self) -> Value {
    Value::from(*self)
  }
}

impl AvroField for bool {
  fn schema(_: &mut BTreeSet<String>) -> Value {
    Value::from("boolean")
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    put_bool(out, *self);
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    get_bool(input)
  }
  fn to_json(&self) -> Value {
    Value::from(*self)
  }
}

impl AvroField for String {
  fn schema(_: &mut BTreeSet<String>) -> Value {
    Value::from("string")
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    put_string(out, self);
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    get_string(input)
  }
  fn to_json(&self) -> Value {
    Value::from(self.as_str())
  }
}

impl AvroField for Vec<u8> {
  fn schema(_: &mut BTreeSet<String>) -> Value {
    Value::from("bytes")
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    put_bytes(out, self);
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    get_bytes(input)
  }
  fn to_json(&self) -> Value {
    Value::Array(self.iter().map(|&b| Value::from(b)).collect())
  }
}

/// `["null", T]`: branch 0 is `None`, branch 1 is `Some`.
impl<T: AvroField> AvroField for Option<T> {
  fn schema(defined: &mut BTreeSet<String>) -> Value {
    Value::Array(vec![Value::from("null"), T::schema(defined)])
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    match self {
      None => put_long(out, 0),
      Some(value) => {
        put_long(out, 1);
        value.encode(out);
      }
    }
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    match get_union_branch(input, 2)? {
      0 => Ok(None),
      _ => T::decode(input).map(Some),
    }
  }
  fn to_json(&self) -> Value {
    self.as_ref().map_or(Value::Null, T::to_json)
  }
}

/// An array of records: blocks of `count` items ended by a zero count. We write one block; we read
/// any number, including negative counts followed by the block's byte size.
impl<R: AvroRecord> AvroField for Vec<R> {
  fn schema(defined: &mut BTreeSet<String>) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), Value::from("array"));
    map.insert("items".into(), R::schema(defined));
    Value::Object(map)
  }
  fn min_encoded_len() -> usize {
    1
  }
  fn encode(&self, out: &mut Vec<u8>) {
    if !self.is_empty() {
      put_long(out, self.len() as i64);
      for item in self {
        item.encode(out);
      }
    }
    put_long(out, 0);
  }
  fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
    // Each item takes at least this many bytes, so a count above remaining/min is a lie; treating an
    // empty record as one byte keeps the number of items (and the allocation) bounded by the input.
    let min = R::min_encoded_len().max(1);
    let mut items = Vec::new();
    loop {
      let count = get_long(input)?;
      if count == 0 {
        return Ok(items);
      }
      let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
      if count < 0 {
        let size = get_length(input)?;
        let (mut block, rest) = input.split_at(size);
        if n > block.len() / min {
          return Err(DecodeError::LengthOutOfRange { length: count, available: block.len() });
        }
        for _ in 0..n {
          items.push(R::decode(&mut block)?);
        }
        if !block.is_empty() {
          return Err(DecodeError::BlockSizeMismatch { declared: size, used: size - block.len() });
        }
        *input = rest;
      } else {
        if n > input.len() / min {
          return Err(DecodeError::LengthOutOfRange { length: count, available: input.len() });
        }
        for _ in 0..n {
          items.push(R::decode(input)?);
        }
      }
    }
  }
  fn to_json(&self) -> Value {
    Value::Array(self.iter().map(R::to_json).collect())
  }
}

/// Lets [`avro_record!`](crate::avro_record) expand in crates that do not depend on serde_json themselves.
#[doc(hidden)]
pub use serde_json as __serde_json;

/// How [`avro_record!`](crate::avro_record) passes a field's [`AvroField::schema`] to [`record_schema`].
#[doc(hidden)]
pub type SchemaFn = fn(&mut BTreeSet<String>) -> Value;

/// Builds the schema JSON of a record; used by [`avro_record!`](crate::avro_record). Returns the full name alone when
/// the record is already defined in this schema.
#[doc(hidden)]
pub fn record_schema(
  name: &str,
  namespace: &str,
  doc: &str,
  defined: &mut BTreeSet<String>,
  fields: &[(&str, &str, SchemaFn)],
) -> Value {
  let full_name = if namespace.is_empty() { name.to_owned() } else { format!("{namespace}.{name}") };
  if !defined.insert(full_name.clone()) {
    return Value::from(full_name);
  }
  let mut map = serde_json::Map::new();
  map.insert("type".into(), Value::from("record"));
  map.insert("name".into(), Value::from(name));
  if !namespace.is_empty() {
    map.insert("namespace".into(), Value::from(namespace));
  }
  if !doc.is_empty() {
    map.insert("doc".into(), Value::from(doc));
  }
  let fields = fields
    .iter()
    .map(|(field_name, field_doc, schema)| {
      let mut field = serde_json::Map::new();
      field.insert("name".into(), Value::from(*field_name));
      field.insert("type".into(), schema(defined));
      if !field_doc.is_empty() {
        field.insert("doc".into(), Value::from(*field_doc));
      }
      Value::Object(field)
    })
    .collect();
  map.insert("fields".into(), Value::Array(fields));
  Value::Object(map)
}

/// Joins `///` doc lines into one schema `doc` string; used by [`avro_record!`](crate::avro_record).
#[doc(hidden)]
pub fn join_doc(lines: &[&str]) -> String {
  lines.iter().map(|line| line.trim()).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Declares a struct that is an Avro record, generating its [`AvroField`] and [`AvroRecord`] impls.
/// `///` docs on the struct and its fields become the schema's `doc` attributes.
///
/// ```
/// impulse_ring_core::avro_record! {
///   /// A point.
///   pub struct Point in "example.geo" {
///     /// Horizontal.
///     pub x: i64,
///     pub label: Option<String>,
///   }
/// }
/// ```
///
/// Field types: `i32`, `i64`, `bool`, `String`, `Vec<u8>`, `Option<T>` and `Vec<R>` of another record.
/// Records must not contain themselves (decoding recurses once per nesting level).
#[macro_export]
macro_rules! avro_record {
  (
    $(#[doc = $doc:literal])*
    $vis:vis struct $name:ident in $namespace:literal {
      $(
        $(#[doc = $fdoc:literal])*
        $fvis:vis $field:ident : $ty:ty
      ),* $(,)?
    }
  ) => {
    $(#[doc = $doc])*
    #[derive(Clone, Debug, PartialEq, Eq)]
    $vis struct $name {
      $(
        $(#[doc = $fdoc])*
        $fvis $field: $ty,
      )*
    }

    impl $crate::avro::AvroField for $name {
      fn schema(defined: &mut ::std::collections::BTreeSet<::std::string::String>) -> $crate::avro::__serde_json::Value {
        $crate::avro::record_schema(
          stringify!($name),
          $namespace,
          &$crate::avro::join_doc(&[$($doc),*]),
          defined,
          &[$(
            (
              stringify!($field),
              &$crate::avro::join_doc(&[$($fdoc),*]),
              <$ty as $crate::avro::AvroField>::schema as $crate::avro::SchemaFn,
            )
          ),*],
        )
      }
      fn min_encoded_len() -> usize {
        0 $(+ <$ty as $crate::avro::AvroField>::min_encoded_len())*
      }
      fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
        let _ = &out;
        $(<$ty as $crate::avro::AvroField>::encode(&self.$field, out);)*
      }
      fn decode(input: &mut &[u8]) -> ::std::result::Result<Self, $crate::avro::DecodeError> {
        let _ = &input;
        // Struct expression fields are evaluated in source order, which is the schema's field order.
        Ok(Self { $($field: <$ty as $crate::avro::AvroField>::decode(input)?,)* })
      }
      fn to_json(&self) -> $crate::avro::__serde_json::Value {
        #[allow(unused_mut)]
        let mut map = $crate::avro::__serde_json::Map::new();
        $(map.insert(stringify!($field).into(), <$ty as $crate::avro::AvroField>::to_json(&self.$field));)*
        $crate::avro::__serde_json::Value::Object(map)
      }
    }

    impl $crate::avro::AvroRecord for $name {
      const FULL_NAME: &'static str = concat!($namespace, ".", stringify!($name));
    }
  };
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::avro::parse_schema;

  crate::avro_record! {
    /// Every field type the macro supports.
    pub struct Everything in "impulse.ring.test" {
      /// An int.
      pub small: i32,
      pub big: i64,
      pub flag: bool,
      pub text: String,
      pub blob: Vec<u8>,
      pub maybe_text: Option<String>,
      pub maybe_blob: Option<Vec<u8>>,
      pub maybe_long: Option<i64>,
      pub items: Vec<Item>,
      pub more_items: Vec<Item>,
    }
  }

  crate::avro_record! {
    /// A nested record, used twice in [`Everything`] but defined once in its schema.
    pub struct Item in "impulse.ring.test" {
      pub id: i64,
      pub label: String,
    }
  }

  fn sample() -> Everything {
    Everything {
      small: -123456,
      big: i64::MIN,
      flag: true,
      text: "h\u{e9}llo".into(),
      blob: vec![0, 1, 0xff],
      maybe_text: Some(String::new()),
      maybe_blob: None,
      maybe_long: Some(i64::MAX),
      items: vec![Item { id: 1, label: "a".into() }, Item { id: -2, label: "bb".into() }],
      more_items: vec![],
    }
  }

  /// A small deterministic generator, so failures reproduce.
  struct XorShift(u64);

  impl XorShift {
    fn next(&mut self) -> u64 {
      self.0 ^= self.0 << 13;
      self.0 ^= self.0 >> 7;
      self.0 ^= self.0 << 17;
      self.0
    }
  }
  #[test]
  fn records_round_trip() {
    let value = sample();
    let bytes = encode_to_vec(&value);
    assert_eq!(decode_exact::<Everything>(&bytes), Ok(value));
  }

  #[test]
  fn nested_record_is_defined_once_in_the_schema() {
    let json = Everything::schema_json();
    assert_eq!(json.matches("\"fields\"").count(), 2, "{json}");
    assert!(json.contains("\"type\": {\"type\": \"array\", \"items\": \"impulse.ring.test.Item\"}"), "{json}");
    let parsed = parse_schema(&json).expect("generated schema parses");
    assert!(parsed.canonical.starts_with(r#"{"name":"impulse.ring.test.Everything","type":"record""#));
    assert_eq!(Everything::FULL_NAME, "impulse.ring.test.Everything");
  }

  #[test]
  fn apache_avro_reads_our_encoding() {
    let value = sample();
    let schema = parse_schema(&Everything::schema_json()).expect("valid").schema;
    let bytes = encode_to_vec(&value);
    let mut input = bytes.as_slice();
    let read = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
      .build()
      .expect("reader")
      .read_value(&mut input)
      .expect("apache-avro decodes our bytes");
    assert!(input.is_empty());
    let json = Value::try_from(read).expect("json");
    assert_eq!(json, value.to_json());
  }

  #[test]
  fn every_truncation_is_an_error() {
    let bytes = encode_to_vec(&sample());
    for len in 0..bytes.len() {
      assert!(decode_exact::<Everything>(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
    }
  }

  #[test]
  fn trailing_bytes_are_an_error() {
    let mut bytes = encode_to_vec(&sample());
    bytes.push(0);
    assert_eq!(decode_exact::<Everything>(&bytes), Err(DecodeError::TrailingBytes { count: 1 }));
  }

  #[test]
  fn random_and_mutated_input_never_panics() {
    let valid = encode_to_vec(&sample());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
      let bytes: Vec<u8> = if round % 2 == 0 {
        let len = (rng.next() % 64) as usize;
        (0..len).map(|_| rng.next() as u8).collect()
      } else {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.next() % 4 {
          let at = (rng.next() as usize) % bytes.len();
          bytes[at] = rng.next() as u8;
        }
        bytes
      };
      // Only the absence of a panic (and of a huge allocation) is checked; some mutations stay valid.
      let _ = decode_exact::<Everything>(&bytes);
      let _ = decode_exact::<Vec<Item>>(&bytes);
    }
  }

  #[test]
  fn negative_block_counts_carry_a_byte_size() {
    let item = Item { id: 5, label: "x".into() };
    let encoded = encode_to_vec(&item);
    let mut bytes = Vec::new();
    put_long(&mut bytes, -2);
    put_long(&mut bytes, 2 * encoded.len() as i64);
    bytes.extend_from_slice(&encoded);
    bytes.extend_from_slice(&encoded);
    put_long(&mut bytes, 1);
    bytes.extend_from_slice(&encoded);
    put_long(&mut bytes, 0);
    assert_eq!(decode_exact::<Vec<Item>>(&bytes), Ok(vec![item.clone(), item.clone(), item]));
  }

  #[test]
  fn a_block_size_that_lies_is_an_error() {
    let encoded = encode_to_vec(&Item { id: 5, label: "x".into() });
    let mut bytes = Vec::new();
    put_long(&mut bytes, -1);
    put_long(&mut bytes, encoded.len() as i64 + 1);
    bytes.extend_from_slice(&encoded);
    bytes.push(0);
    put_long(&mut bytes, 0);
    assert_eq!(
      decode_exact::<Vec<Item>>(&bytes),
      Err(DecodeError::BlockSizeMismatch { declared: encoded.len() + 1, used: encoded.len() })
    );
  }

  #[test]
  fn huge_counts_and_lengths_are_refused_before_allocating() {
    for count in [i64::MAX, i64::MIN, 1 << 40] {
      let mut bytes = Vec::new();
      put_long(&mut bytes, count);
      put_long(&mut bytes, 0);
      let err = decode_exact::<Vec<Item>>(&bytes).expect_err("count larger than the input");
      assert!(matches!(err, DecodeError::LengthOutOfRange { .. }), "{count}: {err:?}");
    }
    let mut bytes = Vec::new();
    put_long(&mut bytes, -5);
    assert_eq!(get_bytes(&mut bytes.as_slice()), Err(DecodeError::LengthOutOfRange { length: -5, available: 0 }));
  }

  #[test]
  fn bad_union_branch_utf8_and_boolean_are_typed_errors() {
    assert_eq!(
      <Option<i64>>::decode(&mut [0x04u8].as_slice()),
      Err(DecodeError::BadUnionBranch { branch: 2, branches: 2 })
    );
    assert_eq!(get_string(&mut [0x02u8, 0xff].as_slice()), Err(DecodeError::InvalidUtf8));
    assert_eq!(get_bool(&mut [0x02u8].as_slice()), Err(DecodeError::BadBoolean { byte: 2 }));
  }
}
