//! `ring monitor`: the control plane as it happens, one timestamped line per event, like
//! `busctl monitor`: apps joining, leaving and dying, channels and functions appearing and going,
//! subscriptions and refusals. `--json` prints each event as a JSON object.

use std::time::{Duration, UNIX_EPOCH};

use impulse_ring_connector::MonitorEvent;
use serde_json::json;

use crate::args::MonitorArgs;
use crate::bus::{connect, Outcome};
use crate::ls::SELF;

pub fn run(args: MonitorArgs) -> Outcome {
  let conn = connect(&args.bus, SELF)?;
  let monitor = conn.monitor()?;
  let me = conn.app_id() as i32;
  let mut seen = 0u64;
  while args.count.is_none_or(|n| seen < n) {
    let Some(event) = monitor.next(Duration::from_millis(200))? else { continue };
    if event.app_id == me {
      continue;
    }
    seen += 1;
    if args.bus.json {
      println!(
        "{}",
        json!({"time_ns": event.time_ns, "kind": event.kind, "app_id": event.app_id, "app": event.app_name,
               "pid": event.pid, "subject": event.subject, "detail": event.detail})
      );
    } else {
      println!("{}", line(&event));
    }
  }
  Ok(())
}

/// `12:00:01.234567 app-joined      sensor (app 3, pid 4242) readings: detail`, in UTC.
fn line(event: &MonitorEvent) -> String {
  let at = UNIX_EPOCH + Duration::from_nanos(event.time_ns.max(0) as u64);
  let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
  let day = since.as_secs() % 86_400;
  let time = format!("{:02}:{:02}:{:02}.{:06}", day / 3600, day / 60 % 60, day % 60, since.subsec_micros());
  let mut text = format!("{time} {:<18} {} (app {}, pid {})", event.kind, event.app_name, event.app_id, event.pid);
  if !event.subject.is_empty() {
    text.push_str(&format!(" {}", event.subject));
  }
  if !event.detail.is_empty() {
    text.push_str(&format!(": {}", event.detail));
  }
  text
}
