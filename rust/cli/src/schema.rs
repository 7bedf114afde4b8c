//! `ring schema canonical|fingerprint FILE`: parse a schema file with the core's Avro support and print
//! its Parsing Canonical Form or its fingerprint, exactly as the broker computes them.

use std::path::Path;

use impulse_ring_core::avro::{fingerprint_hex, parse_schema, ParsedSchema};

use crate::args::{SchemaArgs, SchemaWhat};
use crate::bus::{Failure, Outcome};

pub fn run(args: SchemaArgs) -> Outcome {
  let (file, print): (&Path, fn(&ParsedSchema) -> String) = match &args.what {
    SchemaWhat::Canonical { file } => (file, |parsed| parsed.canonical.clone()),
    SchemaWhat::Fingerprint { file } => (file, |parsed| fingerprint_hex(parsed.fingerprint)),
  };
  println!("{}", print(&load(file)?));
  Ok(())
}

fn load(file: &Path) -> Result<ParsedSchema, Failure> {
  let json =
    std::fs::read_to_string(file).map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", file.display())))?;
  parse_schema(&json).map_err(|e| Failure::BadInput(format!("invalid schema in {}: {e}", file.display())))
}
