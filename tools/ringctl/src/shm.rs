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
