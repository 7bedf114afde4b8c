//! `ring top`: a live view of the bus refreshed every second: channels by message rate, subscribers by
//! lag, functions by calls per second. On a terminal it redraws in place and quits on `q` or Ctrl-C;
//! otherwise (a pipe, a file) it prints one block of plain lines per refresh.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use impulse_ring_connector::{ChannelDescription, Connection, FunctionDescription};

use crate::args::TopArgs;
use crate::bus::{connect, Failure, Outcome};
use crate::ls::SELF;

const REFRESH: Duration = Duration::from_secs(1);

/// The figures of one refresh, and the rates since the previous one.
#[derive(Default)]
struct Sample {
  at: Option<Instant>,
  published: HashMap<i64, i64>,
  calls: HashMap<i64, i64>,
}

pub fn run(args: TopArgs) -> Outcome {
  let conn = connect(&args.bus, SELF)?;
  if std::io::stdout().is_terminal() {
    interactive(&conn, args.iterations)
  } else {
    let mut sample = Sample::default();
    for _ in 0..args.iterations.unwrap_or(u64::MAX) {
      print!("{}", frame(&conn, &mut sample)?);
      let _ = std::io::stdout().flush();
      std::thread::sleep(REFRESH);
    }
    Ok(())
  }
}

fn interactive(conn: &Connection, iterations: Option<u64>) -> Outcome {
  let io = |e: std::io::Error| Failure::Runtime(format!("terminal: {e}"));
  let mut out = std::io::stdout();
  terminal::enable_raw_mode().map_err(io)?;
  execute!(out, terminal::EnterAlternateScreen, cursor::Hide).map_err(io)?;
  let outcome = (|| {
    let mut sample = Sample::default();
    for _ in 0..iterations.unwrap_or(u64::MAX) {
      let text = frame(conn, &mut sample)?;
      execute!(out, cursor::MoveTo(0, 0), terminal::Clear(terminal::ClearType::All)).map_err(io)?;
      // Raw mode: lines need a carriage return too.
      write!(out, "{}", text.replace('\n', "\r\n")).map_err(io)?;
      write!(out, "\r\n(q quits)").map_err(io)?;
      out.flush().map_err(io)?;
      let until = Instant::now() + REFRESH;
      while let Some(left) = until.checked_duration_since(Instant::now()) {
        if event::poll(left).map_err(io)? {
          if let Event::Key(key) = event::read().map_err(io)? {
            let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
            if key.code == KeyCode::Char('q') || ctrl_c {
              return Ok(());
            }
          }
        }
      }
    }
    Ok(())
  })();
  let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
  let _ = terminal::disable_raw_mode();
  outcome
}

/// One refresh: asks the broker for every channel and function and renders them.
fn frame(conn: &Connection, previous: &mut Sample) -> Result<String, Failure> {
  let listing = conn.list()?;
  let now = Instant::now();
  let mut channels: Vec<ChannelDescription> = Vec::new();
  let mut functions: Vec<FunctionDescription> = Vec::new();
  for c in &listing.channels {
    // A channel that went away between the listing and here is simply not shown.
    if let Ok(d) = conn.describe_id(c.channel_id as u64) {
      channels.extend(d.channels);
    }
  }
  for f in &listing.functions {
    if let Ok(d) = conn.describe_id(f.function_id as u64) {
      functions.extend(d.functions);
    }
  }
  let elapsed = previous.at.map(|at| now.duration_since(at).as_secs_f64()).filter(|s| *s > 0.0);
  let rate = |now: i64, before: Option<&i64>| match (elapsed, before) {
    (Some(seconds), Some(before)) => (now - before).max(0) as f64 / seconds,
    _ => 0.0,
  };
  let mut by_rate: Vec<(f64, &ChannelDescription)> =
    channels.iter().map(|c| (rate(c.published, previous.published.get(&c.channel_id)), c)).collect();
  by_rate.sort_by(|a, b| b.0.total_cmp(&a.0));
  let mut by_calls: Vec<(f64, &FunctionDescription)> =
    functions.iter().map(|f| (rate(f.calls, previous.calls.get(&f.function_id)), f)).collect();
  by_calls.sort_by(|a, b| b.0.total_cmp(&a.0));
  let mut subscribers: Vec<(&str, &impulse_ring_connector::SubscriberDescription)> =
    channels.iter().flat_map(|c| c.subscribers.iter().map(move |s| (c.name.as_str(), s))).collect();
  subscribers.sort_by_key(|s| std::cmp::Reverse(s.1.lag));

  let mut text = format!(
    "ring top — {} apps, {} channels, {} functions\n\nCHANNELS (by rate)\n  {:<24} {:>10} {:>12} {:>6}\n",
    listing.apps.len().saturating_sub(1),
    channels.len(),
    functions.len(),
    "NAME",
    "MSG/S",
    "PUBLISHED",
    "SUBS"
  );
  for (r, c) in &by_rate {
    text.push_str(&format!("  {:<24} {:>10.0} {:>12} {:>6}\n", c.name, r, c.published, c.subscribers.len()));
  }
  text.push_str(&format!("\nSUBSCRIBERS (by lag)\n  {:<24} {:<20} {:>10} {:>10}\n", "CHANNEL", "APP", "LAG", "MISSED"));
  for (channel, s) in &subscribers {
    text.push_str(&format!("  {:<24} {:<20} {:>10} {:>10}\n", channel, s.app_name, s.lag, s.missed));
  }
  text.push_str(&format!(
    "\nFUNCTIONS (by calls/s)\n  {:<24} {:>10} {:>12} {:>8} {:>10}\n",
    "NAME", "CALLS/S", "CALLS", "ERRORS", "IN FLIGHT"
  ));
  for (r, f) in &by_calls {
    text.push_str(&format!("  {:<24} {:>10.0} {:>12} {:>8} {:>10}\n", f.name, r, f.calls, f.errors, f.in_flight));
  }
  text.push('\n');
  *previous = Sample {
    at: Some(now),
    published: channels.iter().map(|c| (c.channel_id, c.published)).collect(),
    calls: functions.iter().map(|f| (f.function_id, f.calls)).collect(),
  };
  Ok(text)
}
