//! `ring describe NAME|ID`: what the broker knows of a channel or function (its schema registry):
//! the schemas as their owners presented them (pretty JSON), fingerprints, owner app and pid, whether
//! a key is needed, subscribers with their lag, and live figures. `--json` prints the same as JSON.

use impulse_ring_connector::{ChannelDescription, Connection, Description, FunctionDescription};
use impulse_ring_core::avro::schema_to_pretty_json;
use serde_json::{json, Value};

use crate::args::DescribeArgs;
use crate::bus::{connect, hex, print_json, Failure, Outcome};
use crate::ls::SELF;

pub fn run(args: DescribeArgs) -> Outcome {
  let conn = connect(&args.bus, SELF)?;
  let description = describe(&conn, &args.target)?;
  if args.bus.json {
    print_json(&description_json(&description));
  } else {
    for c in &description.channels {
      print_channel(c);
    }
    for f in &description.functions {
      print_function(f);
    }
  }
  Ok(())
}

/// Looks `target` up as an id when it is a number, else as a name.
pub fn describe(conn: &Connection, target: &str) -> Result<Description, Failure> {
  Ok(match target.parse::<u64>() {
    Ok(id) => conn.describe_id(id)?,
    Err(_) => conn.describe(target)?,
  })
}

/// A schema text as pretty JSON, keys in the canonical form's order (`name`, `type`, ..., `fields`
/// last); as given when it is not JSON, which the broker would have refused.
pub fn pretty(schema: &str) -> String {
  serde_json::from_str::<Value>(schema)
    .map(|v| schema_to_pretty_json(&v).trim_end().to_string())
    .unwrap_or_else(|_| schema.to_string())
}

fn indent(text: &str) -> String {
  text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

fn print_channel(c: &ChannelDescription) {
  println!("channel {} (id {})", c.name, c.channel_id);
  println!("  owner        {} (app {}, pid {})", c.owner_app_name, c.owner_app_id, c.owner_pid);
  println!("  key          {}", if c.key_gated { "required" } else { "none" });
  println!("  policy       {}, capacity {} bytes", if c.lossy { "lossy" } else { "block" }, c.capacity);
  println!("  published    {} messages, {} bytes", c.published, c.published_bytes);
  println!("  fingerprint  {}", hex(c.fingerprint));
  println!("  schema\n{}", indent(&pretty(&c.schema)));
  println!("  subscribers  {}", c.subscribers.len());
  for s in &c.subscribers {
    println!(
      "    #{:<3} {} (app {}, pid {})  position {}  lag {}  missed {}",
      s.index, s.app_name, s.app_id, s.pid, s.position, s.lag, s.missed
    );
  }
}

fn print_function(f: &FunctionDescription) {
  println!("function {} (id {})", f.name, f.function_id);
  println!("  owner        {} (app {}, pid {})", f.owner_app_name, f.owner_app_id, f.owner_pid);
  println!("  key          {}", if f.key_gated { "required" } else { "none" });
  println!("  calls        {} ({} errors, {} in flight) over {} link(s)", f.calls, f.errors, f.in_flight, f.links);
  println!("  request      {}\n{}", hex(f.request_fingerprint), indent(&pretty(&f.request_schema)));
  println!("  response     {}\n{}", hex(f.response_fingerprint), indent(&pretty(&f.response_schema)));
}

fn schema_value(schema: &str) -> Value {
  serde_json::from_str(schema).unwrap_or_else(|_| Value::String(schema.to_string()))
}

pub fn channel_json(c: &ChannelDescription) -> Value {
  json!({
    "kind": "channel", "id": c.channel_id, "name": c.name, "schema": schema_value(&c.schema),
    "fingerprint": hex(c.fingerprint),
    "owner": {"app_id": c.owner_app_id, "name": c.owner_app_name, "pid": c.owner_pid},
    "key_gated": c.key_gated, "policy": if c.lossy { "lossy" } else { "block" }, "capacity": c.capacity,
    "published": c.published, "published_bytes": c.published_bytes,
    "subscribers": c.subscribers.iter().map(|s| json!({
      "index": s.index, "app_id": s.app_id, "name": s.app_name, "pid": s.pid, "position": s.position,
      "lag": s.lag, "missed": s.missed,
    })).collect::<Vec<_>>(),
  })
}

pub fn function_json(f: &FunctionDescription) -> Value {
  json!({
    "kind": "function", "id": f.function_id, "name": f.name,
    "request_schema": schema_value(&f.request_schema), "response_schema": schema_value(&f.response_schema),
    "request_fingerprint": hex(f.request_fingerprint), "response_fingerprint": hex(f.response_fingerprint),
    "owner": {"app_id": f.owner_app_id, "name": f.owner_app_name, "pid": f.owner_pid},
    "key_gated": f.key_gated, "links": f.links, "calls": f.calls, "errors": f.errors, "in_flight": f.in_flight,
  })
}

fn description_json(d: &Description) -> Value {
  json!({
    "channels": d.channels.iter().map(channel_json).collect::<Vec<_>>(),
    "functions": d.functions.iter().map(function_json).collect::<Vec<_>>(),
  })
}
