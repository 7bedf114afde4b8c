//! Cross-language pair cases of `test-matrix`, in the style of protobuf's conformance runner: each
//! connector ships a testee (publisher, subscriber, provider, caller) with the same flags and output
//! lines, so one harness drives any two languages. A case is named by its roles
//! (`pubsub publisher=c subscriber=rust`) and runs its steps against a live broker of its own.
//!
//! A new connector adds its testee to [`testee`] and [`build`], and its language to [`TESTEES`]: [`cases`]
//! then gives every ordered pair of two languages both patterns.

use std::{
  path::{Path, PathBuf},
  time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{
  broker,
  matrix::Run,
  proc::{Child, Echo},
  shm,
};

/// How long one step (one pair of testee runs) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// What a case exercises.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Pattern {
  /// A channel: the producer publishes, the consumer subscribes.
  PubSub,
  /// A function: the consumer provides it, the producer calls it.
  Call,
}

/// One cell's worth of cross-language tests.
#[derive(Clone, Copy)]
pub(crate) struct PairCase {
  pub(crate) pattern: Pattern,
  /// The publisher or caller.
  pub(crate) producer: &'static str,
  /// The subscriber or provider.
  pub(crate) consumer: &'static str,
}

impl PairCase {
  pub(crate) fn name(&self) -> String {
    match self.pattern {
      Pattern::PubSub => format!("pubsub publisher={} subscriber={}", self.producer, self.consumer),
      Pattern::Call => format!("call provider={} caller={}", self.consumer, self.producer),
    }
  }
}

/// Languages that ship a testee, in table order.
pub(crate) const TESTEES: [&str; 6] = ["rust", "c", "cpp", "python", "go", "ts"];

/// Every pair case, in table order: each pattern for every ordered pair of two different languages
/// with a testee (a language with itself is covered by its own suites).
pub(crate) fn cases() -> Vec<PairCase> {
  use Pattern::*;
  let case = |pattern, producer, consumer| PairCase { pattern, producer, consumer };
  let mut cases = Vec::new();
  for pattern in [PubSub, Call] {
    for producer in TESTEES {
      for consumer in TESTEES.into_iter().filter(|&consumer| consumer != producer) {
        cases.push(case(pattern, producer, consumer));
      }
    }
  }
  cases
}

/// The directory a language's connector lives in; its cases are skipped while it does not exist.
pub(crate) fn language_dir(language: &str) -> &'static str {
  match language {
    "rust" => "rust",
    "c" => "c",
    "cpp" => "cpp",
    "python" => "python",
    "go" => "go",
    "ts" => "ts",
    _ => "-",
  }
}

/// How to start a language's testee: a program and the arguments that come before the role.
pub(crate) struct Program {
  bin: PathBuf,
  prefix: Vec<String>,
}

/// The testee of a language, once built.
pub(crate) fn testee(root: &Path, language: &str) -> anyhow::Result<Program> {
  let (bin, prefix) = match language {
    "rust" => (broker::target_dir(root).join("debug/examples/testee"), vec![]),
    "c" => (root.join("target/c/testee"), vec![]),
    "cpp" => (root.join("target/cpp/testee"), vec![]),
    // The interpreter of the environment `uv sync --project python` made, so the extension it built
    // and fastavro are found without `uv run` in between.
    "python" => {
      let script = root.join("python/examples/testee.py");
      (root.join("python/.venv/bin/python"), vec![script.display().to_string()])
    }
    "go" => (root.join("target/go/testee"), vec![]),
    // An executable script (`#!/usr/bin/env bun`), so the harness runs it like a binary.
    "ts" => (root.join("ts/examples/testee.ts"), vec![]),
    other => bail!("no testee is known for language `{other}`"),
  };
  Ok(Program { bin: broker::existing(bin, &format!("the {language} testee"))?, prefix })
}

/// Builds a language's testee.
pub(crate) fn build(sh: &Shell, language: &str) -> anyhow::Result<()> {
  match language {
    "rust" => cmd!(sh, "cargo build -p impulse-ring-connector --example testee").run()?,
    "c" => {
      cmd!(sh, "cmake -S c -B target/c -DCMAKE_BUILD_TYPE=Debug")
        .run()
        .context("`cmake` is required to build c/; install CMake 3.16+ (Debian: `apt-get install cmake`)")?;
      cmd!(sh, "cmake --build target/c --parallel 2 --target testee").run()?;
    }
    "cpp" => {
      cmd!(sh, "cmake -S cpp -B target/cpp -DCMAKE_BUILD_TYPE=Debug")
        .run()
        .context("`cmake` is required to build cpp/; install CMake 3.16+ (Debian: `apt-get install cmake`)")?;
      cmd!(sh, "cmake --build target/cpp --parallel 2 --target testee").run()?;
    }
    // Builds the native extension (maturin, through the project's build backend) and installs the
    // package and its dependencies into python/.venv.
    "python" => cmd!(sh, "uv sync --project python")
      .run()
      .context("`uv` is required to build python/; install it with `pip install uv`")?,
    "go" => {
      cmd!(sh, "go version")
        .run()
        .context("`go` is required to build go/; install Go 1.26+ (https://go.dev/doc/install)")?;
      cmd!(sh, "go -C go build -o ../target/go/testee ./cmd/testee").run()?;
    }
    "ts" => build_ts(sh)?,
    other => bail!("no testee is known for language `{other}`"),
  }
  Ok(())
}

/// Builds every language's testee whose connector exists; returns the languages that built (a
/// failed build is printed and its language left out).
pub(crate) fn build_all(sh: &Shell) -> Vec<&'static str> {
  let mut built = Vec::new();
  for lang in TESTEES.into_iter().filter(|lang| sh.path_exists(language_dir(lang))) {
    println!("\n==> the {lang} testee: build");
    match build(sh, lang) {
      Ok(()) => built.push(lang),
      Err(err) => println!("the {lang} testee did not build, it is left out: {err:#}"),
    }
  }
  built
}

/// Installs the TypeScript package's dependencies and builds the C library it loads through Bun FFI.
pub(crate) fn build_ts(sh: &Shell) -> anyhow::Result<()> {
  cmd!(sh, "bun --version")
    .quiet()
    .run()
    .context("`bun` is required to test ts/; install Bun 1.1+ (`npm install -g bun`, or https://bun.sh)")?;
  cmd!(sh, "bun install --cwd ts --frozen-lockfile").run()?;
  cmd!(sh, "cmake -S c -B target/c -DCMAKE_BUILD_TYPE=Debug").run().context(
    "`cmake` is required to build the C library ts/ loads; install CMake 3.16+ (Debian: `apt-get install cmake`)",
  )?;
  cmd!(sh, "cmake --build target/c --parallel 2 --target impulse_ring").run()?;
  Ok(())
}

/// A testee process whose output lines are kept for checks; killed and reaped when dropped.
pub(crate) struct Testee(Child);

impl Testee {
  pub(crate) fn start(label: String, program: &Program, ns: &str, args: &[&str]) -> anyhow::Result<Testee> {
    let argv = program.prefix.iter().map(String::as_str).chain(args.iter().copied()).collect::<Vec<_>>();
    let expr = duct::cmd(&program.bin, argv).env("IMPULSE_RING_NS", ns);
    Ok(Testee(Child::start(&label, expr, Echo::Quiet).with_context(|| format!("cannot start {label}"))?))
  }

  pub(crate) fn transcript(&self) -> String {
    let lines = self.0.lines();
    let body = if lines.is_empty() {
      "    (no output)".to_string()
    } else {
      lines.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    };
    format!("  {}:\n{body}", self.0.name())
  }

  pub(crate) fn has_line(&self, prefix: &str) -> bool {
    self.0.has_line(prefix)
  }

  /// Waits for a line starting with `prefix`; the case's error carries every transcript already.
  pub(crate) fn wait_line(&self, prefix: &str) -> anyhow::Result<()> {
    match self.0.wait_line(prefix, STEP_TIMEOUT) {
      Ok(_) => Ok(()),
      Err(err) => bail!("{}", err.lines().next().unwrap_or_default()),
    }
  }

  /// The testee's process, for signals and `/proc` figures.
  pub(crate) fn child(&self) -> &Child {
    &self.0
  }

  /// Writes a line to the testee's stdin (`--wait-go`).
  pub(crate) fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
    self.0.send_line(line).with_context(|| format!("cannot write to {}", self.0.name()))
  }

  /// A provider runs until its stdin closes.
  pub(crate) fn close_stdin(&mut self) {
    self.0.close_stdin();
  }

  /// SIGKILL, as a crash would; waits until the process is reaped.
  pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
    self.0.kill().with_context(|| format!("cannot kill {}", self.0.name()))
  }

  /// Waits for the exit and checks its code and that every expected line was printed.
  pub(crate) fn expect(&mut self, code: i32, lines: &[&str]) -> anyhow::Result<()> {
    let status =
      self.0.wait_exit(STEP_TIMEOUT).map_err(|e| anyhow::anyhow!("{}", e.lines().next().unwrap_or_default()))?;
    if status.code() != Some(code) {
      bail!("{} exited with {status}, expected exit code {code}", self.0.name());
    }
    let printed = self.0.lines();
    for line in lines {
      if !printed.iter().any(|l| l == line) {
        bail!("{} did not print `{line}`", self.0.name());
      }
    }
    Ok(())
  }
}

/// Runs one case: its steps against a broker in a fresh namespace, then checks that the broker stopped
/// cleanly and left nothing of the namespace in `/dev/shm`.
pub(crate) fn run(sh: &Shell, broker_bin: &Path, case: &PairCase, run: &Run) -> anyhow::Result<()> {
  let root = sh.current_dir();
  let producer = testee(&root, case.producer)?;
  let consumer = testee(&root, case.consumer)?;
  let pattern = if case.pattern == Pattern::PubSub { "ps" } else { "call" };
  let ns = run.namespace(&format!("pair-{pattern}-{}-{}", case.producer, case.consumer));
  let live = broker::start(broker_bin, &ns)?;
  let mut testees = Vec::new();
  let outcome = match case.pattern {
    Pattern::PubSub => pubsub(case, &producer, &consumer, &ns, &mut testees),
    Pattern::Call => call(case, &producer, &consumer, &ns, &mut testees),
  };
  let transcripts = testees.iter().map(Testee::transcript).collect::<Vec<_>>().join("\n");
  drop(testees);
  let stopped = broker::stop(live);
  let left = shm::snapshot(&shm::namespace_prefix(&ns))?;
  match (outcome, stopped) {
    (Err(err), _) => Err(err.context(format!("{}\n{transcripts}", case.name()))),
    (Ok(()), Err(err)) => Err(err.context("the broker did not stop cleanly")),
    (Ok(()), Ok(())) if !left.is_empty() => bail!("the case left {left:?} in /dev/shm"),
    (Ok(()), Ok(())) => Ok(()),
  }
}

fn pubsub(
  case: &PairCase,
  producer: &Program,
  consumer: &Program,
  ns: &str,
  testees: &mut Vec<Testee>,
) -> anyhow::Result<()> {
  let (p, c) = (case.producer, case.consumer);
  let start = |role: &str, lang: &str, bin: &Program, args: &[&str]| {
    Testee::start(format!("{role} ({lang} testee {})", args.join(" ")), bin, ns, args)
  };

  // 1. Thousands of messages of 0 to 2000 bytes through a block channel: nothing lost, nothing damaged.
  let subscriber_args = ["subscriber", "--channel", "bulk", "--count", "3000"];
  testees.push(start("subscriber", c, consumer, &subscriber_args)?);
  let publisher_args = ["publisher", "--channel", "bulk", "--count", "3000", "--wait-subscribers", "1"];
  testees.push(start("publisher", p, producer, &publisher_args)?);
  let n = testees.len();
  testees[n - 1].expect(0, &["ready", "published 3000"])?;
  testees[n - 2].expect(0, &["subscribed", "received 3000"])?;

  // 2. A keyed channel through a small ring, closed by its publisher: the subscriber drains it, then
  // sees Closed.
  let subscriber_args = ["subscriber", "--channel", "keyed", "--key", "k3y", "--expect-closed"];
  testees.push(start("subscriber", c, consumer, &subscriber_args)?);
  let publisher_args = [
    "publisher",
    "--channel",
    "keyed",
    "--key",
    "k3y",
    "--capacity",
    "8192",
    "--count",
    "500",
    "--wait-subscribers",
    "1",
  ];
  testees.push(start("publisher", p, producer, &publisher_args)?);
  let n = testees.len();
  testees[n - 1].expect(0, &["published 500"])?;
  testees[n - 2].expect(0, &["closed", "received 500"])?;

  // 3. A subscriber presenting another schema is refused with SchemaMismatch (exit 10 + 6).
  let publisher_args = ["publisher", "--channel", "strict", "--count", "1", "--hold-ms", "1500"];
  testees.push(start("publisher", p, producer, &publisher_args)?);
  testees[testees.len() - 1].wait_line("ready")?;
  let subscriber_args = ["subscriber", "--channel", "strict", "--schema", "other"];
  testees.push(start("subscriber", c, consumer, &subscriber_args)?);
  let n = testees.len();
  testees[n - 1].expect(16, &[])?;
  if !testees[n - 1].has_line("error SchemaMismatch: ") {
    bail!("the subscriber with another schema did not report SchemaMismatch");
  }
  testees[n - 2].expect(0, &["published 1"])?;

  // 4. A publisher killed mid-run: the broker closes its channel, the subscriber drains it and sees
  // Closed.
  let subscriber_args = ["subscriber", "--channel", "doomed", "--expect-closed"];
  testees.push(start("subscriber", c, consumer, &subscriber_args)?);
  let publisher_args =
    ["publisher", "--channel", "doomed", "--count", "10", "--hold-ms", "60000", "--wait-subscribers", "1"];
  testees.push(start("publisher", p, producer, &publisher_args)?);
  let n = testees.len();
  testees[n - 1].wait_line("published 10")?;
  testees[n - 1].kill()?;
  testees[n - 2].expect(0, &["closed", "received 10"])?;
  Ok(())
}

fn call(
  case: &PairCase,
  producer: &Program,
  consumer: &Program,
  ns: &str,
  testees: &mut Vec<Testee>,
) -> anyhow::Result<()> {
  let (p, c) = (case.producer, case.consumer);
  let start = |role: &str, lang: &str, bin: &Program, args: &[&str]| {
    Testee::start(format!("{role} ({lang} testee {})", args.join(" ")), bin, ns, args)
  };
  testees.push(start("provider", c, consumer, &["provider", "--fail-on", "7"])?);
  testees[0].wait_line("ready")?;

  // 1. Many calls, eight in flight, none of which the provider refuses.
  let caller_args = ["caller", "--count", "2000", "--in-flight", "8", "--base", "1000"];
  testees.push(start("caller", p, producer, &caller_args)?);
  testees[1].expect(0, &["calling", "ok 2000"])?;

  // 2. Blocking calls from three threads; the one the provider refuses comes back as HandlerError.
  let caller_args = ["caller", "--count", "30", "--threads", "3", "--keep-going"];
  testees.push(start("caller", p, producer, &caller_args)?);
  testees[2].expect(0, &["ok 29 failed 1"])?;
  if !testees[2].has_line("error HandlerError: ") {
    bail!("the refused call did not come back as HandlerError");
  }

  // 3. The provider stops when its stdin closes, and exits cleanly.
  testees[0].close_stdin();
  testees[0].expect(0, &[])?;

  // 4. A provider killed while a call is pending: the caller gets PeerGone at once, not a timeout.
  testees.push(start("provider", c, consumer, &["provider", "--function", "slow", "--sleep-ms", "30000"])?);
  testees[3].wait_line("ready")?;
  let caller_args = ["caller", "--function", "slow", "--count", "1", "--keep-going", "--timeout-ms", "30000"];
  testees.push(start("caller", p, producer, &caller_args)?);
  testees[4].wait_line("calling")?;
  // Let the request reach the provider's handler before the provider dies.
  std::thread::sleep(Duration::from_millis(300));
  testees[3].kill()?;
  let killed = Instant::now();
  testees[4].expect(0, &["ok 0 failed 1"])?;
  if !testees[4].has_line("error PeerGone: ") {
    bail!("the call to a killed provider did not fail with PeerGone");
  }
  if killed.elapsed() > Duration::from_secs(10) {
    bail!("PeerGone took {:?} after the provider died", killed.elapsed());
  }
  Ok(())
}
