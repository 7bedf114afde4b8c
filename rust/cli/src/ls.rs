//! `ring ls`: asks the broker what is on the bus and prints apps, channels and functions as tables,
//! or with `--json` as one JSON object, with the live figures of each (from `Describe`: the largest
//! subscriber lag and the messages missed on a channel; calls, errors and calls in flight of a
//! function). The tool's own connection is left out.

use std::collections::HashMap;

use impulse_ring_connector::Connection;
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
  let figures = Figures::of(&conn, &listing);
  if args.bus.json {
    print_json(&listing_json(&listing, &figures));
  } else {
    print_table(&listing, &figures);
  }
  Ok(())
}

/// The live figures of what a listing names, by id; an entry that went away meanwhile has none.
#[derive(Default)]
pub struct Figures {
  /// Channel id → (the largest lag of its subscribers, messages they missed).
  channels: HashMap<i64, (i64, i64)>,
  /// Function id → (calls, errors, calls in flight).
  functions: HashMap<i64, (i64, i64, i64)>,
}

impl Figures {
  pub fn of(conn: &Connection, listing: &Listing) -> Figures {
    let mut figures = Figures::default();
    let ids = listing.channels.iter().map(|c| c.channel_id).chain(listing.functions.iter().map(|f| f.function_id));
    for id in ids {
      let Ok(description) = conn.describe_id(id as u64) else { continue };
      for c in &description.channels {
        let lag = c.subscribers.iter().map(|s| s.lag).max().unwrap_or(0);
        figures.channels.insert(c.channel_id, (lag, c.subscribers.iter().map(|s| s.missed).sum()));
      }
      for f in &description.functions {
        figures.functions.insert(f.function_id, (f.calls, f.errors, f.in_flight));
      }
    }
    figures
  }
}

pub fn listing_json(listing: &Listing, figures: &Figures) -> serde_json::Value {
  json!({
    "apps": listing.apps.iter().map(|a| json!({"id": a.app_id, "name": a.name, "pid": a.pid})).collect::<Vec<_>>(),
    "channels": listing.channels.iter().map(|c| json!({
      "id": c.channel_id, "name": c.name, "fingerprint": hex(c.fingerprint), "owner": c.owner_app_id,
      "capacity": c.capacity, "policy": if c.lossy { "lossy" } else { "block" }, "published": c.published,
      "subscribers": c.subscribers,
      "max_lag": figures.channels.get(&c.channel_id).map(|f| f.0),
      "missed": figures.channels.get(&c.channel_id).map(|f| f.1),
    })).collect::<Vec<_>>(),
    "functions": listing.functions.iter().map(|f| json!({
      "id": f.function_id, "name": f.name, "request_fingerprint": hex(f.request_fingerprint),
      "response_fingerprint": hex(f.response_fingerprint), "owner": f.owner_app_id,
      "calls": figures.functions.get(&f.function_id).map(|f| f.0),
      "errors": figures.functions.get(&f.function_id).map(|f| f.1),
      "in_flight": figures.functions.get(&f.function_id).map(|f| f.2),
    })).collect::<Vec<_>>(),
  })
}

fn print_table(listing: &Listing, figures: &Figures) {
  println!("APPS ({})", listing.apps.len());
  println!("  {:>4}  {:>8}  NAME", "ID", "PID");
  for app in &listing.apps {
    println!("  {:>4}  {:>8}  {}", app.app_id, app.pid, app.name);
  }
  println!("CHANNELS ({})", listing.channels.len());
  println!(
    "  {:>4}  {:<24}  {:<16}  {:>5}  {:>11}  {:>6}  {:>12}  {:>11}  {:>8}  {:>8}",
    "ID", "NAME", "FINGERPRINT", "OWNER", "CAPACITY", "POLICY", "PUBLISHED", "SUBSCRIBERS", "MAX LAG", "MISSED"
  );
  for ch in &listing.channels {
    let (lag, missed) =
      figures.channels.get(&ch.channel_id).map_or(("-".into(), "-".into()), |f| (f.0.to_string(), f.1.to_string()));
    println!(
      "  {:>4}  {:<24}  {:<16}  {:>5}  {:>11}  {:>6}  {:>12}  {:>11}  {:>8}  {:>8}",
      ch.channel_id,
      ch.name,
      hex(ch.fingerprint),
      ch.owner_app_id,
      ch.capacity,
      if ch.lossy { "lossy" } else { "block" },
      ch.published,
      ch.subscribers,
      lag,
      missed
    );
  }
  println!("FUNCTIONS ({})", listing.functions.len());
  println!(
    "  {:>4}  {:<24}  {:<16}  {:<16}  {:>5}  {:>10}  {:>7}  {:>9}",
    "ID", "NAME", "REQUEST", "RESPONSE", "OWNER", "CALLS", "ERRORS", "IN FLIGHT"
  );
  for f in &listing.functions {
    let calls = figures.functions.get(&f.function_id);
    let show = |pick: fn(&(i64, i64, i64)) -> i64| calls.map_or_else(|| "-".to_string(), |c| pick(c).to_string());
    println!(
      "  {:>4}  {:<24}  {:<16}  {:<16}  {:>5}  {:>10}  {:>7}  {:>9}",
      f.function_id,
      f.name,
      hex(f.request_fingerprint),
      hex(f.response_fingerprint),
      f.owner_app_id,
      show(|c| c.0),
      show(|c| c.1),
      show(|c| c.2)
    );
  }
}
