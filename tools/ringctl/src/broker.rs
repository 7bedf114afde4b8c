//! Starting a live broker for `dev`, `bench` and the examples and pairs of `test-matrix`: build
//! `impulsed`, start it in a namespace through the test-support crate's [`Broker`] (which waits until
//! its control segment exists), and stop it. Ctrl-C while it starts gives up cleanly.

use std::{
  path::{Path, PathBuf},
  time::Duration,
};

use anyhow::{bail, Context};
pub(crate) use impulse_ring_test_support::Broker;
use xshell::{cmd, Shell};

use crate::proc;

/// How long a child has to exit after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Builds the broker and returns the path of its binary.
pub(crate) fn build(sh: &Shell) -> anyhow::Result<PathBuf> {
  cmd!(sh, "cargo build -p impulsed").run().context("building the broker `impulsed` failed; see the errors above")?;
  existing(target_dir(&sh.current_dir()).join("debug/impulsed"), "the broker binary `impulsed`")
}

/// Starts the broker in `ns` and returns once its control segment exists.
pub(crate) fn start(bin: &Path, ns: &str) -> anyhow::Result<Broker> {
  start_with(bin, ns, &[])
}

/// Like [`start`], with extra broker flags (such as `--log-level warn`).
pub(crate) fn start_with(bin: &Path, ns: &str, flags: &[&str]) -> anyhow::Result<Broker> {
  Broker::start_when(bin, ns, flags, proc::Echo::Prefixed, &|_| true, &proc::interrupted).map_err(anyhow::Error::msg)
}

/// Stops the broker with SIGTERM and fails unless it exits 0 (or dies of the signal itself).
pub(crate) fn stop(broker: Broker) -> anyhow::Result<()> {
  let status = broker.stop(STOP_GRACE).map_err(anyhow::Error::msg)?;
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
