//! `ring schema canonical|fingerprint FILE`: parse a schema file with the core's Avro support and print
//! its Parsing Canonical Form or its fingerprint, exactly as the broker computes them.

use std::path::Path;
use std::process::ExitCode;

use impulse_ring_core::avro::{fingerprint_hex, parse_schema, ParsedSchema};

use crate::flags;

/// Exit status for bad input: an unreadable file or an invalid schema.
const BAD_INPUT: u8 = 2;

impl flags::Schema {
  pub(crate) fn run(self) -> ExitCode {
    let (file, print): (&Path, fn(&ParsedSchema) -> String) = match &self.subcommand {
      flags::SchemaCmd::Canonical(cmd) => (&cmd.file, |parsed| parsed.canonical.clone()),
      flags::SchemaCmd::Fingerprint(cmd) => (&cmd.file, |parsed| fingerprint_hex(parsed.fingerprint)),
    };
    match load(file) {
      Ok(parsed) => {
        println!("{}", print(&parsed));
        ExitCode::SUCCESS
      }
      Err(message) => {
        eprintln!("ring: {message}");
        ExitCode::from(BAD_INPUT)
      }
    }
  }
}

fn load(file: &Path) -> Result<ParsedSchema, String> {
  let json = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
  parse_schema(&json).map_err(|e| format!("invalid schema in {}: {e}", file.display()))
}
