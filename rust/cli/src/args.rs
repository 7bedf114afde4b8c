//! The command-line grammar of `ring`, declared with clap; `main.rs` dispatches on the verbs. Usage
//! errors exit with status 2, like any bad input.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The Ring command-line tool: schemas, and a live look at the bus of a namespace.
#[derive(Parser)]
#[command(name = "ring", version, about, long_about = None, after_help = "Every verb that talks to a broker takes \
  --ns NAMESPACE (default: $IMPULSE_RING_NS, else `impulse`) and --json.\nExit status: 0 success, 1 runtime \
  failure, 2 bad input.")]
pub struct Cli {
  #[command(subcommand)]
  pub verb: Verb,
}

#[derive(Subcommand)]
pub enum Verb {
  /// Avro schema tools: the Parsing Canonical Form and the CRC-64-AVRO fingerprint Ring checks.
  #[command(after_help = "Example:\n  ring schema fingerprint spec/schemas/examples/sensor_reading.avsc")]
  Schema(SchemaArgs),
  /// List the apps, channels and functions on the bus, with live figures.
  #[command(after_help = "Example:\n  ring ls --ns demo")]
  Ls(LsArgs),
  /// Show a channel or function: its schemas, owner, subscribers with their lag, live figures.
  #[command(after_help = "Examples:\n  ring describe readings\n  ring describe 3 --json")]
  Describe(DescribeArgs),
  /// Print a channel's messages as JSON, one per line, as they are published; never slows the publisher.
  #[command(
    after_help = "The tap joins as an observer: on any channel, a tap that falls a ring behind prints\n`missed N` instead of holding the publisher back.\n\nExample:\n  ring tap readings --count 5"
  )]
  Tap(TapArgs),
  /// Call a function with a JSON argument and print the response as JSON.
  #[command(after_help = "Example:\n  ring call add '{\"a\": 2, \"b\": 3}'")]
  Call(CallArgs),
  /// Publish a channel and each JSON line read from stdin, until stdin ends.
  #[command(after_help = "Example:\n  echo '{\"value\": 1.5}' | ring publish metrics --schema metric.avsc")]
  Publish(PublishArgs),
  /// A live view of the bus, refreshed every second (q or Ctrl-C quits).
  #[command(after_help = "Example:\n  ring top")]
  Top(TopArgs),
  /// Print the control plane as it happens: apps joining, leaving and dying, channels, functions,
  /// subscriptions and refusals, one timestamped line each.
  #[command(after_help = "Example:\n  ring monitor")]
  Monitor(MonitorArgs),
  /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
  #[command(after_help = "Example:\n  ring completions bash > ~/.local/share/bash-completion/completions/ring")]
  Completions(CompletionsArgs),
}

#[derive(Args)]
pub struct SchemaArgs {
  #[command(subcommand)]
  pub what: SchemaWhat,
}

#[derive(Subcommand)]
pub enum SchemaWhat {
  /// Print the schema's Parsing Canonical Form on one line.
  Canonical {
    /// The schema file (JSON).
    file: PathBuf,
  },
  /// Print the schema's CRC-64-AVRO fingerprint as 16 lowercase hex digits.
  Fingerprint {
    /// The schema file (JSON).
    file: PathBuf,
  },
}

/// Where to find the bus, and how to print.
#[derive(Args, Clone)]
pub struct Bus {
  /// Namespace (default: $IMPULSE_RING_NS, else `impulse`).
  #[arg(long)]
  pub ns: Option<String>,
  /// Machine-readable output: JSON.
  #[arg(long)]
  pub json: bool,
}

#[derive(Args)]
pub struct LsArgs {
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct DescribeArgs {
  /// A channel's or function's name, or the id `ring ls` shows.
  pub target: String,
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct TapArgs {
  /// The channel.
  pub channel: String,
  /// The channel's access key.
  #[arg(long)]
  pub key: Option<String>,
  /// Stop after this many messages.
  #[arg(long)]
  pub count: Option<u64>,
  /// Print each message's Single Object Encoding bytes in hex instead of JSON.
  #[arg(long)]
  pub raw: bool,
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct CallArgs {
  /// The function.
  pub function: String,
  /// The request, in Avro's JSON encoding (unions as {"type": value}).
  pub request: String,
  /// The function's access key.
  #[arg(long)]
  pub key: Option<String>,
  /// How long to wait for the response (e.g. 500ms, 5s, 1m).
  #[arg(long, default_value = "10s", value_parser = parse_duration)]
  pub timeout: Duration,
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct PublishArgs {
  /// The channel to publish.
  pub channel: String,
  /// The channel's schema file (JSON).
  #[arg(long)]
  pub schema: PathBuf,
  /// The access key subscribers must present.
  #[arg(long)]
  pub key: Option<String>,
  /// Publish with the lossy policy (default: block).
  #[arg(long)]
  pub lossy: bool,
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct TopArgs {
  /// Stop after this many refreshes (default: until q or Ctrl-C).
  #[arg(long)]
  pub iterations: Option<u64>,
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct MonitorArgs {
  /// Stop after this many events.
  #[arg(long)]
  pub count: Option<u64>,
  #[command(flatten)]
  pub bus: Bus,
}

#[derive(Args)]
pub struct CompletionsArgs {
  /// The shell.
  pub shell: clap_complete::Shell,
}

/// `250ms`, `5s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
  let (number, unit) = text.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((text, "s"), |i| text.split_at(i));
  let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 500ms, 5s or 1m"))?;
  let seconds = match unit {
    "ms" => value / 1000.0,
    "s" => value,
    "m" => value * 60.0,
    _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
  };
  Ok(Duration::from_secs_f64(seconds))
}
