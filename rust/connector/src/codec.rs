//! Typed Avro through apache-avro: a schema parsed once per process, with a datum writer and
//! reader built once per channel or function, so encoding a message allocates nothing new.

use std::collections::HashMap;
use std::sync::Mutex;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use impulse_ring_core::avro;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A schema with its fingerprint and ready-made datum writer and reader.
pub(crate) struct Codec {
  pub fingerprint: u64,
  writer: GenericDatumWriter<'static>,
  reader: GenericDatumReader<'static>,
}

/// Parses `json` and returns the process-wide parsed schema and its fingerprint. Schemas are kept for
/// the life of the process (one per distinct schema), so writers and readers can borrow them.
fn intern(json: &str) -> Result<(&'static Schema, u64)> {
  static SCHEMAS: Mutex<Option<HashMap<String, (&'static Schema, u64)>>> = Mutex::new(None);
  let mut cache = SCHEMAS.lock().unwrap_or_else(|e| e.into_inner());
  let cache = cache.get_or_insert_with(HashMap::new);
  if let Some(&found) = cache.get(json) {
    return Ok(found);
  }
  let parsed = avro::parse_schema(json).map_err(|e| Error::InvalidSchema { message: e.to_string() })?;
  let schema: &'static Schema = Box::leak(Box::new(parsed.schema));
  cache.insert(json.to_string(), (schema, parsed.fingerprint));
  Ok((schema, parsed.fingerprint))
}

impl Codec {
  /// A codec for the schema `json`.
  pub fn new(json: &str) -> Result<Codec> {
    let (schema, fingerprint) = intern(json)?;
    let bad = |e: apache_avro::Error| Error::InvalidSchema { message: e.to_string() };
    Ok(Codec {
      fingerprint,
      writer: GenericDatumWriter::builder(schema).build().map_err(bad)?,
      reader: GenericDatumReader::builder(schema).build().map_err(bad)?,
    })
  }

  /// Appends the Single Object Encoding of `value` (header and datum) to `out`.
  pub fn encode_soe<T: Serialize>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&avro::soe_header(self.fingerprint));
    self
      .writer
      .write_ser(out, value)
      .map(|_| ())
      .map_err(|e| Error::Decode { message: format!("cannot encode the value with its schema: {e}") })
  }

  /// Decodes a datum (no header).
  pub fn decode<T: DeserializeOwned>(&self, datum: &[u8]) -> Result<T> {
    let mut input = datum;
    self
      .reader
      .read_deser(&mut input)
      .map_err(|e| Error::Decode { message: format!("cannot decode the payload with its schema: {e}") })
  }
}

/// Checks a Single Object Encoding header against the expected fingerprint and returns the datum.
pub(crate) fn open_soe(payload: &[u8], expected: u64) -> Result<&[u8]> {
  let (fingerprint, datum) = avro::split_soe(payload).map_err(|e| Error::Decode { message: e.to_string() })?;
  if fingerprint != expected {
    return Err(Error::Decode {
      message: format!(
        "payload carries schema {}, expected {}",
        avro::fingerprint_hex(fingerprint),
        avro::fingerprint_hex(expected)
      ),
    });
  }
  Ok(datum)
}
