//! `ring tap CHANNEL`: subscribes with the schema the channel's publisher registered (from the
//! broker's registry, via `Describe`) and prints each message as JSON, one per line, prefixed with its
//! sequence number; missed messages (lossy channels) get a line of their own. `--raw` prints the
//! Single Object Encoding bytes in hex; `--json` prints `{"seq": N, "message": ...}` objects.
//!
//! The tap joins as an observer (wire-format.md §7.8): it never slows the publisher, even on a `block`
//! channel; when it falls a ring behind it prints `missed N` and goes on with the oldest message left.

use std::io::Write;
use std::time::Duration;

use impulse_ring_connector::{RecvError, SubscribeOptions};
use impulse_ring_core::avro::soe_header;
use serde_json::json;

use crate::args::TapArgs;
use crate::avro_json::Codec;
use crate::bus::{connect, Failure, Outcome};
use crate::ls::SELF;

pub fn run(args: TapArgs) -> Outcome {
  let conn = connect(&args.bus, SELF)?;
  let description = conn.describe(&args.channel)?;
  let Some(channel) = description.channels.first() else {
    return Err(Failure::Runtime(format!("UnknownChannel: `{}` is a function, not a channel", args.channel)));
  };
  let codec = Codec::new(&channel.schema).map_err(Failure::Runtime)?;
  let observer = SubscribeOptions { observe: true, ..SubscribeOptions::default() };
  let mut sub = conn.subscribe_with(&args.channel, args.key.as_deref(), &channel.schema, observer)?;
  let header = soe_header(sub.fingerprint());
  let mut out = std::io::stdout().lock();
  let mut seen = 0u64;
  while args.count.is_none_or(|n| seen < n) {
    match sub.recv_raw(Duration::from_millis(200)) {
      Ok(Some(datum)) => {
        seen += 1;
        let seq = sub.last_seq().unwrap_or_default();
        let line = if args.raw {
          let hex: String = header.iter().chain(&datum).map(|b| format!("{b:02x}")).collect();
          if args.bus.json {
            json!({"seq": seq, "soe": hex}).to_string()
          } else {
            format!("{seq} {hex}")
          }
        } else {
          let message = codec.decode(&datum).map_err(Failure::Runtime)?;
          if args.bus.json {
            json!({"seq": seq, "message": message}).to_string()
          } else {
            format!("{seq} {message}")
          }
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
          // The reader of our output is gone (`ring tap ... | head`): a normal end.
          return Ok(());
        }
      }
      Ok(None) => {}
      Err(RecvError::Lagged { missed }) => {
        let line = if args.bus.json { json!({"missed": missed}).to_string() } else { format!("missed {missed}") };
        let _ = writeln!(out, "{line}");
      }
      Err(RecvError::Closed { .. }) => {
        let _ = out.flush();
        return Err(Failure::Runtime(format!("Closed: channel `{}` was closed by its publisher", args.channel)));
      }
      Err(e) => return Err(e.into()),
    }
  }
  Ok(())
}
