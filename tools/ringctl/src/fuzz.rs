//! `ringctl fuzz --seconds N`: runs every fuzz target of every decoder that reads untrusted bytes for
//! N seconds each, then prints per target the executions, the coverage reached and the crashes found.
//!
//! - Rust (`rust/fuzz`, outside the workspace): libFuzzer through the `libfuzzer-sys` crate, built on
//!   the stable toolchain with SanitizerCoverage passes (`-Cpasses=sancov-module` and its LLVM
//!   options; no nightly, no cargo-fuzz), debug assertions and overflow checks on. Coverage is
//!   libFuzzer's `cov` (edges) / `ft` (features).
//! - C (`c/fuzz`): `clang -fsanitize=fuzzer,address,undefined` over the library sources.
//! - Go (`go/fuzz_test.go`): `go test -fuzz`, one target per invocation; Go reports no edge count,
//!   so the coverage column shows its corpus of interesting inputs.
//! - Python (`python/fuzz`): atheris (libFuzzer for CPython) over the pure-Python decoders.
//!
//! Corpora persist in `target/fuzz/corpus/<language>-<target>`; seeds come from spec/vectors each run.
//! A crash fails the run and names the input libFuzzer saved (`target/fuzz/artifacts/...`, Go:
//! `go/testdata/fuzz/...`); it then becomes a vector or a regression test beside the decoder. Every
//! target runs with `IMPULSE_RING_TEST_NS_PREFIX` set to a prefix of the run's own, and the run checks
//! that `/dev/shm` holds nothing under it afterwards.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use impulse_ring_test_support::ns::PREFIX_ENV;

use crate::{flags, shm};

/// The atheris release the Python targets run with (from the Python package registry, through uv).
const ATHERIS: &str = "atheris==3.0.0";

/// Flags of the SanitizerCoverage instrumentation libFuzzer needs, which the stable compiler accepts
/// (what cargo-fuzz passes, less the nightly-only `-Zsanitizer`).
const RUST_FUZZ_FLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
  Rust,
  C,
  Go,
  Python,
}

impl Lang {
  fn name(self) -> &'static str {
    match self {
      Lang::Rust => "rust",
      Lang::C => "c",
      Lang::Go => "go",
      Lang::Python => "python",
    }
  }
}

/// Which spec/vectors cases seed a target.
#[derive(Clone, Copy)]
enum Seeds {
  None,
  /// The `bytes:` payloads of spec/vectors/control.txt.
  Control,
  /// Every `schema:` and `canonical:` of spec/vectors/fingerprints.txt and invalid-schemas.txt.
  Schemas,
}

struct Target {
  lang: Lang,
  /// The binary (Rust, C), the `Fuzz...` function (Go) or the script (Python).
  name: &'static str,
  what: &'static str,
  seeds: Seeds,
}

const fn target(lang: Lang, name: &'static str, what: &'static str, seeds: Seeds) -> Target {
  Target { lang, name, what, seeds }
}

const TARGETS: &[Target] = &[
  target(Lang::Rust, "control", "control records", Seeds::Control),
  target(Lang::Rust, "soe", "SOE header, Avro primitives", Seeds::Control),
  target(Lang::Rust, "schema", "schema validator, canonical form", Seeds::Schemas),
  target(Lang::Rust, "segment", "segment header", Seeds::None),
  target(Lang::Rust, "ring", "SPSC ring, frame headers", Seeds::None),
  target(Lang::Rust, "broadcast", "channel ring", Seeds::None),
  target(Lang::C, "control", "control records", Seeds::Control),
  target(Lang::C, "avro", "Avro reader, SOE header", Seeds::Control),
  target(Lang::C, "ring", "SPSC and channel rings", Seeds::None),
  target(Lang::Go, "FuzzControlDecode", "control records", Seeds::None),
  target(Lang::Go, "FuzzRingRead", "SPSC ring", Seeds::None),
  target(Lang::Python, "fuzz_control", "control records", Seeds::Control),
  target(Lang::Python, "fuzz_ring", "SPSC ring", Seeds::None),
];

/// What one target's run found.
struct Outcome {
  executions: Option<u64>,
  coverage: String,
  crashed: bool,
  /// Where the crashing input was saved, or why the run failed.
  note: String,
}

impl flags::Fuzz {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let seconds = self.seconds.unwrap_or(60);
    if seconds == 0 {
      bail!("--seconds must be at least 1");
    }
    let root = sh.current_dir();
    let fuzz_dir = root.join("target/fuzz");
    let prefix = format!("fz{}-", std::process::id());
    let _prefix = sh.push_env(PREFIX_ENV, &prefix);
    let before = shm::snapshot(&shm::run_prefix(&prefix))?;

    println!("==> fuzz: building the targets");
    let rust_bin = build_rust(sh, &fuzz_dir)?;
    let c_bin = build_c(sh, &root, &fuzz_dir)?;
    cmd!(sh, "uv sync --project python")
      .run()
      .context("`uv` is required for the Python targets; install it with `pip install uv`")?;

    let mut rows = Vec::new();
    for t in TARGETS {
      println!("\n==> fuzz {} {} ({}) for {seconds} s", t.lang.name(), t.name, t.what);
      let slug = format!("{}-{}", t.lang.name(), t.name);
      let corpus = fuzz_dir.join("corpus").join(&slug);
      let seeds = fuzz_dir.join("seeds").join(&slug);
      let artifacts = fuzz_dir.join("artifacts").join(&slug);
      for dir in [&corpus, &seeds, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
      }
      write_seeds(&root, t.seeds, &seeds)?;
      let started = Instant::now();
      let outcome = match t.lang {
        Lang::Rust => {
          libfuzzer(rust_bin.join(t.name).into(), &[], &root, &prefix, seconds, [&corpus, &seeds, &artifacts])?
        }
        Lang::C => libfuzzer(c_bin.join(t.name).into(), &[], &root, &prefix, seconds, [&corpus, &seeds, &artifacts])?,
        Lang::Python => {
          let script = root.join("python/fuzz").join(format!("{}.py", t.name));
          let pre = ["run", "--project", "python", "--with", ATHERIS, "python"].map(String::from);
          let mut args = pre.to_vec();
          args.push(script.display().to_string());
          libfuzzer("uv".into(), &args, &root, &prefix, seconds, [&corpus, &seeds, &artifacts])?
        }
        Lang::Go => go_fuzz(&root, t.name, &prefix, seconds)?,
      };
      println!("    {:.0} s", started.elapsed().as_secs_f64());
      rows.push((t, outcome));
    }
    shm::ensure_no_leaks(&before, &shm::run_prefix(&prefix), "the fuzz targets")?;

    println!("\nfuzz: {seconds} s per target");
    println!(
      "{:<8} {:<18} {:<32} {:>12} {:>22} {:>8}",
      "language", "target", "decoder", "executions", "coverage (cov/ft)", "crashes"
    );
    let (mut total, mut crashes) = (0u64, 0);
    for (t, o) in &rows {
      let execs = o.executions.map_or("?".to_string(), |n| n.to_string());
      total += o.executions.unwrap_or(0);
      crashes += o.crashed as u32;
      println!(
        "{:<8} {:<18} {:<32} {:>12} {:>22} {:>8}",
        t.lang.name(),
        t.name,
        t.what,
        execs,
        o.coverage,
        o.crashed as u32
      );
    }
    println!("total: {total} executions over {} targets, {crashes} crashing", rows.len());
    let failed: Vec<String> = rows
      .iter()
      .filter(|(_, o)| o.crashed)
      .map(|(t, o)| format!("{} {}: {}", t.lang.name(), t.name, o.note))
      .collect();
    if !failed.is_empty() {
      bail!("fuzzing found {} crash(es):\n  {}", failed.len(), failed.join("\n  "));
    }
    Ok(())
  }
}

/// Builds `rust/fuzz` on the stable toolchain; returns the directory of its binaries.
fn build_rust(sh: &Shell, fuzz_dir: &Path) -> anyhow::Result<PathBuf> {
  let host = cmd!(sh, "rustc -vV").read()?;
  let host = host.lines().find_map(|l| l.strip_prefix("host: ")).context("rustc -vV names no host")?.to_string();
  let target_dir = fuzz_dir.join("rust");
  // An explicit --target keeps RUSTFLAGS away from build scripts and proc macros.
  let _flags = sh.push_env("RUSTFLAGS", RUST_FUZZ_FLAGS);
  cmd!(
    sh,
    "cargo build --release --manifest-path rust/fuzz/Cargo.toml --target {host} --target-dir {target_dir} --bins"
  )
  .run()?;
  Ok(target_dir.join(host).join("release"))
}

/// Compiles each C target with clang's libFuzzer, ASan and UBSan; returns the directory of the binaries.
fn build_c(sh: &Shell, root: &Path, fuzz_dir: &Path) -> anyhow::Result<PathBuf> {
  cmd!(sh, "clang --version").quiet().ignore_stdout().run().context(
    "clang with libFuzzer is required for the C targets; install it with \
     `apt-get install clang libclang-rt-14-dev`",
  )?;
  let out = fuzz_dir.join("c");
  std::fs::create_dir_all(&out)?;
  let mut sources: Vec<PathBuf> = std::fs::read_dir(root.join("c/src"))?
    .filter_map(|e| e.ok().map(|e| e.path()))
    .filter(|p| p.extension().is_some_and(|x| x == "c"))
    .collect();
  sources.sort();
  for t in TARGETS.iter().filter(|t| t.lang == Lang::C) {
    let sources = sources.clone();
    let harness = root.join("c/fuzz").join(format!("fuzz_{}.c", t.name));
    let bin = out.join(t.name);
    cmd!(
      sh,
      "clang -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
       -Ic/include -Ic/src -Irust/core/include {harness} {sources...} -lpthread -lrt -o {bin}"
    )
    .run()?;
  }
  Ok(out)
}

/// Runs a libFuzzer binary (or atheris: `program args...`) for `seconds` over the corpus and seeds.
/// `dirs` are the corpus (new inputs go there), the seeds and the directory crashing inputs go to.
/// `program` is an `OsString`: duct would run a bare `PathBuf` name from the working directory.
fn libfuzzer(
  program: std::ffi::OsString,
  args: &[String],
  root: &Path,
  prefix: &str,
  seconds: u64,
  [corpus, seeds, artifacts]: [&PathBuf; 3],
) -> anyhow::Result<Outcome> {
  let mut argv: Vec<String> = args.to_vec();
  argv.extend([
    format!("-max_total_time={seconds}"),
    "-print_final_stats=1".into(),
    "-rss_limit_mb=2048".into(),
    format!("-artifact_prefix={}/", artifacts.display()),
    corpus.display().to_string(),
    seeds.display().to_string(),
  ]);
  let output = duct::cmd(&program, &argv)
    .dir(root)
    .env(PREFIX_ENV, prefix)
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run()?;
  let text = String::from_utf8_lossy(&output.stdout);
  let executions =
    text.lines().find_map(|l| l.strip_prefix("stat::number_of_executed_units:")).and_then(|n| n.trim().parse().ok());
  // The last status line (`#N DONE cov: X ft: Y corp: ...`) has the coverage reached.
  let coverage = text
    .lines()
    .rev()
    .find_map(|l| {
      let cov = word_after(l, "cov:")?;
      Some(format!("{cov}/{}", word_after(l, "ft:").unwrap_or("?")))
    })
    .unwrap_or_else(|| "?".into());
  let crashed = !output.status.success();
  let mut note = String::new();
  if crashed {
    println!("{}", tail(&text, 60));
    note = text
      .lines()
      .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim().to_string()))
      .unwrap_or_else(|| format!("{} exited with {}", program.to_string_lossy(), output.status));
  }
  println!("    executions {}, coverage {coverage}", executions.map_or("?".into(), |n: u64| n.to_string()));
  Ok(Outcome { executions, coverage, crashed, note })
}

/// Runs one Go fuzz function for `seconds`.
fn go_fuzz(root: &Path, name: &str, prefix: &str, seconds: u64) -> anyhow::Result<Outcome> {
  let pattern = format!("^{name}$");
  let time = format!("{seconds}s");
  let output = duct::cmd!("go", "-C", "go", "test", "-run", "^$", "-fuzz", &pattern, "-fuzztime", &time, ".")
    .dir(root)
    .env(PREFIX_ENV, prefix)
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run()?;
  let text = String::from_utf8_lossy(&output.stdout);
  // `fuzz: elapsed: 10s, execs: 87577 (13588/sec), new interesting: 25 (total: 54)`
  let last = text.lines().rev().find(|l| l.starts_with("fuzz: elapsed:"));
  let executions = last.and_then(|l| word_after(l, "execs:")).and_then(|n| n.trim_end_matches(',').parse().ok());
  let coverage =
    last.and_then(|l| word_after(l, "(total:")).map_or("?".into(), |n| format!("corpus {}", n.trim_end_matches(')')));
  let crashed = !output.status.success();
  let mut note = String::new();
  if crashed {
    println!("{}", tail(&text, 60));
    note = text
      .lines()
      .find_map(|l| l.split_once("Failing input written to ").map(|(_, p)| format!("go/{}", p.trim())))
      .unwrap_or_else(|| format!("go test -fuzz {name} exited with {}", output.status));
  }
  println!("    executions {}, coverage {coverage}", executions.map_or("?".into(), |n: u64| n.to_string()));
  Ok(Outcome { executions, coverage, crashed, note })
}

/// The whitespace-separated word after `key` in `line`.
fn word_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
  let (_, rest) = line.split_once(key)?;
  rest.split_whitespace().next()
}

fn tail(text: &str, lines: usize) -> String {
  let all: Vec<&str> = text.lines().collect();
  all[all.len().saturating_sub(lines)..].join("\n")
}

/// Writes the seed inputs of `seeds` into `dir` (one file per case, named by its index).
fn write_seeds(root: &Path, seeds: Seeds, dir: &Path) -> anyhow::Result<()> {
  let read = |file: &str| {
    let path = root.join("spec/vectors").join(file);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
  };
  let inputs: Vec<Vec<u8>> = match seeds {
    Seeds::None => Vec::new(),
    Seeds::Control => read("control.txt")?
      .lines()
      .filter_map(|l| l.strip_prefix("bytes: "))
      .map(|hex| decode_hex(hex.trim()))
      .collect::<anyhow::Result<_>>()?,
    Seeds::Schemas => {
      let mut all = Vec::new();
      for file in ["fingerprints.txt", "invalid-schemas.txt"] {
        let text = read(file)?;
        all.extend(
          text
            .lines()
            .filter_map(|l| l.strip_prefix("schema: ").or_else(|| l.strip_prefix("canonical: ")))
            .map(|s| s.as_bytes().to_vec()),
        );
      }
      all
    }
  };
  for (i, input) in inputs.iter().enumerate() {
    std::fs::write(dir.join(format!("vector-{i:03}")), input)?;
  }
  Ok(())
}

fn decode_hex(hex: &str) -> anyhow::Result<Vec<u8>> {
  if !hex.len().is_multiple_of(2) {
    bail!("odd-length hex in spec/vectors: {hex}");
  }
  (0..hex.len())
    .step_by(2)
    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).with_context(|| format!("bad hex in spec/vectors: {hex}")))
    .collect()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn reads_libfuzzer_and_go_status_words() {
    let line = "#1926486\tDONE   cov: 901 ft: 2136 corp: 589/58Kb lim: 4096 exec/s: 321081 rss: 28Mb";
    assert_eq!(word_after(line, "cov:"), Some("901"));
    assert_eq!(word_after(line, "ft:"), Some("2136"));
    let go = "fuzz: elapsed: 10s, execs: 87577 (13588/sec), new interesting: 25 (total: 54)";
    assert_eq!(word_after(go, "execs:"), Some("87577"));
    assert_eq!(word_after(go, "(total:"), Some("54)"));
    assert_eq!(decode_hex("c301ff").unwrap(), vec![0xc3, 0x01, 0xff]);
    assert!(decode_hex("c30").is_err());
  }
}
