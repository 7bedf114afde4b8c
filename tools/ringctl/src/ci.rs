//! `ringctl ci`: what CI runs, in order: lint, `gen --check`, test-matrix, `package --check` (every
//! artifact installed from itself and run against a live broker), the spin models of the lock-free
//! protocols (seconds), a short fuzzing run of every target (6 s each, about 2 minutes with the
//! builds), a one-minute soak, then a quick benchmark smoke run (it must run; its figures are printed,
//! never asserted: timing on shared CI machines is noise). It stops at the first step that fails and
//! names it, with the command that reproduces it.

use xshell::Shell;

use crate::flags;

impl flags::Ci {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    type Step<'a> = (&'a str, &'a str, Box<dyn Fn(&Shell) -> anyhow::Result<()>>);
    let steps: [Step; 8] = [
      ("lint", "cargo ringctl lint", Box::new(|sh| flags::Lint {}.run(sh))),
      ("gen --check", "cargo ringctl gen --check", Box::new(|sh| flags::Gen { check: true }.run(sh))),
      (
        "test-matrix",
        "cargo ringctl test-matrix",
        Box::new(|sh| flags::TestMatrix { faults_only: false, hostile_only: false }.run(sh)),
      ),
      ("package --check", "cargo ringctl package --check", Box::new(|sh| flags::Package { check: true }.run(sh))),
      ("model", "cargo ringctl model", Box::new(|sh| flags::Model {}.run(sh))),
      ("fuzz --seconds 6", "cargo ringctl fuzz --seconds 6", Box::new(|sh| flags::Fuzz { seconds: Some(6) }.run(sh))),
      // A short soak: random kills of apps in every language, no loss allowed.
      (
        "soak --minutes 1",
        "cargo ringctl soak --minutes 1",
        Box::new(|sh| flags::Soak { minutes: 1.0, seed: None }.run(sh)),
      ),
      (
        "bench --quick",
        "cargo ringctl bench --quick",
        Box::new(|sh| flags::Bench { quick: true, json: None, no_iceoryx2: false }.run(sh)),
      ),
    ];
    let total = steps.len();
    for (i, (name, repro, step)) in steps.iter().enumerate() {
      println!("\n==> ci step {}/{total}: {name}", i + 1);
      if let Err(err) = step(sh) {
        println!("\nci: step `{name}` failed; reproduce it alone with `{repro}`");
        return Err(err.context(format!("ci step `{name}` failed")));
      }
    }
    println!("\nci: all {total} steps passed");
    Ok(())
  }
}
