//! `ringctl bench`: builds the benchmark programs in release mode, starts a release broker in a
//! private namespace, runs Ring's cases through the Rust and the C connector and the baselines (Unix
//! sockets, iceoryx2, the cache-line and memcpy floor) in the same run, and prints each Ring figure
//! with its ratio to the baselines, the C connector against the Rust one, then every BRIEF target with
//! its measured ratio. `--json FILE` keeps the raw rows.
//!
//! Fan-out is measured two ways. Wall-clock throughput with 2 and 4 subscribers means something only
//! with a core per process, so it runs (and prints) only there. The cost figure holds on any machine:
//! the instructions the publisher spends per message with 4 subscribers against 1, counted by
//! `valgrind --tool=callgrind` in its publish loop alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{broker, flags, shm};

/// One result row, as `ring-bench`, the C benchmark and `bench-iceoryx2` print it: one JSON object
/// per line. Fields that do not apply are null or absent.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
struct Row {
  case: String,
  system: String,
  #[serde(rename = "payload_bytes")]
  payload: u64,
  wait: String,
  subscribers: Option<u64>,
  #[serde(rename = "p50_ns")]
  p50: Option<f64>,
  #[serde(rename = "p99_ns")]
  p99: Option<f64>,
  #[serde(rename = "p999_ns")]
  p999: Option<f64>,
  #[serde(rename = "msgs_per_s")]
  msgs: Option<f64>,
  #[serde(rename = "bytes_per_s")]
  bytes: Option<f64>,
  /// The fan-out cost figure (ringctl's own rows): publisher instructions per message.
  #[serde(skip_serializing_if = "Option::is_none")]
  instructions_per_msg: Option<f64>,
  /// The line as printed, kept for `--json`.
  #[serde(skip)]
  line: String,
}

/// A result row, or `None` for a line that is not a JSON object (a program's note). A line that looks
/// like a row and does not parse is an error: a figure would go missing without a word.
fn parse_row(line: &str) -> anyhow::Result<Option<Row>> {
  let line = line.trim();
  if !line.starts_with('{') {
    return Ok(None);
  }
  let mut row: Row =
    serde_json::from_str(line).with_context(|| format!("a benchmark printed a bad result row: {line}"))?;
  row.line = line.to_string();
  Ok(Some(row))
}

struct Results(Vec<Row>);

impl Results {
  fn find(&self, case: &str, system: &str, payload: u64, wait: &str, subscribers: Option<u64>) -> Option<&Row> {
    self.0.iter().find(|r| {
      r.case == case
        && r.system == system
        && r.payload == payload
        && (wait == "*" || r.wait == wait)
        && (subscribers.is_none() || r.subscribers == subscribers)
    })
  }

  fn p50(&self, case: &str, system: &str, payload: u64, wait: &str) -> Option<f64> {
    self.find(case, system, payload, wait, None)?.p50
  }

  fn rate(&self, case: &str, system: &str, payload: u64, subscribers: u64) -> Option<f64> {
    self.find(case, system, payload, "*", Some(subscribers))?.msgs
  }
}

impl flags::Bench {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let quick = self.quick;
    cmd!(sh, "cargo build --release -p impulsed -p ring-bench")
      .run()
      .context("building the broker and ring-bench in release mode failed")?;
    let target = broker::target_dir(&sh.current_dir());
    let release = target.join("release");
    let with_iceoryx2 = !self.no_iceoryx2;
    if with_iceoryx2 {
      let manifest = "tools/bench-iceoryx2/Cargo.toml";
      cmd!(sh, "cargo build --release --manifest-path {manifest} --target-dir {target}")
        .run()
        .context("building the iceoryx2 baseline failed (it needs crates.io); rerun with --no-iceoryx2 to skip it")?;
    }
    let c_bench = build_c_bench(sh, &target)?;
    let go_bench = build_go_bench(sh, &target)?;
    let grpc_python = grpc_python(sh, &target);
    let ring_python = ring_python(sh);
    let iceoryx2_python = if with_iceoryx2 { iceoryx2_python(sh, &target) } else { None };
    // The TypeScript cases load the release C library that the C benchmark build configures.
    let ts_lib = if c_bench.is_some() { ts_bench(sh, &target)? } else { None };
    let ns = format!("bench-{}", std::process::id());
    let shm_before = snapshot_all()?;
    let broker_bin = broker::existing(release.join("impulsed"), "the release broker")?;
    let live = broker::start_with(&broker_bin, &ns, &["--log-level", "warn"])?;
    let quick_flag: &[&str] = if quick { &["--quick"] } else { &[] };
    let mut lines = String::new();
    let measured = (|| -> anyhow::Result<()> {
      let _env = sh.push_env("IMPULSE_RING_NS", &ns);
      let ring_bench = release.join("ring-bench");
      lines += &cmd!(sh, "{ring_bench} suite {quick_flag...}").read().context("ring-bench failed")?;
      lines.push('\n');
      if let Some(c_bench) = &c_bench {
        lines += &cmd!(sh, "{c_bench} suite {quick_flag...}")
          .read()
          .context("ring_c_bench (the C connector's cases) failed")?;
        lines.push('\n');
      }
      if let Some(go_bench) = &go_bench {
        lines += &cmd!(sh, "{go_bench} suite {quick_flag...}")
          .read()
          .context("ring-go-bench (the Go connector's cases and its Unix-socket baseline) failed")?;
        lines.push('\n');
      }
      if let Some(lib) = &ts_lib {
        let _lib = sh.push_env("IMPULSE_RING_LIB", lib);
        lines += &cmd!(sh, "bun ts/bench/suite.ts suite {quick_flag...}")
          .read()
          .context("the TypeScript connector's cases (ts/bench/suite.ts) failed")?;
        lines.push('\n');
      }
      if with_iceoryx2 {
        let ice = release.join("bench-iceoryx2");
        lines += &cmd!(sh, "{ice} suite {quick_flag...}").read().context("bench-iceoryx2 failed")?;
        lines.push('\n');
      }
      if let Some(python) = &grpc_python {
        let iters = if quick { "300" } else { "5000" };
        lines += &cmd!(sh, "{python} tools/bench/grpc_baseline.py --iters {iters}")
          .read()
          .context("the gRPC baseline (tools/bench/grpc_baseline.py) failed")?;
        lines.push('\n');
      }
      if let Some(python) = &ring_python {
        lines += &cmd!(sh, "{python} python/bench/bench.py suite {quick_flag...}")
          .read()
          .context("the Python connector's cases (python/bench/bench.py) failed")?;
        lines.push('\n');
      }
      if let (Some(_), Some(python)) = (&ring_python, &iceoryx2_python) {
        let iters = if quick { "300" } else { "5000" };
        lines += &cmd!(sh, "{python} tools/bench/iceoryx2_python_baseline.py --iters {iters}")
          .read()
          .context("the iceoryx2 Python baseline (tools/bench/iceoryx2_python_baseline.py) failed")?;
        lines.push('\n');
      }
      Ok(())
    })();
    let cost = measured.as_ref().ok().map(|()| {
      let _env = sh.push_env("IMPULSE_RING_NS", &ns);
      fanout_cost(sh, &release.join("ring-bench"), &target, quick)
    });
    let idle = idle_cpu_percent(live.pid(), Duration::from_secs(2));
    broker::stop(live)?;
    remove_new_iceoryx2_segments(&shm_before);
    measured?;
    // Only our namespace: other runs on this machine may own other `impulse-ring.*` segments.
    shm::ensure_no_leaks(&shm_before, &shm::namespace_prefix(&ns), "the benchmark")?;

    let mut rows: Vec<Row> = lines.lines().filter_map(|l| parse_row(l).transpose()).collect::<anyhow::Result<_>>()?;
    rows.extend(cost.transpose()?.unwrap_or_default());
    if rows.is_empty() {
      bail!("the benchmark programs printed no results");
    }
    if let Some(path) = &self.json {
      let text: String = rows.iter().map(|r| format!("{}\n", r.line)).collect();
      std::fs::write(path, text).with_context(|| format!("cannot write {path}"))?;
    }
    let results = Results(rows);
    print_header(quick);
    print_latency(&results);
    print_throughput(&results);
    print_connectors(&results);
    print_targets(&results, idle);
    print_ts_targets(&results);
    if let Some(path) = &self.json {
      println!("\nraw results: {path}");
    }
    Ok(())
  }
}

/// A Python with grpcio for the gRPC baseline, in a virtual environment under target/ (made on first
/// use from PyPI). `None`, with a note, when Python or PyPI is not available: the baseline is skipped.
fn grpc_python(sh: &Shell, target: &Path) -> Option<PathBuf> {
  let venv = target.join("bench-venv");
  let python = venv.join("bin/python");
  let ready = || cmd!(sh, "{python} -c 'import grpc'").quiet().ignore_stderr().run().is_ok();
  if !ready() {
    let made = cmd!(sh, "python3 -m venv {venv}").run().is_ok()
      && cmd!(sh, "{python} -m pip install --quiet grpcio").run().is_ok();
    if !made || !ready() {
      println!("note: no Python 3 with grpcio (pip install from PyPI failed), so the gRPC baseline is skipped");
      return None;
    }
  }
  Some(python)
}

/// The interpreter of python/.venv with the Python connector installed (`uv sync` builds its extension
/// in release mode). `None`, with a note, when uv is missing: the `ring-python` rows are then skipped.
fn ring_python(sh: &Shell) -> Option<PathBuf> {
  if !sh.path_exists("python") {
    return None;
  }
  if cmd!(sh, "uv sync --project python").run().is_err() {
    println!(
      "note: `uv sync --project python` failed (install uv with `pip install uv`), so ring-python is not measured"
    );
    return None;
  }
  Some(sh.current_dir().join("python/.venv/bin/python"))
}

/// A Python with iceoryx2's own package (the same 0.10 as the Rust baseline) for the Python connector's
/// baseline, in the gRPC baseline's virtual environment. `None`, with a note, when it cannot be had.
fn iceoryx2_python(sh: &Shell, target: &Path) -> Option<PathBuf> {
  let venv = target.join("bench-venv");
  let python = venv.join("bin/python");
  let ready = || cmd!(sh, "{python} -c 'import iceoryx2'").quiet().ignore_stderr().run().is_ok();
  if !ready() {
    let made = (python.exists() || cmd!(sh, "python3 -m venv {venv}").run().is_ok())
      && cmd!(sh, "{python} -m pip install --quiet iceoryx2==0.10.0").run().is_ok();
    if !made || !ready() {
      println!("note: no Python with iceoryx2 (pip install from PyPI failed), so its Python baseline is skipped");
      return None;
    }
  }
  Some(python)
}

/// Builds the C connector's benchmark (`c/bench/bench.c`) in Release, in a build directory of its own
/// so that the Debug one the tests use is left alone. `None` when CMake is missing: the C cases are
/// then skipped, not failed, since the Rust figures stand on their own.
fn build_c_bench(sh: &Shell, target: &Path) -> anyhow::Result<Option<PathBuf>> {
  if cmd!(sh, "cmake --version").quiet().ignore_stdout().run().is_err() {
    println!(
      "note: `cmake` was not found, so the C connector (ring-c) is not measured; install CMake 3.16+ \
       (Debian: `apt-get install cmake`) to include it"
    );
    return Ok(None);
  }
  let build_dir = target.join("c-release");
  cmd!(sh, "cmake -S c -B {build_dir} -DCMAKE_BUILD_TYPE=Release")
    .run()
    .context("configuring the C connector's benchmark (cmake -S c) failed")?;
  cmd!(sh, "cmake --build {build_dir} --parallel 2 --target ring_c_bench")
    .run()
    .context("building the C connector's benchmark (ring_c_bench) failed")?;
  broker::existing(build_dir.join("ring_c_bench"), "the C benchmark").map(Some)
}

/// The publisher's instructions per message with 1 and with 4 subscribers (64 B, adaptive wait),
/// counted by callgrind in `publish_messages` alone. The ring holds every message, so the publisher
/// never waits for room: what is counted is publishing and ringing the subscribers. No rows, with a
/// note, when valgrind is missing.
fn fanout_cost(sh: &Shell, ring_bench: &Path, target: &Path, quick: bool) -> anyhow::Result<Vec<Row>> {
  if cmd!(sh, "valgrind --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
    println!(
      "note: `valgrind` was not found, so the fan-out cost (publisher instructions per message) is not \
       measured; install it (Debian: `apt-get install valgrind`) to include it"
    );
    return Ok(Vec::new());
  }
  // 10,000 records of 64 B fit the 1 MiB ring ring-bench gives the case.
  let count = if quick { 2_000 } else { 10_000 };
  let dir = target.join("bench-callgrind");
  std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
  let mut rows = Vec::new();
  for subscribers in [1u64, 4] {
    let out = dir.join(format!("fanout-{subscribers}.out"));
    let out_flag = format!("--callgrind-out-file={}", out.display());
    let (n, k) = (count.to_string(), subscribers.to_string());
    // Its own throughput row is discarded: under valgrind it only measures valgrind.
    cmd!(
      sh,
      "valgrind --tool=callgrind --collect-atstart=no --toggle-collect=*publish_messages* {out_flag}
        {ring_bench} throughput --size 64 --count {n} --subscribers {k} --wait adaptive"
    )
    .quiet()
    .ignore_stdout()
    .ignore_stderr()
    .run()
    .with_context(|| format!("counting the publisher's instructions with {subscribers} subscriber(s) failed"))?;
    let text = std::fs::read_to_string(&out).with_context(|| format!("callgrind wrote no {}", out.display()))?;
    let total = text
      .lines()
      .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
      .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
      .with_context(|| format!("no instruction total in {}", out.display()))?;
    let mut row = Row {
      case: "fanout_cost".into(),
      system: "ring-rust".into(),
      payload: 64,
      wait: "adaptive".into(),
      subscribers: Some(subscribers),
      instructions_per_msg: Some(total / count as f64),
      ..Row::default()
    };
    row.line = serde_json::to_string(&row)?;
    rows.push(row);
  }
  Ok(rows)
}

/// Builds the Go connector's benchmark (`go/cmd/bench`). `None` when Go is missing: the Go cases are
/// then skipped, not failed.
fn build_go_bench(sh: &Shell, target: &Path) -> anyhow::Result<Option<PathBuf>> {
  if cmd!(sh, "go version").quiet().ignore_stdout().run().is_err() {
    println!(
      "note: `go` was not found, so the Go connector (ring-go) is not measured; install Go 1.26+ \
       (https://go.dev/doc/install) to include it"
    );
    return Ok(None);
  }
  let out = target.join("go/ring-go-bench");
  cmd!(sh, "go -C go build -o {out} ./cmd/bench").run().context("building the Go benchmark (go/cmd/bench) failed")?;
  broker::existing(out, "the Go benchmark").map(Some)
}

/// Readies the TypeScript connector's cases: Bun, the package's dependencies, and the release C
/// library it loads (returned). `None`, with a note, when Bun is missing: the ring-ts rows are skipped.
fn ts_bench(sh: &Shell, target: &Path) -> anyhow::Result<Option<PathBuf>> {
  if cmd!(sh, "bun --version").quiet().ignore_stdout().run().is_err() {
    println!("note: `bun` was not found, so the TypeScript connector (ring-ts) is not measured; `npm install -g bun`");
    return Ok(None);
  }
  cmd!(sh, "bun install --cwd ts --frozen-lockfile").run().context("`bun install --cwd ts` failed")?;
  let build_dir = target.join("c-release");
  cmd!(sh, "cmake --build {build_dir} --parallel 2 --target impulse_ring")
    .run()
    .context("building the release C library for ts/ (libimpulse_ring.so) failed")?;
  broker::existing(build_dir.join("libimpulse_ring.so"), "the release C library").map(Some)
}

/// The TypeScript connector's targets (issue 13), beside ring-c and the Bun Unix-socket baseline.
fn print_ts_targets(r: &Results) {
  if r.0.iter().all(|x| !x.system.starts_with("ring-ts")) {
    return;
  }
  println!("\nTARGETS (TypeScript connector)");
  let sync = r.p50("pubsub_latency", "ring-ts", 64, "spin");
  let c = r.p50("pubsub_latency", "ring-c", 64, "spin");
  target(
    "sync one way 64 B (spin): <= 3x ring-c",
    sync.zip(c).map(|(t, c)| (format!("{:.2}x ({})", t / c, ns(Some(t))), t <= 3.0 * c)),
  );
  let awaited = r.p50("pubsub_latency", "ring-ts", 64, "await");
  let uds = r.p50("pubsub_latency", "bun-uds", 64, "await");
  target(
    "await recv() one way 64 B: <= 20 µs p50 and <= 0.5x Bun socket",
    awaited
      .zip(uds)
      .map(|(a, u)| (format!("{}, {:.2}x Bun socket", ns(Some(a)), a / u), a <= 20_000.0 && a <= 0.5 * u)),
  );
  let raw = r.rate("pubsub_throughput", "ring-ts", 64, 1);
  target("throughput 64 B publishRaw: >= 2 M msgs/s", raw.map(|t| (rate(Some(t)), t >= 2e6)));
  let typed = r.rate("pubsub_throughput", "ring-ts-typed", 64, 1);
  target("throughput 64 B typed (avsc): >= 500 k records/s", typed.map(|t| (rate(Some(t)), t >= 5e5)));
}

fn snapshot_all() -> anyhow::Result<BTreeSet<String>> {
  shm::snapshot("")
}

/// iceoryx2 keeps a node-management segment in /dev/shm (and files in /tmp/iceoryx2); remove what
/// this run added so the machine is left as it was.
fn remove_new_iceoryx2_segments(before: &BTreeSet<String>) {
  if let Ok(after) = snapshot_all() {
    for name in after.difference(before).filter(|n| n.starts_with("iox2_")) {
      let _ = std::fs::remove_file(Path::new("/dev/shm").join(name));
    }
  }
}

/// CPU use of process `pid` over `window`, in percent of one core.
fn idle_cpu_percent(pid: u32, window: Duration) -> Option<f64> {
  let ticks = || -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
  };
  let before = ticks()?;
  std::thread::sleep(window);
  let after = ticks()?;
  // Linux reports utime and stime in clock ticks of 1/100 s on every mainstream configuration.
  Some((after - before) as f64 / window.as_secs_f64())
}

fn print_header(quick: bool) {
  let cpu = std::fs::read_to_string("/proc/cpuinfo")
    .ok()
    .and_then(|t| {
      t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string())
    })
    .unwrap_or_else(|| "unknown CPU".into());
  let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
  let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
  println!();
  println!("Ring benchmark: {cpu}, {cores} cores, kernel {}", kernel.trim());
  if cores < 5 {
    println!(
      "fan-out wall-clock figures need a core per process (5 for 4 subscribers) and are not measured on \
       {cores} cores; the fan-out target is judged by the publisher's instructions per message instead"
    );
  }
  println!(
    "{}; leader on CPU 0, followers on CPU 1 and up; one way = round trip / 2",
    if quick { "quick run (indicative only)" } else { "full run" }
  );
}

fn ns(v: Option<f64>) -> String {
  match v {
    None => "-".into(),
    Some(v) if v >= 1_000_000.0 => format!("{:.2} ms", v / 1e6),
    Some(v) if v >= 10_000.0 => format!("{:.1} µs", v / 1e3),
    Some(v) if v >= 1_000.0 => format!("{:.2} µs", v / 1e3),
    Some(v) => format!("{v:.0} ns"),
  }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
  match (a, b) {
    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
    _ => "-".into(),
  }
}

fn print_latency(r: &Results) {
  println!("\nLATENCY (p50 / p99 / p99.9; ratios are of p50, lower is better)");
  println!(
    "  {:<16} {:<12} {:>7} {:>10} {:>10} {:>10} {:>11} {:>8} {:>9}",
    "case", "system", "bytes", "p50", "p99", "p99.9", "/iceoryx2", "/uds", "/floor"
  );
  let floor = r.p50("floor", "cacheline", 8, "-");
  for row in r.0.iter().filter(|x| x.case.ends_with("latency") || x.case == "floor" && x.p50.is_some()) {
    let ice_wait = if row.wait == "adaptive-gap50us" { "adaptive-gap50us" } else { "spin" };
    let (ice, uds, fl) = if row.system.starts_with("ring") {
      (r.p50(&row.case, "iceoryx2", row.payload, ice_wait), r.p50(&row.case, "uds", row.payload, "*"), floor)
    } else {
      (None, None, None)
    };
    let label = format!("{} {}", row.case.trim_end_matches("_latency"), row.wait);
    println!(
      "  {:<16} {:<12} {:>7} {:>10} {:>10} {:>10} {:>11} {:>8} {:>9}",
      label,
      row.system,
      row.payload,
      ns(row.p50),
      ns(row.p99),
      ns(row.p999),
      ratio(row.p50, ice),
      ratio(row.p50, uds),
      ratio(row.p50, fl)
    );
  }
}

fn rate(v: Option<f64>) -> String {
  match v {
    None => "-".into(),
    Some(v) if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
    Some(v) => format!("{:.0} k/s", v / 1e3),
  }
}

fn gbps(v: Option<f64>) -> String {
  v.map_or("-".into(), |v| format!("{:.2} GB/s", v / 1e9))
}

fn print_throughput(r: &Results) {
  println!("\nTHROUGHPUT (one way, until every subscriber has every message; higher is better)");
  println!(
    "  {:<18} {:<16} {:>8} {:>5} {:>11} {:>11} {:>10} {:>8}",
    "case", "system", "bytes", "subs", "messages", "bandwidth", "/iceoryx2", "/uds"
  );
  for row in r.0.iter().filter(|x| x.msgs.is_some()) {
    let subs = row.subscribers.unwrap_or(1);
    let (ice, uds) = if row.system.starts_with("ring") && subs == 1 {
      (r.rate(&row.case, "iceoryx2", row.payload, 1), r.rate(&row.case, "uds", row.payload, 1))
    } else {
      (None, None)
    };
    println!(
      "  {:<18} {:<16} {:>8} {:>5} {:>11} {:>11} {:>10} {:>8}",
      row.case,
      row.system,
      row.payload,
      row.subscribers.map_or("-".into(), |s| s.to_string()),
      rate(row.msgs),
      gbps(row.bytes),
      ratio(row.msgs, ice),
      ratio(row.msgs, uds)
    );
  }
}

/// Each C and Go connector figure next to the Rust connector's for the same case: that connector's
/// overhead (or lack of it) over the reference implementation.
fn print_connectors(r: &Results) {
  print_connector(r, "ring-c", "C");
  print_connector(r, "ring-go", "Go");
}

fn print_connector(r: &Results, system: &str, language: &str) {
  let rows: Vec<&Row> = r.0.iter().filter(|x| x.system.starts_with(system)).collect();
  if rows.is_empty() {
    return;
  }
  println!(
    "\n{} vs RUST CONNECTOR (p50 latency, messages/s; {language} / Rust above 1: {language} is slower in latency, \
     faster in throughput)",
    language.to_uppercase()
  );
  println!("  {:<18} {:>7} {:>14} {:>16} {:>8}", "case", "bytes", system, "ring-rust", format!("{language}/Rust"));
  for c in rows {
    let rust_system = c.system.replacen(system, "ring-rust", 1);
    let rust = r.find(&c.case, &rust_system, c.payload, &c.wait, c.subscribers);
    let typed = if c.system.ends_with("-typed") { " typed" } else { "" };
    let (label, c_fig, rust_fig, c_val, rust_val) = if c.msgs.is_some() {
      let rust_msgs = rust.and_then(|x| x.msgs);
      let label = format!("{}{typed}", c.case.trim_start_matches("pubsub_"));
      (label, rate(c.msgs), rate(rust_msgs), c.msgs, rust_msgs)
    } else {
      let rust_p50 = rust.and_then(|x| x.p50);
      let label = format!("{} {}", c.case.trim_end_matches("_latency"), c.wait);
      (label, ns(c.p50), ns(rust_p50), c.p50, rust_p50)
    };
    println!("  {:<18} {:>7} {:>14} {:>16} {:>8}", label, c.payload, c_fig, rust_fig, ratio(c_val, rust_val));
  }
}

/// One BRIEF target: its text, the measured ratio or figure, and whether it is met.
fn target(text: &str, measured: Option<(String, bool)>) {
  match measured {
    Some((figure, met)) => println!("  {:<62} {:<34} {}", text, figure, if met { "met" } else { "NOT met" }),
    None => println!("  {:<62} {:<34} not measured", text, "-"),
  }
}

fn print_targets(r: &Results, idle: Option<f64>) {
  println!("\nTARGETS (BRIEF)");
  let spin = r.p50("pubsub_latency", "ring-rust", 64, "spin");
  let ice = r.p50("pubsub_latency", "iceoryx2", 64, "spin");
  let floor = r.p50("floor", "cacheline", 8, "-");
  target(
    "channel one way 64 B spin: <= 0.6x iceoryx2, <= 4x cache line",
    spin
      .zip(ice)
      .zip(floor)
      .map(|((s, i), f)| (format!("{:.2}x iceoryx2, {:.1}x floor", s / i, s / f), s / i <= 0.6 && s / f <= 4.0)),
  );
  let call = r.p50("call_latency", "ring-rust", 64, "spin");
  let ice_call = r.p50("call_latency", "iceoryx2", 64, "spin");
  target(
    "call round trip 64 B spin: <= 0.7x iceoryx2 request/response",
    call.zip(ice_call).map(|(c, i)| (format!("{:.2}x", c / i), c / i <= 0.7)),
  );
  let adaptive = r.p50("pubsub_latency", "ring-rust", 64, "adaptive");
  target(
    "channel one way adaptive, continuous: <= 1.2x busy-spin",
    adaptive.zip(spin).map(|(a, s)| (format!("{:.2}x", a / s), a / s <= 1.2)),
  );
  let gap = r.p50("pubsub_latency", "ring-rust", 64, "adaptive-gap50us");
  let ice_gap = r.p50("pubsub_latency", "iceoryx2", 64, "adaptive-gap50us");
  let uds = r.p50("pubsub_latency", "uds", 64, "*");
  target(
    "channel adaptive, 50 µs gaps: <= iceoryx2 events and <= UDS",
    gap
      .zip(ice_gap)
      .zip(uds)
      .map(|((g, i), u)| (format!("{:.2}x iceoryx2, {:.2}x UDS", g / i, g / u), g <= i && g <= u)),
  );
  let raw = r.rate("pubsub_throughput", "ring-rust", 64, 1);
  let ice_raw = r.rate("pubsub_throughput", "iceoryx2", 64, 1);
  let uds_raw = r.rate("pubsub_throughput", "uds", 64, 1);
  target(
    "throughput 64 B publish_raw: >= 3x iceoryx2, >= 10x UDS",
    raw
      .zip(ice_raw)
      .zip(uds_raw)
      .map(|((a, i), u)| (format!("{:.2}x iceoryx2, {:.1}x UDS", a / i, a / u), a >= 3.0 * i && a >= 10.0 * u)),
  );
  let typed = r.rate("pubsub_throughput", "ring-rust-typed", 64, 1);
  target("throughput 64 B typed publish: >= 2 M msgs/s", typed.map(|t| (rate(Some(t)), t >= 2e6)));
  let big = r.rate("pubsub_throughput", "ring-rust", 4096, 1);
  let ice_big = r.rate("pubsub_throughput", "iceoryx2", 4096, 1);
  target("throughput 4 KiB: >= iceoryx2", big.zip(ice_big).map(|(a, i)| (format!("{:.2}x", a / i), a >= i)));
  let huge = r.find("pubsub_throughput", "ring-rust", 1 << 20, "*", Some(1)).and_then(|x| x.bytes);
  let memcpy = r.find("floor", "memcpy", 1 << 20, "-", None).and_then(|x| x.bytes);
  target(
    "throughput 1 MiB: >= 50 % of one-core memcpy",
    huge.zip(memcpy).map(|(h, m)| (format!("{:.0} % ({})", 100.0 * h / m, gbps(Some(h))), h >= 0.5 * m)),
  );
  let one = r.rate("pubsub_throughput", "ring-rust", 64, 1);
  let four = r.rate("fanout_throughput", "ring-rust", 64, 4);
  if four.is_some() {
    target(
      "fan-out to 4 subscribers: >= 0.66x of one subscriber",
      four.zip(one).map(|(f, o)| (format!("{:.2}x", f / o), f >= 0.66 * o)),
    );
  }
  // The same target as a cost: 0.66x the throughput is at most 1 / 0.66 = 1.52x the instructions.
  let cost = |subs| r.find("fanout_cost", "ring-rust", 64, "adaptive", Some(subs)).and_then(|x| x.instructions_per_msg);
  target(
    "fan-out to 4 subs, cost: publisher instr/msg <= 1.52x of 1 sub",
    cost(4).zip(cost(1)).map(|(f, o)| (format!("{:.2}x ({f:.0} vs {o:.0} instr/msg)", f / o), f <= o / 0.66)),
  );
  let grpc = r.p50("call_latency", "grpc", 64, "*");
  target(
    "call round trip vs gRPC over a unix socket: >= 100x faster",
    grpc.zip(call).map(|(g, c)| (format!("{:.0}x ({} gRPC p50)", g / c, ns(Some(g))), g >= 100.0 * c)),
  );
  target("idle broker: ~0 % CPU", idle.map(|p| (format!("{p:.1} % of a core over 2 s"), p < 1.0)));
  print_python_targets(r);
  print_go_targets(r);
}

/// The Python connector's targets, against the baselines a Python user would pick.
fn print_python_targets(r: &Results) {
  println!("\nTARGETS (Python connector)");
  let spin = r.p50("pubsub_latency", "ring-python", 64, "spin");
  let ice = r.p50("pubsub_latency", "iceoryx2-python", 64, "spin");
  target(
    "python one way 64 B spin: <= 0.5x iceoryx2's Python package",
    spin.zip(ice).map(|(s, i)| (format!("{:.2}x", s / i), s / i <= 0.5)),
  );
  let uds = r.p50("pubsub_latency", "uds-python", 64, "*");
  target(
    "python one way 64 B spin: <= 0.1x a Python Unix socket",
    spin.zip(uds).map(|(s, u)| (format!("{:.2}x ({} socket p50)", s / u, ns(Some(u))), s / u <= 0.1)),
  );
  let typed = r.rate("pubsub_throughput", "ring-python-typed", 64, 1);
  target("python typed throughput 64 B: >= 300 k records/s", typed.map(|t| (rate(Some(t)), t >= 3e5)));
  let call = r.p50("call_latency", "ring-python", 64, "spin");
  let grpc = r.p50("call_latency", "grpc", 64, "*");
  target(
    "python call round trip vs gRPC: >= 50x faster",
    grpc.zip(call).map(|(g, c)| (format!("{:.0}x ({} ring-python p50)", g / c, ns(Some(c))), g >= 50.0 * c)),
  );
}

/// The Go connector's targets, against the Rust connector and a Go Unix socket.
fn print_go_targets(r: &Results) {
  println!("\nTARGETS (Go connector)");
  let spin = r.p50("pubsub_latency", "ring-rust", 64, "spin");
  let raw = r.rate("pubsub_throughput", "ring-rust", 64, 1);
  let call = r.p50("call_latency", "ring-rust", 64, "spin");
  let go_spin = r.p50("pubsub_latency", "ring-go", 64, "spin");
  target(
    "Go channel one way 64 B spin: <= 1.3x ring-rust",
    go_spin.zip(spin).map(|(g, s)| (format!("{:.2}x", g / s), g <= 1.3 * s)),
  );
  let go_raw = r.rate("pubsub_throughput", "ring-go", 64, 1);
  target(
    "Go throughput 64 B raw: >= 0.7x ring-rust",
    go_raw.zip(raw).map(|(g, s)| (format!("{:.2}x", g / s), g >= 0.7 * s)),
  );
  let go_typed = r.rate("pubsub_throughput", "ring-go-typed", 64, 1);
  target("Go throughput 64 B typed: >= 1.5 M records/s", go_typed.map(|t| (rate(Some(t)), t >= 1.5e6)));
  let go_call = r.p50("call_latency", "ring-go", 64, "spin");
  target(
    "Go call round trip 64 B: <= 1.5x ring-rust",
    go_call.zip(call).map(|(g, c)| (format!("{:.2}x", g / c), g <= 1.5 * c)),
  );
  let go_uds = r.p50("pubsub_latency", "go-uds", 64, "*");
  target(
    "Go channel one way 64 B spin vs a Go Unix socket",
    go_spin.zip(go_uds).map(|(g, u)| (format!("{:.3}x ({} go-uds p50)", g / u, ns(Some(u))), g < u)),
  );
}
