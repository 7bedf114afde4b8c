//! Avro for Ring: schema parsing, Parsing Canonical Form and CRC-64-AVRO fingerprints through the
//! `apache-avro` crate, and a tiny hand-written binary codec (with the [`avro_record!`] macro) for the
//! control records, plus the Single Object Encoding header every frame payload starts with.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use apache_avro::Schema;
use serde_json::Value;

/// The two magic bytes that open an Avro Single Object Encoding.
pub const SOE_MAGIC: [u8; 2] = [0xC3, 0x01];

/// Length of a Single Object Encoding header: the magic and the 8-byte little-endian fingerprint.
pub const SOE_HEADER_LEN: usize = 10;

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
}

/// Parses schema JSON and computes its Parsing Canonical Form and CRC-64-AVRO fingerprint.
pub fn parse_schema(json: &str) -> Result<ParsedSchema, SchemaError> {
  let value: Value = serde_json::from_str(json).map_err(|e| SchemaError::InvalidJson { reason: e.to_string() })?;
  let schema = Schema::parse(&value).map_err(|e| SchemaError::InvalidSchema { reason: lower_first(&e.to_string()) })?;
  let canonical = canonical_form(&schema);
  let fingerprint = rabin_fingerprint(canonical.as_bytes());
  Ok(ParsedSchema { schema, canonical, fingerprint })
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

/// The Single Object Encoding header for a schema fingerprint: `C3 01` then the fingerprint as 8
/// little-endian bytes.
pub fn soe_header(fingerprint: u64) -> [u8; SOE_HEADER_LEN] {
  let mut header = [0u8; SOE_HEADER_LEN];
  header[..2].copy_from_slice(&SOE_MAGIC);
  header[2..].copy_from_slice(&fingerprint.to_le_bytes());
  header
}

/// Splits a Single Object Encoding into its fingerprint and datum bytes.
pub fn split_soe(bytes: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
  if bytes.len() < SOE_HEADER_LEN {
    return Err(DecodeError::Truncated { needed: SOE_HEADER_LEN, available: bytes.len() });
  }
  let (header, datum) = bytes.split_at(SOE_HEADER_LEN);
  if header[..2] != SOE_MAGIC {
    return Err(DecodeError::BadMagic { found: [header[0], header[1]] });
  }
  let mut fp = [0u8; 8];
  fp.copy_from_slice(&header[2..]);
  Ok((u64::from_le_bytes(fp), datum))
}

/// Why bytes did not decode. Decoding never panics and never allocates more than the input could hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
  /// The input ended before the value did.
  #[error("truncated input: needed {needed} more bytes, {available} available")]
  Truncated {
    /// Bytes the value needed at this point.
    needed: usize,
    /// Bytes that were left.
    available: usize,
  },
  /// A varint ran past 10 bytes or past 64 bits.
  #[error("varint longer than 64 bits")]
  VarintOverflow,
  /// A value declared `int` does not fit in 32 bits.
  #[error("int out of range: {value}")]
  IntOutOfRange {
    /// The decoded value.
    value: i64,
  },
  /// A boolean byte other than 0 or 1.
  #[error("invalid boolean byte {byte:#04x}")]
  BadBoolean {
    /// The byte found.
    byte: u8,
  },
  /// A union branch index outside the union.
  #[error("union branch {branch} out of range (the union has {branches} branches)")]
  BadUnionBranch {
    /// The branch index read.
    branch: i64,
    /// How many branches the union has.
    branches: usize,
  },
  /// A `string` whose bytes are not UTF-8.
  #[error("string is not valid utf-8")]
  InvalidUtf8,
  /// A length, count or block size that is negative or larger than the remaining input.
  #[error("length {length} out of range ({available} bytes left)")]
  LengthOutOfRange {
    /// The length read.
    length: i64,
    /// Bytes that were left.
    available: usize,
  },
  /// An array block whose items did not fill exactly its declared byte size.
  #[error("array block declared {declared} bytes but its items used {used}")]
  BlockSizeMismatch {
    /// The byte size the block declared.
    declared: usize,
    /// The bytes its items took.
    used: usize,
  },
  /// Bytes were left after the value.
  #[error("{count} trailing bytes after the value")]
  TrailingBytes {
    /// How many bytes were left.
    count: usize,
  },
  /// A Single Object Encoding that does not start with `C3 01`.
  #[error("not a single object encoding: magic {:02x} {:02x}, expected c3 01", found[0], found[1])]
  BadMagic {
    /// The first two bytes found.
    found: [u8; 2],
  },
  /// A Single Object Encoding written with another schema than the one expected.
  #[error("schema fingerprint mismatch: expected {}, found {}", fingerprint_hex(*expected), fingerprint_hex(*found))]
  FingerprintMismatch {
    /// The fingerprint the reader expected.
    expected: u64,
    /// The fingerprint in the header.
    found: u64,
  },
}

// ---------------------------------------------------------------------------------------------
// Primitive encoding.

/// Appends a `long`: zigzag, then a little-endian base-128 varint.
pub fn put_long(out: &mut Vec<u8>, value: i64) {
  let mut n = ((value << 1) ^ (value >> 63)) as u64;
  while n >= 0x80 {
    out.push((n as u8) | 0x80);
    n >>= 7;
  }
  out.push(n as u8);
}

/// Appends an `int` (same encoding as `long`).
pub fn put_int(out: &mut Vec<u8>, value: i32) {
  put_long(out, i64::from(value));
}

/// Appends a `boolean`: one byte, 0 or 1.
pub fn put_bool(out: &mut Vec<u8>, value: bool) {
  out.push(u8::from(value));
}

/// Appends `bytes`: the length as a `long`, then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
  put_long(out, value.len() as i64);
  out.extend_from_slice(value);
}

/// Appends a `string`: its UTF-8 bytes as `bytes`.
pub fn put_string(out: &mut Vec<u8>, value: &str) {
  put_bytes(out, value.as_bytes());
}

/// Reads a `long`, advancing `input`.
pub fn get_long(input: &mut &[u8]) -> Result<i64, DecodeError> {
  let mut n: u64 = 0;
  for i in 0..10 {
    let Some((&byte, rest)) = input.split_first() else {
      return Err(DecodeError::Truncated { needed: 1, available: 0 });
    };
    *input = rest;
    // The tenth byte holds only the 64th bit.
    if i == 9 && byte > 1 {
      return Err(DecodeError::VarintOverflow);
    }
    n |= u64::from(byte & 0x7f) << (7 * i);
    if byte & 0x80 == 0 {
      return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
    }
  }
  Err(DecodeError::VarintOverflow)
}

/// Reads an `int`, advancing `input`.
pub fn get_int(input: &mut &[u8]) -> Result<i32, DecodeError> {
  let value = get_long(input)?;
  i32::try_from(value).map_err(|_| DecodeError::IntOutOfRange { value })
}

/// Reads a `boolean`, advancing `input`.
pub fn get_bool(input: &mut &[u8]) -> Result<bool, DecodeError> {
  let Some((&byte, rest)) = input.split_first() else {
    return Err(DecodeError::Truncated { needed: 1, available: 0 });
  };
  *input = rest;
  match byte {
    0 => Ok(false),
    1 => Ok(true),
    _ => Err(DecodeError::BadBoolean { byte }),
  }
}

/// Reads a length (of bytes, a string or a block) and checks it against the remaining input.
fn get_length(input: &mut &[u8]) -> Result<usize, DecodeError> {
  let length = get_long(input)?;
  match usize::try_from(length) {
    Ok(n) if n <= input.len() => Ok(n),
    _ => Err(DecodeError::LengthOutOfRange { length, available: input.len() }),
  }
}

/// Reads `bytes` without copying, advancing `input`.
pub fn get_bytes_ref<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
  let n = get_length(input)?;
  let (value, rest) = input.split_at(n);
  *input = rest;
  Ok(value)
}

/// Reads `bytes`, advancing `input`.
pub fn get_bytes(input: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
  get_bytes_ref(input).map(<[u8]>::to_vec)
}

/// Reads a `string` without copying, advancing `input`.
pub fn get_str<'a>(input: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
  std::str::from_utf8(get_bytes_ref(input)?).map_err(|_| DecodeError::InvalidUtf8)
}

/// Reads a `string`, advancing `input`.
pub fn get_string(input: &mut &[u8]) -> Result<String, DecodeError> {
  get_str(input).map(str::to_owned)
}

/// Reads the branch index of a union of `branches` branches.
pub fn get_union_branch(input: &mut &[u8], branches: usize) -> Result<usize, DecodeError> {
  let branch = get_long(input)?;
  match usize::try_from(branch) {
    Ok(b) if b < branches => Ok(b),
    _ => Err(DecodeError::BadUnionBranch { branch, branches }),
  }
}

// ---------------------------------------------------------------------------------------------
// Typed fields and records.

/// A Rust type with an Avro schema and binary encoding: the field types [`avro_record!`] accepts.
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

/// An Avro record declared with [`avro_record!`].
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

/// Lets [`avro_record!`] expand in crates that do not depend on serde_json themselves.
#[doc(hidden)]
pub use serde_json as __serde_json;

/// How [`avro_record!`] passes a field's [`AvroField::schema`] to [`record_schema`].
#[doc(hidden)]
pub type SchemaFn = fn(&mut BTreeSet<String>) -> Value;

/// Builds the schema JSON of a record; used by [`avro_record!`]. Returns the full name alone when
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

/// Joins `///` doc lines into one schema `doc` string; used by [`avro_record!`].
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

// ---------------------------------------------------------------------------------------------
// Pretty printing of schemas.

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

#[cfg(test)]
mod tests {
  use super::*;

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
  fn long_uses_zigzag_varints() {
    let cases: [(i64, &[u8]); 7] = [
      (0, &[0x00]),
      (-1, &[0x01]),
      (1, &[0x02]),
      (-64, &[0x7f]),
      (64, &[0x80, 0x01]),
      (i64::MAX, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      (i64::MIN, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ];
    for (value, bytes) in cases {
      let mut out = Vec::new();
      put_long(&mut out, value);
      assert_eq!(out, bytes, "{value}");
      let mut input = bytes;
      assert_eq!(get_long(&mut input), Ok(value));
      assert!(input.is_empty());
    }
  }

  #[test]
  fn overlong_varints_and_big_ints_are_rejected() {
    let mut eleven: &[u8] = &[0xff; 11];
    assert_eq!(get_long(&mut eleven), Err(DecodeError::VarintOverflow));
    let mut tenth_too_big: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(get_long(&mut tenth_too_big), Err(DecodeError::VarintOverflow));
    let mut out = Vec::new();
    put_long(&mut out, i64::from(i32::MAX) + 1);
    assert_eq!(get_int(&mut out.as_slice()), Err(DecodeError::IntOutOfRange { value: i64::from(i32::MAX) + 1 }));
  }

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

  #[test]
  fn soe_header_is_magic_then_little_endian_fingerprint() {
    let header = soe_header(0x7275d51a3f395c8f);
    assert_eq!(header, [0xc3, 0x01, 0x8f, 0x5c, 0x39, 0x3f, 0x1a, 0xd5, 0x75, 0x72]);
    let mut bytes = header.to_vec();
    bytes.push(0x2a);
    assert_eq!(split_soe(&bytes), Ok((0x7275d51a3f395c8f, &[0x2a][..])));
    assert_eq!(split_soe(&bytes[..9]), Err(DecodeError::Truncated { needed: 10, available: 9 }));
    bytes[1] = 0x02;
    assert_eq!(split_soe(&bytes), Err(DecodeError::BadMagic { found: [0xc3, 0x02] }));
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
