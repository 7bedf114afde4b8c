//! Starting a live broker for `dev` and for the examples in `test-matrix`: build `impulsed`, start it
//! in a namespace, and wait until its control segment `/dev/shm/impulse-ring.<ns>.ctl` exists.

use std::{
  path::{Path, PathBuf},
  time::{Duration, Instant},
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{proc, shm};

/// How long the broker has to create its control segment.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child has to exit after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Builds the broker and returns the path of its binary.
pub(crate) fn build(sh: &Shell) -> anyhow::Result<PathBuf> {
  cmd!(sh, "cargo build -p impulsed").run().context("building the broker `impulsed` failed; see the errors above")?;
  existing(target_dir(&sh.current_dir()).join("debug/impulsed"), "the broker binary `impulsed`")
}

/// Starts the broker in `ns` and returns once its control segment exists.
pub(crate) fn start(sh: &Shell, bin: &Path, ns: &str) -> anyhow::Result<proc::Supervised> {
  start_with(sh, bin, ns, &[])
}

/// Like [`start`], with extra broker flags (such as `--log-level warn`).
pub(crate) fn start_with(sh: &Shell, bin: &Path, ns: &str, flags: &[&str]) -> anyhow::Result<proc::Supervised> {
  let args: Vec<&str> = ["--ns", ns].iter().chain(flags).copied().collect();
  let mut broker = proc::Supervised::start("broker", duct::cmd(bin, args).env("IMPULSE_RING_NS", ns))?;
  let ctl = PathBuf::from(format!("/dev/shm/{}ctl", shm::namespace_prefix(ns)));
  let started = Instant::now();
  while !ctl.exists() {
    if let Some(status) = broker.exited()? {
      bail!("the broker exited with {} before creating {}", proc::describe(status), ctl.display());
    }
    if proc::interrupted() {
      broker.stop(sh, STOP_GRACE)?;
      bail!("interrupted while waiting for the broker to start");
    }
    if started.elapsed() > STARTUP_TIMEOUT {
      broker.stop(sh, STOP_GRACE)?;
      bail!("the broker did not create {} within {STARTUP_TIMEOUT:?}; see its output above", ctl.display());
    }
    std::thread::sleep(Duration::from_millis(20));
  }
  Ok(broker)
}

/// Stops the broker with SIGTERM and fails unless it exits 0 (or dies of the signal itself).
pub(crate) fn stop(sh: &Shell, mut broker: proc::Supervised) -> anyhow::Result<()> {
  let status = broker.stop(sh, STOP_GRACE)?;
  if status.code().is_some_and(|code| code != 0) {
    bail!("the broker exited with {} on SIGTERM instead of 0", proc::describe(status));
  }
  Ok(())
}

/// Cargo's target directory: `CARGO_TARGET_DIR` or `target/` under the root.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
  std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// `path` if it exists, else an error saying which artifact is missing where.
pub(crate) fn existing(path: PathBuf, what: &str) -> anyhow::Result<PathBuf> {
  if !path.exists() {
    bail!("{what} was not found at {} after building; is it named as ringctl expects?", path.display());
  }
  Ok(path)
}
