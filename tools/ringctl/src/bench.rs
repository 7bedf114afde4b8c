//! `ringctl bench`: builds the benchmark programs in release mode, starts a release broker in a
//! private namespace, runs Ring's cases through the Rust and the C connector and the baselines (Unix
//! sockets, iceoryx2, the cache-line and memcpy floor) in the same run, and prints each Ring figure
//! with its ratio to the baselines, the C connector against the Rust one, then every BRIEF target with
//! its measured ratio. `--json FILE` keeps the raw rows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{broker, flags, shm};

/// One result row, as `ring-bench` and `bench-iceoryx2` print it.
#[derive(Clone, Debug, Default)]
struct Row {
  line: String,
  case: String,
  system: String,
  payload: u64,
  wait: String,
  subscribers: Option<u64>,
  p50: Option<f64>,
  p99: Option<f64>,
  p999: Option<f64>,
  msgs: Option<f64>,
  bytes: Option<f64>,
}

/// Reads one flat JSON object of the benchmark programs (strings, numbers, null): enough of JSON for
/// the lines we print ourselves, without a JSON dependency in ringctl.
fn parse_row(line: &str) -> Option<Row> {
  let body = line.trim().strip_prefix('{')?.strip_suffix('}')?;
  let mut row = Row { line: line.trim().to_string(), ..Row::default() };
  for field in body.split(',') {
    let (key, value) = field.split_once(':')?;
    let key = key.trim().trim_matches('"');
    let value = value.trim();
    let text = value.trim_matches('"').to_string();
    let number = value.parse::<f64>().ok();
    match key {
      "case" => row.case = text,
      "system" => row.system = text,
      "payload_bytes" => row.payload = number? as u64,
      "wait" => row.wait = text,
      "subscribers" => row.subscribers = number.map(|n| n as u64),
      "p50_ns" => row.p50 = number,
      "p99_ns" => row.p99 = number,
      "p999_ns" => row.p999 = number,
      "msgs_per_s" => row.msgs = number,
      "bytes_per_s" => row.bytes = number,
      _ => {}
    }
  }
  Some(row)
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
    let grpc_python = grpc_python(sh, &target);
    // The TypeScript cases load the release C library that the C benchmark build configures.
    let ts_lib = if c_bench.is_some() { ts_bench(sh, &target)? } else { None };
    let ns = format!("bench-{}", std::process::id());
    let shm_before = snapshot_all()?;
    let broker_bin = broker::existing(release.join("impulsed"), "the release broker")?;
    let live = broker::start_with(sh, &broker_bin, &ns, &["--log-level", "warn"])?;
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
      Ok(())
    })();
    let idle = idle_cpu_percent(live.pid(), Duration::from_secs(2));
    broker::stop(sh, live)?;
    remove_new_iceoryx2_segments(&shm_before);
    measured?;
    // Only our namespace: other runs on this machine may own other `impulse-ring.*` segments.
    shm::ensure_no_leaks(&shm_before, &format!("{}{ns}.", shm::RING_PREFIX), "the benchmark")?;

    let rows: Vec<Row> = lines.lines().filter_map(parse_row).collect();
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

/// Each C connector figure next to the Rust connector's for the same case: the C library's overhead
/// (or lack of it) over the reference implementation.
fn print_connectors(r: &Results) {
  let c_rows: Vec<&Row> = r.0.iter().filter(|x| x.system == "ring-c").collect();
  if c_rows.is_empty() {
    return;
  }
  println!(
    "\nC vs RUST CONNECTOR (p50 latency, messages/s; C / Rust above 1: C is slower in latency, faster in throughput)"
  );
  println!("  {:<18} {:>7} {:>12} {:>12} {:>8}", "case", "bytes", "ring-c", "ring-rust", "C/Rust");
  for c in c_rows {
    let rust = r.find(&c.case, "ring-rust", c.payload, &c.wait, c.subscribers);
    let (label, c_fig, rust_fig, c_val, rust_val) = if c.msgs.is_some() {
      let rust_msgs = rust.and_then(|x| x.msgs);
      let label = c.case.trim_start_matches("pubsub_").to_string();
      (label, rate(c.msgs), rate(rust_msgs), c.msgs, rust_msgs)
    } else {
      let rust_p50 = rust.and_then(|x| x.p50);
      let label = format!("{} {}", c.case.trim_end_matches("_latency"), c.wait);
      (label, ns(c.p50), ns(rust_p50), c.p50, rust_p50)
    };
    println!("  {:<18} {:>7} {:>12} {:>12} {:>8}", label, c.payload, c_fig, rust_fig, ratio(c_val, rust_val));
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
  target(
    "fan-out to 4 subscribers: >= 0.66x of one subscriber",
    four.zip(one).map(|(f, o)| (format!("{:.2}x", f / o), f >= 0.66 * o)),
  );
  let grpc = r.p50("call_latency", "grpc", 64, "*");
  target(
    "call round trip vs gRPC over a unix socket: >= 100x faster",
    grpc.zip(call).map(|(g, c)| (format!("{:.0}x ({} gRPC p50)", g / c, ns(Some(g))), g >= 100.0 * c)),
  );
  target("idle broker: ~0 % CPU", idle.map(|p| (format!("{p:.1} % of a core over 2 s"), p < 1.0)));
}
