//! `ring ls`: asks the broker what is on the bus and prints apps, channels and functions as tables,
//! or with `--json` as one JSON object. The tool's own connection is left out.

use impulse_ring_core::control::Listing;
use serde_json::json;

use crate::args::LsArgs;
use crate::bus::{connect, hex, print_json, Outcome};

/// The app name the tool registers under; listings leave it out.
pub const SELF: &str = "ring";

pub fn run(args: LsArgs) -> Outcome {
  let conn = connect(&args.bus, SELF)?;
  let mut listing = conn.list()?;
  listing.apps.retain(|a| a.app_id as u32 != conn.app_id());
  if args.bus.json {
    print_json(&listing_json(&listing));
  } else {
    print_table(&listing);
  }
  Ok(())
}

pub fn listing_json(listing: &Listing) -> serde_json::Value {
  json!({
    "apps": listing.apps.iter().map(|a| json!({"id": a.app_id, "name": a.name, "pid": a.pid})).collect::<Vec<_>>(),
    "channels": listing.channels.iter().map(|c| json!({
      "id": c.channel_id, "name": c.name, "fingerprint": hex(c.fingerprint), "owner": c.owner_app_id,
      "capacity": c.capacity, "policy": if c.lossy { "lossy" } else { "block" }, "published": c.published,
      "subscribers": c.subscribers,
    })).collect::<Vec<_>>(),
    "functions": listing.functions.iter().map(|f| json!({
      "id": f.function_id, "name": f.name, "request_fingerprint": hex(f.request_fingerprint),
      "response_fingerprint": hex(f.response_fingerprint), "owner": f.owner_app_id,
    })).collect::<Vec<_>>(),
  })
}

fn print_table(listing: &Listing) {
  println!("APPS ({})", listing.apps.len());
  println!("  {:>4}  {:>8}  NAME", "ID", "PID");
  for app in &listing.apps {
    println!("  {:>4}  {:>8}  {}", app.app_id, app.pid, app.name);
  }
  println!("CHANNELS ({})", listing.channels.len());
  println!(
    "  {:>4}  {:<24}  {:<16}  {:>5}  {:>11}  {:>6}  {:>12}  {:>11}",
    "ID", "NAME", "FINGERPRINT", "OWNER", "CAPACITY", "POLICY", "PUBLISHED", "SUBSCRIBERS"
  );
  for ch in &listing.channels {
    println!(
      "  {:>4}  {:<24}  {:<16}  {:>5}  {:>11}  {:>6}  {:>12}  {:>11}",
      ch.channel_id,
      ch.name,
      hex(ch.fingerprint),
      ch.owner_app_id,
      ch.capacity,
      if ch.lossy { "lossy" } else { "block" },
      ch.published,
      ch.subscribers
    );
  }
  println!("FUNCTIONS ({})", listing.functions.len());
  println!("  {:>4}  {:<24}  {:<16}  {:<16}  {:>5}", "ID", "NAME", "REQUEST", "RESPONSE", "OWNER");
  for f in &listing.functions {
    println!(
      "  {:>4}  {:<24}  {:<16}  {:<16}  {:>5}",
      f.function_id,
      f.name,
      hex(f.request_fingerprint),
      hex(f.response_fingerprint),
      f.owner_app_id
    );
  }
}
