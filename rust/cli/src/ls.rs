//! `ring ls`: asks the broker what is on the bus and prints apps, channels and functions as tables.
//! With no broker it prints one line naming the namespace it looked in and exits with status 1.

use std::process::ExitCode;

use impulse_ring_connector::{ConnectOptions, Connection};
use impulse_ring_core::avro::fingerprint_hex;

use crate::flags;

impl flags::Ls {
  pub(crate) fn run(self) -> ExitCode {
    let options = ConnectOptions { namespace: self.ns, ..ConnectOptions::default() };
    let listing = Connection::connect_with("ring-ls", options)
      .map_err(impulse_ring_connector::Error::from)
      .and_then(|conn| conn.list().map_err(Into::into));
    let listing = match listing {
      Ok(listing) => listing,
      Err(e) => {
        eprintln!("ring ls: {e}");
        return ExitCode::from(1);
      }
    };
    let apps: Vec<_> = listing.apps.iter().filter(|a| a.name != "ring-ls").collect();
    println!("APPS ({})", apps.len());
    println!("  {:>4}  {:>8}  NAME", "ID", "PID");
    for app in apps {
      println!("  {:>4}  {:>8}  {}", app.app_id, app.pid, app.name);
    }
    println!("CHANNELS ({})", listing.channels.len());
    println!(
      "  {:>4}  {:<24}  {:<16}  {:>5}  {:>11}  {:>6}  {:>12}",
      "ID", "NAME", "FINGERPRINT", "OWNER", "CAPACITY", "POLICY", "PUBLISHED"
    );
    for ch in &listing.channels {
      println!(
        "  {:>4}  {:<24}  {:<16}  {:>5}  {:>11}  {:>6}  {:>12}   {} subscriber(s)",
        ch.channel_id,
        ch.name,
        fingerprint_hex(ch.fingerprint as u64),
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
        fingerprint_hex(f.request_fingerprint as u64),
        fingerprint_hex(f.response_fingerprint as u64),
        f.owner_app_id
      );
    }
    ExitCode::SUCCESS
  }
}
