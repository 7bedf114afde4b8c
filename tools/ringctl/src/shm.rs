//! Bookkeeping of Ring's entries in `/dev/shm`, so that a test run or a dev session can prove it left
//! shared memory as it found it (BRIEF: "nothing leaks"). Every Ring object is named `impulse-ring.*`.

use std::{collections::BTreeSet, time::Duration};

use anyhow::Context;

const SHM_DIR: &str = "/dev/shm";

/// The prefix of every shared-memory object Ring creates, in any namespace.
pub(crate) const RING_PREFIX: &str = "impulse-ring.";

/// The names in `/dev/shm` that start with `prefix`.
pub(crate) fn snapshot(prefix: &str) -> anyhow::Result<BTreeSet<String>> {
  let entries = std::fs::read_dir(SHM_DIR).with_context(|| format!("cannot list {SHM_DIR}; Ring needs POSIX shm"))?;
  let mut names = BTreeSet::new();
  for entry in entries {
    let name = entry?.file_name().to_string_lossy().into_owned();
    if name.starts_with(prefix) {
      names.insert(name);
    }
  }
  Ok(names)
}

/// Fails naming every `prefix` entry that was not in `before`, after removing them. Entries get a
/// short grace period first, because a broker may still be unlinking as its process exits.
pub(crate) fn ensure_no_leaks(before: &BTreeSet<String>, prefix: &str, who: &str) -> anyhow::Result<()> {
  let mut leaked = Vec::new();
  for _ in 0..10 {
    leaked = snapshot(prefix)?.difference(before).cloned().collect();
    if leaked.is_empty() {
      return Ok(());
    }
    std::thread::sleep(Duration::from_millis(100));
  }
  for name in &leaked {
    // Best effort: the failure below is the report, and a name may vanish while we remove it.
    let _ = std::fs::remove_file(format!("{SHM_DIR}/{name}"));
  }
  let list = leaked.iter().map(|n| format!("  {SHM_DIR}/{n}")).collect::<Vec<_>>().join("\n");
  anyhow::bail!("{who} leaked {} shared-memory segment(s), now removed:\n{list}", leaked.len())
}
