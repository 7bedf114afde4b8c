//! `ring publish CHANNEL --schema FILE`: publishes the channel, then each JSON line read from stdin as
//! one message, and holds the channel open until stdin ends, for scripting and tests. A line that
//! does not fit the schema stops the run with its line number (exit 2); nothing of it is published.

use std::io::BufRead;

use impulse_ring_connector::PublishOptions;

use crate::args::PublishArgs;
use crate::avro_json::Codec;
use crate::bus::{connect, Failure, Outcome};
use crate::ls::SELF;

pub fn run(args: PublishArgs) -> Outcome {
  let schema = std::fs::read_to_string(&args.schema)
    .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", args.schema.display())))?;
  let codec = Codec::new(&schema).map_err(|e| Failure::BadInput(format!("{}: {e}", args.schema.display())))?;
  let conn = connect(&args.bus, SELF)?;
  let options = PublishOptions { lossy: args.lossy, send_timeout: None, ..PublishOptions::default() };
  let mut publisher = conn.publish_channel(&args.channel, &schema, args.key.as_deref(), options)?;
  for (number, line) in std::io::stdin().lock().lines().enumerate() {
    let line = line.map_err(|e| Failure::Runtime(format!("cannot read stdin: {e}")))?;
    if line.trim().is_empty() {
      continue;
    }
    let value: serde_json::Value =
      serde_json::from_str(&line).map_err(|e| Failure::BadInput(format!("line {}: not JSON: {e}", number + 1)))?;
    let datum = codec.encode(&value).map_err(|e| Failure::BadInput(format!("line {}: {e}", number + 1)))?;
    publisher.publish_raw(&datum)?;
  }
  Ok(())
}
