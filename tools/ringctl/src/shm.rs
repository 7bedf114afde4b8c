//! Ring's entries in `/dev/shm`, through the workspace's test-support crate (one implementation for
//! ringctl and every Rust test), with ringctl's `anyhow` errors. A run only ever lists and removes
//! names under a prefix it owns: its own namespaces' or one namespace's.

use std::collections::BTreeSet;

pub(crate) use impulse_ring_test_support::shm::{namespace_prefix, run_prefix};

/// The names in `/dev/shm` that start with `prefix`.
pub(crate) fn snapshot(prefix: &str) -> anyhow::Result<BTreeSet<String>> {
  Ok(impulse_ring_test_support::shm::snapshot(prefix)?)
}

/// Fails naming every `prefix` entry that was not in `before`, after removing them.
pub(crate) fn ensure_no_leaks(before: &BTreeSet<String>, prefix: &str, who: &str) -> anyhow::Result<()> {
  impulse_ring_test_support::shm::ensure_no_leaks(before, prefix, who).map_err(anyhow::Error::msg)
}

/// How a case of a suite with a broker of its own ended: its `outcome` (with `label` and the apps'
/// transcripts added to an error), the broker's clean stop, and nothing of namespace `ns` left in
/// `/dev/shm` (what is left is removed, then named).
pub(crate) fn case_ending<T>(
  ns: &str,
  label: &str,
  outcome: anyhow::Result<T>,
  stopped: anyhow::Result<()>,
) -> anyhow::Result<T> {
  let left = snapshot(&namespace_prefix(ns))?;
  for name in &left {
    impulse_ring_test_support::shm::remove(name);
  }
  match (outcome, stopped) {
    (Err(err), _) => Err(err.context(label.to_string())),
    (Ok(_), Err(err)) => Err(err.context("the broker did not stop cleanly")),
    (Ok(_), Ok(())) if !left.is_empty() => anyhow::bail!("the case left {left:?} in /dev/shm"),
    (Ok(value), Ok(())) => Ok(value),
  }
}
