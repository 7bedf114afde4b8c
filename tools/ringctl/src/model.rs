//! `ringctl model`: checks the Promela models of the lock-free protocols (spec/models) exhaustively
//! with spin: the doorbell's sleep and wake, the SPSC ring with `producer_waiting`, and the channel
//! ring's join and `min_valid` retirement, over every interleaving and every store reordering of the
//! models' weak memory (spec/models/memory.pml). Each model holds as written, and each deliberately
//! broken ordering documented in it is shown to fail; a case whose outcome differs fails the run.

use std::path::Path;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::flags;

/// What spin must find.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
  /// No assertion violation, no invalid end state (lost wake-up), over the whole state space.
  Holds,
  /// At least one error: a broken variant, or the protocol as specified where the model found a flaw.
  Violated,
}

struct Case {
  model: &'static str,
  defines: &'static [&'static str],
  expect: Expect,
  what: &'static str,
}

const fn case(model: &'static str, defines: &'static [&'static str], expect: Expect, what: &'static str) -> Case {
  Case { model, defines, expect, what }
}

const CASES: &[Case] = &[
  case("doorbell", &[], Expect::Holds, "§3 sleep/wake: no lost wake-up"),
  case("doorbell", &["BROKEN_WAKER_NO_FENCE"], Expect::Violated, "waker without its SeqCst fence"),
  case("doorbell", &["BROKEN_SLEEPER_RELAXED"], Expect::Violated, "sleepers++ as a plain store"),
  case("spsc", &[], Expect::Holds, "§4 ring, CAP 1: order, integrity, wake"),
  case("spsc", &["CAP=2"], Expect::Holds, "§4 ring, CAP 2"),
  case("spsc", &["BROKEN_RELAXED_TAIL"], Expect::Violated, "Relaxed tail store"),
  case("spsc", &["BROKEN_NO_CONSUMER_FENCE"], Expect::Violated, "consumer without the §4.3 step 7 fence"),
  case("broadcast", &["LOSSY"], Expect::Holds, "§7.4/7.5 lossy: retirement, seqlock copy"),
  case("broadcast", &["LOSSY", "BROKEN_RETIRE_NO_FENCE"], Expect::Violated, "no Release fence after min_valid"),
  // The join of §7.6 with the gate of §7.3 (a JOINING cursor more than a ring behind gates). Without
  // that gate (the protocol before the model found it) a stale JOINING cursor is ignored as out of
  // window and the publisher overwrites a record the joining subscriber is about to read.
  case("broadcast", &[], Expect::Holds, "§7.3/7.6 block join: a stale JOINING cursor gates"),
  case("broadcast", &["BROKEN_STALE_JOINING_IGNORED"], Expect::Violated, "stale JOINING cursor ignored (old §7.3)"),
  case("broadcast", &["BROKEN_JOIN_NO_FENCE"], Expect::Violated, "join without its SeqCst fence"),
];

impl flags::Model {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "spin -V")
      .quiet()
      .ignore_stdout()
      .run()
      .context("spin is required for the models; install it with `apt-get install spin`")?;
    let root = sh.current_dir();
    let mut failed = Vec::new();
    println!("{:<10} {:<44} {:<9} {:>10}  what", "model", "defines", "expected", "states");
    for (i, c) in CASES.iter().enumerate() {
      let (errors, states) = check(sh, &root, i, c)?;
      let found = if errors == 0 { Expect::Holds } else { Expect::Violated };
      let shown = |e: Expect| if e == Expect::Holds { "holds" } else { "violated" };
      let mark = if found == c.expect { "ok" } else { "UNEXPECTED" };
      println!(
        "{:<10} {:<44} {:<9} {:>10}  {} — {mark}, {}",
        c.model,
        c.defines.join(" "),
        shown(c.expect),
        states,
        c.what,
        shown(found)
      );
      if found != c.expect {
        failed.push(format!("{} {}", c.model, c.defines.join(" ")));
      }
    }
    if !failed.is_empty() {
      bail!("{} model case(s) did not give the expected outcome: {}", failed.len(), failed.join(", "));
    }
    println!("model: all {} cases as expected", CASES.len());
    Ok(())
  }
}

/// Generates and runs the verifier of one case in a directory of its own; returns (errors, states).
fn check(sh: &Shell, root: &Path, index: usize, c: &Case) -> anyhow::Result<(u64, u64)> {
  let dir = root.join("target/models").join(format!("{index:02}-{}", c.model));
  std::fs::create_dir_all(&dir)?;
  let model = root.join("spec/models").join(format!("{}.pml", c.model));
  let defines: Vec<String> = c.defines.iter().map(|d| format!("-D{d}")).collect();
  let _dir = sh.push_dir(&dir);
  cmd!(sh, "spin {defines...} -a {model}").quiet().ignore_stdout().run()?;
  cmd!(sh, "cc -O2 -DSAFETY -o pan pan.c").quiet().run()?;
  // pan exits 0 whether or not it found errors; its summary says how many.
  let out = cmd!(sh, "./pan -m100000").quiet().ignore_status().read()?;
  let errors = out
    .lines()
    .find_map(|l| l.split_once("errors: ").map(|(_, n)| n.trim()))
    .and_then(|n| n.parse().ok())
    .with_context(|| format!("no error count in spin's output:\n{out}"))?;
  let states = out
    .lines()
    .find_map(|l| l.trim().strip_suffix("states, stored").map(|n| n.trim()))
    .and_then(|n| n.parse().ok())
    .unwrap_or(0);
  if out.contains("error: max search depth too small") {
    bail!("{}: the search depth bound was reached, the check is not exhaustive", c.model);
  }
  Ok((errors, states))
}
